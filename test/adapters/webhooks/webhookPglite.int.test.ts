import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { openDatabase, type DatabaseHandle } from '../../../adapters/db/database.ts';
import type { RecordedEvent } from '../../../domain/recordedEvent.ts';
import { DeliveryWorker } from '../../../adapters/webhooks/deliveryWorker.ts';
import { UndiciTransport } from '../../../adapters/webhooks/undiciTransport.ts';
import { createWebhookProjector } from '../../../adapters/webhooks/webhookProjector.ts';
import { createWebhookStore, type WebhookStore } from '../../../adapters/webhooks/webhookStore.ts';
import { waitFor } from '../../support/postgres.ts';
import { always, startReceiver, type Receiver } from '../../support/receiver.ts';

const awards = (programId: string, n: number): RecordedEvent[] =>
  Array.from({ length: n }, (_, i) => ({
    id: randomUUID(),
    streamName: `points-${programId}-mem_embedded`,
    revision: BigInt(i),
    position: { commit: BigInt(i + 1), prepare: BigInt(i + 1) },
    type: 'PointsAwarded',
    data: {
      transactionId: `txn_embedded${i}`,
      memberId: 'mem_embedded',
      points: 10,
      reason: 'embedded',
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
  }));

// The embedded default (`npm start` without DATABASE_URL): the claim, hand-over and record
// statements must run on PGlite as they do on PostgreSQL.
describe('webhook delivery on the embedded database (PGlite)', () => {
  let handle: DatabaseHandle;
  let store: WebhookStore;
  let transport: UndiciTransport;
  let worker: DeliveryWorker;
  const receivers: Receiver[] = [];
  const secretKey = new Uint8Array(randomBytes(32));

  before(async () => {
    handle = await openDatabase({ kind: 'pglite', dataDir: null });
    store = createWebhookStore({ db: handle.db, secretKey });
    transport = new UndiciTransport({
      allowPrivateNetworks: true,
      connectionsPerOrigin: 4,
      userAgent: 'test',
    });
    worker = new DeliveryWorker({
      db: handle.db,
      transport,
      secretKey,
      publicUrl: 'https://incentives.example.com',
      version: '0.1.0',
      notificationAddressOf: () => Promise.resolve(null),
      timeoutMs: 1_000,
      concurrency: 8,
      perEndpointInFlight: 2,
      perEndpointBacklog: 4,
      pollIntervalMs: 20,
      // The failing endpoint's retry comes due at once.
      delaysS: [0, 0, 3_600],
      logger: { info: () => {}, error: (fields, message) => console.error(message, fields) },
    });
    worker.start();
  });

  after(async () => {
    await worker?.stop();
    await transport?.close();
    await Promise.all(receivers.map((r) => r.close()));
    await handle?.close();
  });

  const statusesOf = async (endpointId: string) =>
    (
      await handle.db
        .selectFrom('webhook_deliveries')
        .select(['status', 'attempts'])
        .where('endpoint_id', '=', endpointId)
        .execute()
    ).map((row) => `${row.status}/${row.attempts}`);

  it('hands over, claims the overflow, retries and records every attempt', async () => {
    const ok = await startReceiver(always(200));
    const failing = await startReceiver(always(500));
    receivers.push(ok, failing);
    const programId = 'prg_embedded';
    const okId = (
      await store.createEndpoint({ programId, url: ok.url, events: ['points.awarded'] })
    ).endpoint.endpointId;
    const failingId = (
      await store.createEndpoint({ programId, url: failing.url, events: ['points.awarded'] })
    ).endpoint.endpointId;
    const projector = createWebhookProjector({ handoff: () => worker.handoff() });

    // 10 events x 2 endpoints: 4 rows each fit the backlog and are handed over, the rest are
    // left pending for claims.
    await handle.db.transaction().execute((tx) => projector(awards(programId, 10), tx));
    if (projector.committed()) worker.notify();

    await ok.waitForCount(10);
    await waitFor('every delivery to reach its end', async () => {
      const done = (await statusesOf(okId)).every((s) => s === 'delivered/1');
      const failed = (await statusesOf(failingId)).every((s) => s === 'pending/2');
      return done && failed;
    });
    assert.equal(ok.received.length, 10, 'each delivery sent once');
    assert.equal(failing.received.length, 20, 'two attempts each, the second claimed as a retry');
    const attempts = await handle.db
      .selectFrom('webhook_attempts')
      .select(({ fn }) => fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    assert.equal(Number(attempts.n), 30);
  });
});
