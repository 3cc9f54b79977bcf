import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { openDatabase, type DatabaseHandle } from '../../../adapters/db/database.ts';
import type { RecordedEvent } from '../../../domain/recordedEvent.ts';
import type { Clock } from '../../../application/ports.ts';
import { DeliveryWorker } from '../../../adapters/webhooks/deliveryWorker.ts';
import { UndiciTransport } from '../../../adapters/webhooks/undiciTransport.ts';
import {
  createWebhookProjector,
  type WebhookProjector,
} from '../../../adapters/webhooks/webhookProjector.ts';
import { createWebhookStore, type WebhookStore } from '../../../adapters/webhooks/webhookStore.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  waitFor,
  type TestDatabase,
} from '../../support/postgres.ts';
import { always, startReceiver, type Receiver } from '../../support/receiver.ts';

/** A clock the test moves by hand; the worker reads leases and schedules from it. */
const manualClock = (start = Date.parse('2026-01-05T10:00:00Z')) => {
  let now = start;
  const clock: Clock & { advance(ms: number): void } = {
    now: () => new Date(now),
    advance: (ms) => {
      now += ms;
    },
  };
  return clock;
};

let sequence = 0;
/** PointsAwarded events as the store hands them to a subscription. */
const awards = (programId: string, n: number): RecordedEvent[] =>
  Array.from({ length: n }, (_, i) => {
    sequence += 1;
    return {
      id: randomUUID(),
      streamName: `points-${programId}-mem_handoff`,
      revision: BigInt(i),
      position: { commit: BigInt(sequence), prepare: BigInt(sequence) },
      type: 'PointsAwarded',
      data: {
        transactionId: `txn_${sequence}`,
        memberId: 'mem_handoff',
        points: 10,
        reason: 'handoff',
        reference: null,
        newBalance: 10 * (i + 1),
        lifetimePoints: 10 * (i + 1),
        at: '2026-01-05T10:00:00.000Z',
      },
      metadata: {
        programId,
        correlationId: randomUUID(),
        causationId: null,
        actor: 'test',
        recordedAt: '2026-01-05T10:00:00.000Z',
      },
      hash: 'x',
    };
  });

describe(
  'hand-over from the webhook projector to the worker',
  { skip: skipWithoutPostgres },
  () => {
    let database: TestDatabase;
    let handle: DatabaseHandle;
    let store: WebhookStore;
    let transport: UndiciTransport;
    const receivers: Receiver[] = [];
    const workers: DeliveryWorker[] = [];
    const secretKey = new Uint8Array(randomBytes(32));

    before(async () => {
      database = await createTestDatabase();
      handle = await openDatabase({ kind: 'postgres', url: database.url });
      store = createWebhookStore({ db: handle.db, secretKey });
      transport = new UndiciTransport({
        allowPrivateNetworks: true,
        connectionsPerOrigin: 16,
        userAgent: 'test',
      });
    });

    after(async () => {
      await Promise.all(workers.map((w) => w.stop()));
      await transport?.close();
      await Promise.all(receivers.map((r) => r.close()));
      await handle?.close();
      await database?.drop();
    });

    const receiver = async (...args: Parameters<typeof startReceiver>) => {
      const r = await startReceiver(...args);
      receivers.push(r);
      return r;
    };

    /** A worker that never polls: after its first look at the empty queue, only hand-overs and notify() feed it. */
    const worker = (options: Partial<ConstructorParameters<typeof DeliveryWorker>[0]> = {}) => {
      const w = new DeliveryWorker({
        db: handle.db,
        transport,
        secretKey,
        publicUrl: 'https://incentives.example.com',
        version: '0.1.0',
        notificationAddressOf: () => Promise.resolve(null),
        timeoutMs: 300,
        concurrency: 16,
        perEndpointInFlight: 4,
        pollIntervalMs: 3_600_000,
        logger: { info: () => {}, error: (fields, message) => console.error(message, fields) },
        ...options,
      });
      workers.push(w);
      w.start();
      return w;
    };

    /** One projector batch in its own transaction, then what the subscription does after commit. */
    const project = async (projector: WebhookProjector, events: RecordedEvent[]) => {
      await handle.db.transaction().execute((tx) => projector(events, tx));
      return projector.committed();
    };

    const rowsOf = (endpointId: string) =>
      handle.db
        .selectFrom('webhook_deliveries')
        .select(['delivery_id', 'status', 'lease_owner', 'attempts'])
        .where('endpoint_id', '=', endpointId)
        .orderBy('seq')
        .execute();

    const endpoint = async (programId: string, url: string) =>
      (await store.createEndpoint({ programId, url, events: ['points.awarded'] })).endpoint
        .endpointId;

    it('inserts the rows leased to the worker and sends them at commit, with no claim or poll', async () => {
      const programId = 'prg_handoff1';
      const r = await receiver(always(200));
      const endpointId = await endpoint(programId, `${r.url}/1`);
      const w = worker();
      const projector = createWebhookProjector({ handoff: () => w.handoff() });
      const events = awards(programId, 5);

      await handle.db.transaction().execute(async (tx) => {
        await projector(events, tx);
        // Inside the transaction the rows are already leased: no claim can take them.
        const leased = await tx
          .selectFrom('webhook_deliveries')
          .select(['status', 'lease_owner'])
          .where('endpoint_id', '=', endpointId)
          .execute();
        assert.equal(leased.length, 5);
        for (const row of leased) {
          assert.equal(row.status, 'delivering');
          assert.match(row.lease_owner ?? '', /^[0-9a-f-]{36}:\d+$/);
        }
      });
      assert.equal(r.received.length, 0, 'nothing is sent before the commit');
      assert.equal(projector.committed(), false, 'no row was left for a claim');
      await r.waitForCount(5);
      await waitFor('the attempts to be recorded', async () =>
        (await rowsOf(endpointId)).every((row) => row.status === 'delivered'),
      );
      const ids = new Set(r.received.map((q) => q.headers['x-incentable-delivery']));
      assert.deepEqual(ids, new Set((await rowsOf(endpointId)).map((row) => row.delivery_id)));
    });

    it('leaves the rows beyond an endpoint backlog pending, for a claim', async () => {
      const programId = 'prg_handoff2';
      const r = await receiver(always(200));
      const endpointId = await endpoint(programId, `${r.url}/2`);
      const w = worker({ perEndpointInFlight: 1, perEndpointBacklog: 2 });
      const projector = createWebhookProjector({ handoff: () => w.handoff() });

      await handle.db.transaction().execute(async (tx) => {
        await projector(awards(programId, 5), tx);
        const statuses = (
          await tx
            .selectFrom('webhook_deliveries')
            .select('status')
            .where('endpoint_id', '=', endpointId)
            .orderBy('seq')
            .execute()
        ).map((row) => row.status);
        assert.deepEqual(statuses, ['delivering', 'delivering', 'pending', 'pending', 'pending']);
      });
      assert.equal(projector.committed(), true, 'pending rows were left for a claim');
      // What the subscription does when committed() says so.
      w.notify();
      await r.waitForCount(5);
      await waitFor('every row to be delivered', async () =>
        (await rowsOf(endpointId)).every((row) => row.status === 'delivered'),
      );
      assert.equal(r.received.length, 5, 'each row sent once');
    });

    it('hands nothing over twice for a replayed batch, and frees the room of a rolled-back one', async () => {
      const programId = 'prg_handoff3';
      const r = await receiver(always(200));
      const endpointId = await endpoint(programId, `${r.url}/3`);
      const w = worker({ perEndpointInFlight: 1, perEndpointBacklog: 2 });
      const projector = createWebhookProjector({ handoff: () => w.handoff() });
      const events = awards(programId, 2);

      // A batch whose transaction fails after the projector ran: no row, no send, room given back.
      await assert.rejects(
        handle.db.transaction().execute(async (tx) => {
          await projector(events, tx);
          throw new Error('checkpoint write failed');
        }),
        /checkpoint write failed/,
      );
      assert.equal((await rowsOf(endpointId)).length, 0);

      // The same batch again (the subscription retries it): both rows fit, so the room came back.
      await project(projector, events);
      const first = await rowsOf(endpointId);
      assert.deepEqual(
        first.map((row) => row.status),
        ['delivering', 'delivering'],
      );
      await r.waitForCount(2);
      await waitFor('both rows delivered', async () =>
        (await rowsOf(endpointId)).every((row) => row.status === 'delivered'),
      );

      // Replayed from an older checkpoint: nothing inserted, nothing handed over, nothing sent.
      assert.equal(await project(projector, events), false);
      assert.equal((await rowsOf(endpointId)).length, 2);
      // The replay's reserved room was freed: a new batch of two is leased in full again.
      await project(projector, awards(programId, 2));
      assert.deepEqual(
        (await rowsOf(endpointId)).slice(2).map((row) => row.status),
        ['delivering', 'delivering'],
      );
      await r.waitForCount(4);
      await waitFor('four rows delivered', async () =>
        (await rowsOf(endpointId)).every((row) => row.status === 'delivered'),
      );
      assert.equal(r.received.length, 4, 'no row was sent twice');
    });

    it('does not send a queued row whose lease is nearly over; a claim sends it once the lease ends', async () => {
      const programId = 'prg_handoff4';
      const r = await receiver((_, n) => (n === 1 ? 'hang' : { status: 200 }));
      const endpointId = await endpoint(programId, `${r.url}/4`);
      const clock = manualClock();
      // One slot: the first POST hangs for the whole timeout while the other two wait in memory.
      const w = worker({
        clock,
        perEndpointInFlight: 1,
        timeoutMs: 1_000,
        leaseMs: 4_000,
        // The hung attempt is retried only an hour later: out of this test.
        delaysS: [0, 3_600],
      });
      const projector = createWebhookProjector({ clock, handoff: () => w.handoff() });
      await project(projector, awards(programId, 3));
      await r.waitForCount(1);
      // Past lease - timeout - margin (4 s - 1 s - 1 s): the queued two may no longer be sent.
      clock.advance(2_500);
      await waitFor('the hanging attempt to be recorded', async () =>
        (await rowsOf(endpointId)).some((row) => row.attempts === 1),
      );
      const rows = await rowsOf(endpointId);
      const queued = rows.filter((row) => row.attempts === 0);
      assert.equal(queued.length, 2);
      for (const row of queued) assert.equal(row.status, 'delivering', 'still leased, not sent');
      assert.equal(r.received.length, 1, 'the queued rows were dropped, not sent');

      // The lease ends: a claim (expired branch) takes the two rows and sends each once.
      clock.advance(2_000);
      w.notify();
      const queuedIds = new Set(queued.map((row) => row.delivery_id));
      await waitFor('the two queued rows delivered', async () =>
        (await rowsOf(endpointId))
          .filter((row) => queuedIds.has(row.delivery_id))
          .every((row) => row.status === 'delivered'),
      );
      const sent = r.received.slice(1).map((q) => q.headers['x-incentable-delivery']);
      assert.deepEqual(new Set(sent), queuedIds);
      assert.equal(r.received.length, 3, 'the hung attempt and the two queued rows, once each');
    });

    it('records a response body holding a NUL byte, which PostgreSQL text cannot store', async () => {
      const programId = 'prg_handoff6';
      const r = await receiver(() => ({ status: 500, body: 'bad\u0000byte' }));
      const endpointId = await endpoint(programId, `${r.url}/6`);
      const w = worker({ delaysS: [0, 3_600] });
      const projector = createWebhookProjector({ handoff: () => w.handoff() });
      await project(projector, awards(programId, 1));
      await waitFor('the attempt to be recorded', async () =>
        (await rowsOf(endpointId)).every((row) => row.attempts === 1),
      );
      const attempt = await handle.db
        .selectFrom('webhook_attempts')
        .innerJoin(
          'webhook_deliveries',
          'webhook_deliveries.delivery_id',
          'webhook_attempts.delivery_id',
        )
        .select(['http_status', 'response_body', 'status'])
        .where('endpoint_id', '=', endpointId)
        .executeTakeFirstOrThrow();
      assert.deepEqual(attempt, {
        http_status: 500,
        response_body: 'bad\uFFFDbyte',
        status: 'pending',
      });
    });

    it('deletes an endpoint with its deliveries and attempts, after a projector batch that read it', async () => {
      const programId = 'prg_handoff7';
      const r = await receiver(always(200));
      const endpointId = await endpoint(programId, `${r.url}/7`);
      const w = worker();
      const projector = createWebhookProjector({ handoff: () => w.handoff() });
      await project(projector, awards(programId, 2));
      await waitFor('two rows delivered', async () => {
        const rows = await rowsOf(endpointId);
        return rows.length === 2 && rows.every((row) => row.status === 'delivered');
      });

      // A batch in flight has read the endpoint: the delete waits for its commit, then takes the
      // rows that batch inserted too (no foreign key does it any more).
      let deleted: Promise<boolean> = Promise.resolve(false);
      await handle.db.transaction().execute(async (tx) => {
        await projector(awards(programId, 3), tx);
        deleted = store.deleteEndpoint(programId, endpointId);
        await waitFor('the delete to wait on the batch', async () => {
          const waiting = await sql<{ n: number }>`
          select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'
            and query like 'delete from "webhook_endpoints"%'`.execute(handle.db);
          return waiting.rows[0]!.n === 1;
        });
      });
      projector.committed();
      assert.equal(await deleted, true);
      assert.equal((await rowsOf(endpointId)).length, 0);
      // The batch's three rows went to the worker at commit: once it has recorded whatever it sent,
      // no attempt may be left without its delivery.
      await w.stop();
      const attempts = await sql<{ n: number }>`
      select count(*)::int as n from webhook_attempts a
      where not exists (select 1 from webhook_deliveries d where d.delivery_id = a.delivery_id)`.execute(
        handle.db,
      );
      assert.equal(attempts.rows[0]!.n, 0, 'no attempt outlives its delivery');
    });

    const attemptsOf = (deliveryId: string) =>
      handle.db
        .selectFrom('webhook_attempts')
        .select(['attempt_number', 'error_kind'])
        .where('delivery_id', '=', deliveryId)
        .execute();

    it('records the attempt of a row whose lease another worker took, and leaves it that worker', async () => {
      const programId = 'prg_handoff9';
      const r = await receiver(() => 'hang');
      const endpointId = await endpoint(programId, `${r.url}/9`);
      const w = worker({ timeoutMs: 1_000, delaysS: [0, 3_600] });
      const projector = createWebhookProjector({ handoff: () => w.handoff() });
      await project(projector, awards(programId, 1));
      await r.waitForCount(1);
      // While the POST hangs, another worker holds the row (as after this lease had ended).
      await handle.db
        .updateTable('webhook_deliveries')
        .set({ lease_owner: 'other-worker:1' })
        .where('endpoint_id', '=', endpointId)
        .execute();
      const [row] = await rowsOf(endpointId);
      await waitFor(
        'the timed-out attempt to be recorded',
        async () => (await attemptsOf(row!.delivery_id)).length === 1,
      );
      assert.deepEqual(await attemptsOf(row!.delivery_id), [
        { attempt_number: 1, error_kind: 'timeout' },
      ]);
      assert.deepEqual(await rowsOf(endpointId), [
        {
          delivery_id: row!.delivery_id,
          status: 'delivering',
          lease_owner: 'other-worker:1',
          attempts: 0,
        },
      ]);
    });

    it('writes no attempt for a delivery deleted while its POST was under way', async () => {
      const programId = 'prg_handoff10';
      const r = await receiver(() => 'hang');
      const endpointId = await endpoint(programId, `${r.url}/10`);
      const w = worker({ timeoutMs: 1_000, delaysS: [0, 3_600] });
      const projector = createWebhookProjector({ handoff: () => w.handoff() });
      await project(projector, awards(programId, 1));
      await r.waitForCount(1);
      const [row] = await rowsOf(endpointId);
      // The delete (as deleteEndpoint does it) holds the row until the record waits on it: the
      // record must not see the row its own statement is about to lose.
      await handle.db.transaction().execute(async (tx) => {
        await tx.deleteFrom('webhook_deliveries').where('endpoint_id', '=', endpointId).execute();
        await waitFor('the record to wait on the deleted row', async () => {
          const waiting = await sql<{ n: number }>`
            select count(*)::int as n from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock'
              and query like '%update webhook_deliveries d%'`.execute(handle.db);
          return waiting.rows[0]!.n === 1;
        });
      });
      await w.stop();
      assert.deepEqual(await attemptsOf(row!.delivery_id), [], 'no attempt outlives its delivery');
      assert.equal((await rowsOf(endpointId)).length, 0);
    });

    it('claims the due rows of every endpoint that has some, among many that have none', async () => {
      const programId = 'prg_handoff11';
      const r = await receiver(always(200));
      // Endpoints of another program, with no rows: the claim must step past them all.
      for (let i = 0; i < 40; i++) await endpoint('prg_handoff11idle', `${r.url}/idle${i}`);
      const busy = [];
      for (let i = 0; i < 3; i++) busy.push(await endpoint(programId, `${r.url}/busy${i}`));
      const w = worker({ perEndpointInFlight: 1, perEndpointBacklog: 2 });
      // No hand-over: every row is pending and only claims can send it.
      await project(createWebhookProjector(), awards(programId, 4));
      w.notify();
      await r.waitForCount(12);
      for (const endpointId of busy) {
        await waitFor("the endpoint's rows to be delivered", async () =>
          (await rowsOf(endpointId)).every((row) => row.status === 'delivered'),
        );
      }
      assert.equal(r.received.length, 12, 'each row sent once');
      assert.equal(r.received.filter((q) => q.path.includes('idle')).length, 0);
    });

    it('gives rows back as pending when it stopped before the batch committed', async () => {
      const programId = 'prg_handoff8';
      const r = await receiver(always(200));
      const endpointId = await endpoint(programId, `${r.url}/8`);
      const w = worker();
      const projector = createWebhookProjector({ handoff: () => w.handoff() });
      await handle.db.transaction().execute(async (tx) => {
        await projector(awards(programId, 2), tx);
        await w.stop();
      });
      projector.committed();
      await waitFor('the rows to be pending again', async () =>
        (await rowsOf(endpointId)).every(
          (row) => row.status === 'pending' && row.lease_owner === null,
        ),
      );
      assert.equal(r.received.length, 0, 'a stopped worker sends nothing');
    });

    it('gives its queued rows back as pending when it stops', async () => {
      const programId = 'prg_handoff5';
      const r = await receiver(() => 'hang');
      const endpointId = await endpoint(programId, `${r.url}/5`);
      const w = worker({ perEndpointInFlight: 1, timeoutMs: 300 });
      const projector = createWebhookProjector({ handoff: () => w.handoff() });
      await project(projector, awards(programId, 3));
      await r.waitForCount(1);
      await w.stop();
      const rows = await rowsOf(endpointId);
      const sent = rows.filter((row) => row.attempts === 1);
      const given = rows.filter((row) => row.attempts === 0);
      assert.equal(sent.length, 1, 'the POST under way was finished and recorded');
      assert.equal(given.length, 2);
      for (const row of given) {
        assert.equal(row.status, 'pending');
        assert.equal(row.lease_owner, null);
      }
      assert.equal(w.handoff(), null, 'a stopped worker takes no hand-over');
    });
  },
);
