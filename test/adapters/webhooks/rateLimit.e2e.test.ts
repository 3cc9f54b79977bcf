import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { loadConfig } from '../../../adapters/config.ts';
import { startRuntime, type Runtime } from '../../../adapters/runtime.ts';
import {
  createMember,
  createProgram,
  expectStatus,
  startTestApp,
  type ErrorBody,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';
import { startReceiver, type Receiver } from '../../support/receiver.ts';

/**
 * A per-endpoint rate limit holds across worker processes: the API and projector in one
 * runtime, two delivery workers in two more, sharing nothing but PostgreSQL, and one injected,
 * frozen clock. The bucket holds 5 tokens and refills 5 a second of that clock, so however
 * often the two workers claim, the endpoint has had at most 5 + 5 x (seconds moved) deliveries.
 */
describe('rate_limit_per_second', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  const workers: Runtime[] = [];
  let receiver: Receiver;
  let programId: string;
  const p = (path: string) => `/v1/programs/${programId}${path}`;

  before(async () => {
    const env = {
      WEBHOOK_SECRET_KEY: randomBytes(32).toString('base64'),
      WEBHOOK_RETRY_SCHEDULE: '0s,1s',
    };
    app = await startTestApp({
      now: new Date('2026-05-04T10:00:00.000Z'),
      env: { ...env, ROLES: 'api,projector' },
    });
    for (let i = 0; i < 2; i++)
      workers.push(
        await startRuntime(
          loadConfig({
            DATABASE_URL: app.database.url,
            PORT: '0',
            LOG_LEVEL: 'silent',
            NODE_ENV: 'test',
            ROLES: 'delivery',
            ...env,
          }),
          { clock: app.clock, scheduler: false },
        ),
      );
    receiver = await startReceiver();
    programId = (await createProgram(app.api)).id;
  });
  after(async () => {
    for (const worker of workers) await worker.stop();
    await app?.stop();
    await receiver?.close();
  });

  const counts = async (endpointId: string) => {
    const r = await sql<{ status: string; n: number }>`
      select status, count(*)::int as n from webhook_deliveries
      where endpoint_id = ${endpointId} group by status`.execute(app.runtime.database.db);
    const of = (status: string) => r.rows.find((row) => row.status === status)?.n ?? 0;
    return {
      total: r.rows.reduce((sum, row) => sum + row.n, 0),
      delivered: of('delivered'),
      leased: of('delivered') + of('delivering'),
    };
  };

  it('sends no faster than the limit, whatever the number of workers, and fails nothing', async () => {
    const endpoint = expectStatus(
      await app.api.post<{ id: string; rate_limit_per_second: number | null }>(
        p('/webhook-endpoints'),
        { url: receiver.url, events: ['member.created'], rate_limit_per_second: 5 },
      ),
      201,
    ).body;
    assert.equal(endpoint.rate_limit_per_second, 5);
    for (let i = 0; i < 17; i++) await createMember(app.api, programId);
    await waitFor('17 deliveries queued', async () => (await counts(endpoint.id)).total === 17);

    for (const expected of [5, 10, 15, 17]) {
      await waitFor(
        `${expected} delivered`,
        async () => (await counts(endpoint.id)).delivered === expected,
      );
      const now = await counts(endpoint.id);
      assert.ok(now.leased <= expected, `${now.leased} leased with ${expected} tokens spent`);
      app.clock.advance(1_000);
    }
    assert.equal(receiver.received.length, 17);
    const failed = await sql<{ n: number }>`
      select count(*)::int as n from webhook_attempts a
      join webhook_deliveries d using (delivery_id)
      where d.endpoint_id = ${endpoint.id} and a.error_kind is not null`.execute(
      app.runtime.database.db,
    );
    assert.equal(failed.rows[0]!.n, 0, 'waiting for a token is not a failed attempt');
  });

  it('lets the rest go at once when the limit is removed', async () => {
    const endpoint = expectStatus(
      await app.api.post<{ id: string }>(p('/webhook-endpoints'), {
        url: `${receiver.origin}/unlimited`,
        events: ['member.created'],
        rate_limit_per_second: 1,
      }),
      201,
    ).body;
    for (let i = 0; i < 6; i++) await createMember(app.api, programId);
    await waitFor('one delivered', async () => (await counts(endpoint.id)).delivered === 1);
    const patched = expectStatus(
      await app.api.patch<{ rate_limit_per_second: number | null }>(
        p(`/webhook-endpoints/${endpoint.id}`),
        { rate_limit_per_second: null },
      ),
      200,
    ).body;
    assert.equal(patched.rate_limit_per_second, null);
    // The clock has not moved: only removing the limit lets them through.
    await waitFor('all six delivered', async () => (await counts(endpoint.id)).delivered === 6);
  });

  it('refuses a limit that is not a whole number from 1 to 10,000, naming the field', async () => {
    for (const value of [0, -1, 1.5, '5', 10_001, true]) {
      const response = await app.api.post<ErrorBody>(p('/webhook-endpoints'), {
        url: receiver.url,
        events: ['*'],
        rate_limit_per_second: value,
      });
      assert.equal(response.status, 400, JSON.stringify(value));
      assert.equal(response.body.error?.field, 'rate_limit_per_second', JSON.stringify(value));
    }
  });
});
