import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  EventStoreDBClient,
  ROUND_ROBIN,
  excludeSystemEvents,
  persistentSubscriptionToAllSettingsFromDefaults,
} from '@eventstore/db-client';
import type { RecordedEvent } from '../../../../domain/recordedEvent.ts';
import {
  EsdbConnectionError,
  openEsdbEventStore,
  type EsdbEventStore,
} from '../../../../adapters/eventstore/esdb/esdbEventStore.ts';
import { listParked, replayParked } from '../../../../adapters/eventstore/esdb/parked.ts';
import { startStandIn, type StandIn } from '../../../esdbStandIn/server.ts';
import { newEvent } from '../contract.ts';
import { openReadModels } from './standIn.ts';

const until = async (check: () => boolean, what: string, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe('EventStoreDB persistent subscriptions (stand-in server)', () => {
  let standIn: StandIn;
  let readModels: Awaited<ReturnType<typeof openReadModels>>;
  let store: EsdbEventStore;
  before(async () => {
    standIn = await startStandIn();
    readModels = await openReadModels();
    store = await openEsdbEventStore({
      connectionString: standIn.connectionString,
      readModels: readModels.handle,
      reconnectDelayMs: { initial: 20, max: 200 },
      retryDelayMs: () => 0,
    });
  });
  after(async () => {
    await store?.close();
    await readModels?.drop();
    await standIn?.stop();
  });

  const ours = (programId: string, events: readonly RecordedEvent[]) =>
    events.filter((e) => e.metadata.programId === programId);

  it('parks an event after the retry limit with the reason, lists it, and replays it', async () => {
    const programId = `prg_${randomUUID().slice(0, 8)}`;
    const poison = newEvent('Poison', {}, programId);
    const healthy = newEvent('Healthy', {}, programId);
    await store.append(`p-${programId}-1`, [poison], 'no_stream');
    await store.append(`p-${programId}-2`, [healthy], 'no_stream');
    const name = `park-${randomUUID()}`;
    let broken = true;
    let attempts = 0;
    const handled: string[] = [];
    const subscription = await store.subscribe({
      name,
      handle: (batch) => {
        for (const e of ours(programId, batch)) {
          if (e.type === 'Poison' && broken) {
            attempts++;
            return Promise.reject(new Error('cannot project Poison'));
          }
        }
        handled.push(...ours(programId, batch).map((e) => e.id));
        return Promise.resolve();
      },
    });
    await subscription.caughtUp();
    assert.equal(attempts, 11, 'the first delivery and 10 retries');
    assert.deepEqual(handled, [healthy.id]);
    const parked = await listParked(store.client, name);
    assert.equal(parked.length, 1);
    assert.equal(parked[0]!.eventId, poison.id);
    assert.match(parked[0]!.reason ?? '', /cannot project Poison/);

    broken = false;
    await replayParked(store.client, name);
    await until(() => handled.includes(poison.id), 'the replayed event');
    assert.deepEqual(handled, [healthy.id, poison.id]);
    await until(() => standIn.group(name)?.parked === 0, 'the parked stream to empty');
    await subscription.stop();
  });

  it('parks an event whose data fails to parse with the reason, and handles the rest', async () => {
    const programId = `prg_${randomUUID().slice(0, 8)}`;
    const before = newEvent('Before', {}, programId);
    await store.append(`u-${programId}-1`, [before], 'no_stream');
    standIn.appendRaw(`u-${programId}-2`, {
      type: 'Broken',
      data: Buffer.from('{"points": 5', 'utf8'),
      metadata: Buffer.from(JSON.stringify({ programId }), 'utf8'),
    });
    const afterIt = newEvent('After', {}, programId);
    await store.append(`u-${programId}-3`, [afterIt], 'no_stream');
    const name = `unreadable-${randomUUID()}`;
    const handled: string[] = [];
    const errors: string[] = [];
    const subscription = await store.subscribe({
      name,
      onError: (error) => errors.push(String(error)),
      handle: (batch) => {
        handled.push(...ours(programId, batch).map((e) => e.id));
        return Promise.resolve();
      },
    });
    await subscription.caughtUp();
    await subscription.stop();
    assert.deepEqual(handled, [before.id, afterIt.id]);
    const parked = await listParked(store.client, name);
    assert.equal(parked.length, 1);
    assert.equal(parked[0]!.type, 'Broken');
    assert.match(parked[0]!.reason ?? '', /unreadable: .*data is not a JSON object/);
    assert.ok(errors.some((e) => e.includes('parking')));
  });

  it('survives a dropped connection mid-subscription, reports not ready meanwhile, and loses nothing', async () => {
    const programId = `prg_${randomUUID().slice(0, 8)}`;
    const first = Array.from({ length: 20 }, (_, i) => newEvent('Before', { i }, programId));
    for (const e of first) await store.append(`d-${programId}-${e.id}`, [e], 'no_stream');
    const seen: string[] = [];
    let dropped = false;
    let serverBack: Promise<void> = Promise.resolve();
    let readinessDuringDrop: boolean | null = null;
    const subscription = await store.subscribe({
      name: `drop-${randomUUID()}`,
      batchSize: 5,
      handle: async (batch) => {
        seen.push(...ours(programId, batch).map((e) => e.id));
        if (!dropped && seen.length >= 5) {
          dropped = true;
          serverBack = standIn.dropConnections(3_000);
          await until(() => !store.readiness().ready, 'readiness to drop', 2_500).catch(() => {});
          readinessDuringDrop = store.readiness().ready;
        }
      },
    });
    await until(() => dropped, 'the drop');
    await serverBack;
    const second = Array.from({ length: 5 }, (_, i) => newEvent('After', { i }, programId));
    for (const e of second) await store.append(`d-${programId}-${e.id}`, [e], 'no_stream');
    await subscription.caughtUp();
    await subscription.stop();
    assert.equal(readinessDuringDrop, false);
    assert.deepEqual(store.readiness(), { ready: true });
    // At least once on the wire, exactly once into the handler, in order.
    assert.deepEqual(
      seen,
      [...first, ...second].map((e) => e.id),
    );
  });

  it('skips what the server redelivers from its last checkpoint after a restart', async () => {
    const programId = `prg_${randomUUID().slice(0, 8)}`;
    const events = Array.from({ length: 6 }, (_, i) => newEvent('Once', { i }, programId));
    for (const e of events.slice(0, 3))
      await store.append(`r-${programId}-${e.id}`, [e], 'no_stream');
    const seen: string[] = [];
    const subscription = await store.subscribe({
      name: `restart-${randomUUID()}`,
      handle: (batch) => {
        seen.push(...ours(programId, batch).map((e) => e.id));
        return Promise.resolve();
      },
    });
    await subscription.caughtUp();
    await standIn.restart();
    for (const e of events.slice(3)) await store.append(`r-${programId}-${e.id}`, [e], 'no_stream');
    await subscription.caughtUp();
    await subscription.stop();
    assert.deepEqual(
      seen,
      events.map((e) => e.id),
    );
  });

  it('updates a group that exists with other settings instead of creating another', async () => {
    const name = `settings-${randomUUID()}`;
    const client = EventStoreDBClient.connectionString(standIn.connectionString);
    await client.createPersistentSubscriptionToAll(
      name,
      persistentSubscriptionToAllSettingsFromDefaults({
        consumerStrategyName: ROUND_ROBIN,
        maxRetryCount: 3,
      }),
      { filter: excludeSystemEvents() },
    );
    await client.dispose();
    const groupsBefore = standIn.group(name)!.groups;
    const subscription = await store.subscribe({ name, handle: () => Promise.resolve() });
    await subscription.stop();
    const group = standIn.group(name)!;
    assert.equal(group.groups, groupsBefore);
    assert.equal(group.settings.strategy, 'Pinned');
    assert.equal(group.settings.maxRetryCount, 10);
  });
});

describe('opening an EventStoreDB store', () => {
  it('refuses a malformed connection string, naming the key', async () => {
    const readModels = await openReadModels();
    try {
      await assert.rejects(
        openEsdbEventStore({ connectionString: 'http://x:2113', readModels: readModels.handle }),
        (error: unknown) =>
          error instanceof EsdbConnectionError &&
          /ESDB_CONNECTION_STRING is malformed/.test(error.message),
      );
    } finally {
      await readModels.drop();
    }
  });

  it('fails fast, naming the endpoint, when no server answers', async () => {
    const standIn = await startStandIn();
    const { connectionString } = standIn;
    await standIn.stop();
    const readModels = await openReadModels();
    const started = Date.now();
    try {
      await assert.rejects(
        openEsdbEventStore({
          connectionString: connectionString.replace('esdb://', 'esdb://admin:secret@'),
          readModels: readModels.handle,
          probeTimeoutMs: 3_000,
        }),
        (error: unknown) => {
          assert.ok(error instanceof EsdbConnectionError);
          assert.match(error.message, /EventStoreDB at esdb:\/\/127\.0\.0\.1:\d+ is unreachable/);
          assert.doesNotMatch(error.message, /secret/);
          return true;
        },
      );
      assert.ok(Date.now() - started < 10_000);
    } finally {
      await readModels.drop();
    }
  });
});
