import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { streams } from '../../../application/incentives.ts';
import type { NewEvent } from '../../../application/ports.ts';
import { newId } from '../../../adapters/ids.ts';
import {
  award,
  createMember,
  createProgram,
  expectStatus,
  runningClock,
  startTestApp,
  type ErrorBody,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';
import { headerOf, startReceiver, type Receiver } from '../../support/receiver.ts';
import { startService, type Service } from '../../support/service.ts';

type Endpoint = { id: string; ordering: string };

const subjectOf = (request: { headers: Record<string, unknown> }) =>
  String(request.headers['x-incentable-subject']);
const sequenceOf = (request: { headers: Record<string, unknown> }) =>
  Number(request.headers['x-incentable-sequence']);

describe('ordered endpoints', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let programId: string;
  const receivers: Receiver[] = [];
  const services: Service[] = [];
  const secretKey = randomBytes(32).toString('base64');
  const p = (path: string) => `/v1/programs/${programId}${path}`;

  before(async () => {
    app = await startTestApp({
      clock: runningClock(),
      env: {
        WEBHOOK_SECRET_KEY: secretKey,
        WEBHOOK_RETRY_SCHEDULE: '0ms,200ms,200ms,200ms,200ms',
      },
    });
    programId = (await createProgram(app.api)).id;
  });
  after(async () => {
    for (const service of services) {
      service.child.kill('SIGKILL');
      await service.exit;
    }
    for (const r of receivers) await r.close();
    await app?.stop();
  });

  const createEndpoint = async (url: string, events: string[]): Promise<Endpoint> =>
    expectStatus(
      await app.api.post<Endpoint>(p('/webhook-endpoints'), { url, events, ordering: 'ordered' }),
      201,
    ).body;

  it("holds a subject's later events behind a failing one, in order, and lets the others flow", async () => {
    const stuck = await createMember(app.api, programId);
    const free = await createMember(app.api, programId);
    let failures = 0;
    const receiver = await startReceiver((request) => {
      const body = JSON.parse(request.body) as { data: { member_id: string; points: number } };
      // The stuck member's first award fails three times, then goes through.
      if (body.data.member_id === stuck.id && body.data.points === 1 && failures < 3) {
        failures += 1;
        return { status: 500 };
      }
      return { status: 200 };
    });
    receivers.push(receiver);
    const endpoint = await createEndpoint(receiver.url, ['points.awarded']);
    assert.equal(endpoint.ordering, 'ordered');
    for (const points of [1, 2, 3]) {
      await award(app.api, programId, stuck.id, points);
      await award(app.api, programId, free.id, points);
    }
    // Three failed tries and six successes.
    await waitFor('all six delivered', () => receiver.received.length === 9);
    const seen = receiver.received.map((r) => {
      const data = (JSON.parse(r.body) as { data: { member_id: string; points: number } }).data;
      return { member: data.member_id, points: data.points, r };
    });
    const ofStuck = seen.filter((s) => s.member === stuck.id);
    const ofFree = seen.filter((s) => s.member === free.id);
    // The stuck member: its first award four times (three failures), then the rest in order.
    assert.deepEqual(
      ofStuck.map((s) => s.points),
      [1, 1, 1, 1, 2, 3],
    );
    assert.deepEqual(
      ofStuck.map((s) => sequenceOf(s.r)),
      [1, 1, 1, 1, 2, 3],
    );
    assert.ok(ofStuck.every((s) => subjectOf(s.r) === `member:${stuck.id}`));
    // The other member was not held up: all of its awards arrived before the stuck one's second.
    assert.deepEqual(
      ofFree.map((s) => s.points),
      [1, 2, 3],
    );
    const stuckSecond = seen.indexOf(ofStuck[4]!);
    assert.ok(seen.indexOf(ofFree[2]!) < stuckSecond, 'the free member was not delayed');
  });

  it('keeps 10,000 events of 100 members in per-member order with 8 workers in 2 processes', async () => {
    const receiver = await startReceiver();
    receivers.push(receiver);
    // Delivery in two processes of their own (4 in flight each); this process only projects.
    for (let i = 0; i < 2; i++)
      services.push(
        startService({
          ...process.env,
          DATABASE_URL: app.database.url,
          ROLES: 'delivery',
          PORT: '0',
          LOG_LEVEL: 'warn',
          NODE_ENV: 'test',
          WEBHOOK_SECRET_KEY: secretKey,
          WEBHOOK_CONCURRENCY: '4',
          WEBHOOK_PER_ENDPOINT_IN_FLIGHT: '4',
          ADMIN_API_KEY: app.rootKey,
        }),
      );
    await app.runtime.worker?.stop();
    const endpoint = await createEndpoint(receiver.url, ['points.awarded']);
    // Registered through the application layer, side by side: no HTTP round trip and
    // read-your-writes wait per member.
    const members = await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const registered = await app.runtime.incentives.registerMember(
          programId,
          {
            email: `ordered${i}@example.com`,
            name: `Member ${i}`,
            externalId: null,
            attributes: {},
          },
          { programId, actor: 'key_ordering01', correlationId: randomUUID(), causationId: null },
        );
        if (!registered.ok) throw new Error(registered.message);
        const event = registered.value.events[0]!;
        if (event.type !== 'MemberRegistered') throw new Error(`registered ${event.type}`);
        return event.data.memberId;
      }),
    );
    // Each member's 100 awards in 10 appends of 10, in order; the members side by side.
    await Promise.all(
      members.map(async (memberId) => {
        for (let round = 0; round < 10; round++) {
          const batch: NewEvent[] = [];
          for (let i = 1; i <= 10; i++) {
            const balance = round * 10 + i;
            const at = new Date().toISOString();
            batch.push({
              id: randomUUID(),
              type: 'PointsAwarded',
              data: {
                transactionId: newId('transaction'),
                memberId,
                points: 1,
                reason: 'ordering test',
                reference: null,
                newBalance: balance,
                lifetimePoints: balance,
                at,
              },
              metadata: {
                programId,
                correlationId: randomUUID(),
                causationId: null,
                actor: 'key_ordering01',
                recordedAt: at,
              },
            });
          }
          await app.runtime.store.append(streams.points(programId, memberId), batch, 'any');
        }
      }),
    );
    await waitFor(
      '10,000 delivered and recorded',
      async () => {
        const delivered = await sql<{ n: number }>`
          select count(*)::int as n from webhook_deliveries
          where endpoint_id = ${endpoint.id} and status = 'delivered'`.execute(
          app.runtime.database.db,
        );
        return delivered.rows[0]!.n === 10_000;
      },
      240_000,
    );
    assert.equal(receiver.received.length, 10_000, 'each delivered once');
    const bySubject = new Map<string, { sequence: number; balance: number }[]>();
    for (const r of receiver.received) {
      const data = (JSON.parse(r.body) as { data: { new_balance: number } }).data;
      const list = bySubject.get(subjectOf(r)) ?? [];
      list.push({ sequence: sequenceOf(r), balance: data.new_balance });
      bySubject.set(subjectOf(r), list);
    }
    assert.equal(bySubject.size, 100);
    for (const [subject, list] of bySubject) {
      // Each member's awards arrived in the order they happened, numbered 1, 2, 3… without a gap
      // (a redelivery of one already delivered would show as a repeated number).
      assert.deepEqual(
        list.map((e) => e.sequence),
        list.map((_e, i) => i + 1),
        subject,
      );
      assert.deepEqual(
        list.map((e) => e.balance),
        list.map((_e, i) => i + 1),
        subject,
      );
    }
    assert.equal(
      headerOf(receiver.received[0]!, 'x-incentable-subject').startsWith('member:'),
      true,
    );
  });

  it('refuses an ordering it does not know, naming the field', async () => {
    const response = await app.api.post<ErrorBody>(p('/webhook-endpoints'), {
      url: 'http://127.0.0.1:9/x',
      events: ['*'],
      ordering: 'fifo',
    });
    assert.equal(response.status, 400);
    assert.equal(response.body.error?.field, 'ordering');
  });
});
