import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  award,
  createMember,
  createProgram,
  expectStatus,
  runningClock,
  startTestApp,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';
import { startReceiver, type Receiver } from '../../support/receiver.ts';

type Delivery = { status: string; attempts: number; last_error: string | null };

/**
 * Several endpoints on one host (one customer, several paths) is ordinary. The receiver answers
 * every request in 200 ms, well inside the 1 s timeout, so every first attempt must succeed.
 */
describe('endpoints that share an origin', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let receiver: Receiver;

  before(async () => {
    receiver = await startReceiver(() => ({ status: 200, delayMs: 200 }));
    app = await startTestApp({
      clock: runningClock(),
      env: {
        WEBHOOK_SECRET_KEY: randomBytes(32).toString('base64'),
        WEBHOOK_TIMEOUT_MS: '1000',
        WEBHOOK_PER_ENDPOINT_IN_FLIGHT: '1',
      },
    });
  });

  after(async () => {
    await app?.stop();
    await receiver?.close();
  });

  it('each get their in-flight share: no attempt times out waiting for a connection', async () => {
    const { api } = app;
    const program = await createProgram(api);
    const endpoints = 8;
    for (let i = 0; i < endpoints; i += 1) {
      expectStatus(
        await api.post(`/v1/programs/${program.id}/webhook-endpoints`, {
          url: `${receiver.origin}/hook/${i}`,
          events: ['points.awarded'],
        }),
        201,
      );
    }
    const member = await createMember(api, program.id);
    await award(api, program.id, member.id, 10);
    const deliveries = async () =>
      expectStatus(
        await api.get<{ data: Delivery[] }>(`/v1/programs/${program.id}/webhook-deliveries`),
        200,
      ).body.data;
    await waitFor(
      'every delivery to have its first attempt recorded',
      async () => {
        const rows = await deliveries();
        return rows.length === endpoints && rows.every((d) => d.attempts >= 1);
      },
      15_000,
    );
    const rows = await deliveries();
    assert.deepEqual(
      rows.map((d) => [d.status, d.attempts, d.last_error]),
      rows.map(() => ['delivered', 1, null]),
      'a 200 ms receiver never times out against a 1 s budget',
    );
  });
});
