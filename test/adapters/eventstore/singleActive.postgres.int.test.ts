import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { openDatabase, type DatabaseHandle } from '../../../adapters/db/database.ts';
import {
  PostgresEventStore,
  type BatchTrace,
} from '../../../adapters/eventstore/postgresEventStore.ts';
import type { Subscription } from '../../../application/ports.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  waitFor,
  type TestDatabase,
} from '../../support/postgres.ts';
import { newEvent } from './contract.ts';

const leaseMs = 1_000;

/** One consumer process, as far as the database can tell: its own pool and application_name. */
type Consumer = { name: string; handle: DatabaseHandle; store: PostgresEventStore };

/** Pairs of batches of different owners that ran at the same time. */
const overlaps = (traces: readonly BatchTrace[]) => {
  const found: [BatchTrace, BatchTrace][] = [];
  for (const a of traces)
    for (const b of traces)
      if (a.owner < b.owner && a.startedAt < b.endedAt && b.startedAt < a.endedAt)
        found.push([a, b]);
  return found;
};

describe(
  'one active consumer per subscription on PostgreSQL',
  { skip: skipWithoutPostgres },
  () => {
    let database: TestDatabase;
    let admin: pg.Client;
    const consumers: Consumer[] = [];
    const consumerOf = new Map<string, string>();
    const subscriptions: Subscription[] = [];

    const consumer = async (name: string, traces: BatchTrace[]): Promise<Consumer> => {
      const url = new URL(database.url);
      url.searchParams.set('application_name', name);
      const handle = await openDatabase({ kind: 'postgres', url: url.toString(), poolSize: 4 });
      const store = new PostgresEventStore(handle, {
        pollIntervalMs: 50,
        standbyPollMs: 50,
        leaseMs,
        traceBatch: (trace) => {
          consumerOf.set(trace.owner, name);
          traces.push(trace);
        },
      });
      const made = { name, handle, store };
      consumers.push(made);
      return made;
    };

    const terminate = async (applicationName: string) =>
      (
        await admin.query<{ pid: number }>(
          `select pg_terminate_backend(pid) as pid from pg_stat_activity
         where datname = current_database() and application_name = $1`,
          [applicationName],
        )
      ).rowCount ?? 0;

    before(async () => {
      database = await createTestDatabase();
      admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
    });

    after(async () => {
      for (const subscription of subscriptions) await subscription.stop();
      for (const { store, handle } of consumers) {
        await store.close();
        await handle.close();
      }
      await admin.end();
      await database.drop();
    });

    it('never runs two consumers at once while the active one keeps losing its connections', async () => {
      const traces: BatchTrace[] = [];
      const handled = new Map<string, number>();
      const a = await consumer('consumer-a', traces);
      const b = await consumer('consumer-b', traces);
      const writer = await consumer('writer', []);
      for (const { store } of [a, b])
        subscriptions.push(
          await store.subscribe({
            name: 'single-active',
            batchSize: 20,
            handle: async (events, tx) => {
              // Work that spans round trips inside the batch's transaction.
              await sql`select pg_sleep(0.002)`.execute(tx);
              for (const event of events) handled.set(event.id, (handled.get(event.id) ?? 0) + 1);
            },
          }),
        );
      const appended: string[] = [];
      for (let round = 0; round < 15; round++) {
        for (let i = 0; i < 20; i++) {
          const event = newEvent('Happened', { round, i });
          await writer.store.append(`single-${round}-${i}`, [event], 'no_stream');
          appended.push(event.id);
        }
        // Whoever is active loses every connection, as in a restart of its side of the network.
        const active = traces.at(-1);
        if (active) await terminate(consumerOf.get(active.owner)!);
      }
      await waitFor(
        'every event to be handled',
        () => appended.every((id) => handled.has(id)),
        30_000,
      );
      assert.deepEqual(overlaps(traces), [], 'two consumers handled batches at the same time');
      const owners = new Set(traces.map((t) => t.owner));
      assert.ok(owners.size >= 1);
    });

    it('commits nothing while another consumer holds a live lease, and takes over when it runs out', async () => {
      const traces: BatchTrace[] = [];
      const c = await consumer('consumer-c', traces);
      const writer = consumers.find((x) => x.name === 'writer')!;
      const errors: unknown[] = [];
      // Where each event was handled: the log holds the earlier test's events too, so the
      // batches are told apart by the position of their last event, not by their count.
      const positions = new Map<string, string>();
      const lastOf = (id: string) => positions.get(id);
      subscriptions.push(
        await c.store.subscribe({
          name: 'taken-over',
          handle: (events) => {
            for (const event of events)
              positions.set(event.id, `${event.position.commit}/${event.position.prepare}`);
            return Promise.resolve();
          },
          onError: (error) => errors.push(error),
        }),
      );
      const first = newEvent('Happened', {});
      await writer.store.append('taken-1', [first], 'no_stream');
      await waitFor('the batch of the first event', () =>
        traces.some((t) => t.last === lastOf(first.id)),
      );
      // Another process takes the subscription over (its lease is live for 1.5 s). The update
      // waits for a batch still running to commit, as a real takeover does.
      const { rows } = await admin.query<{ until: string }>(
        `update incentable_subscriptions set owner = 'someone-else',
         lease_until = clock_timestamp() + interval '1.5 seconds'
       where name = 'taken-over' returning (extract(epoch from lease_until) * 1000)::text as until`,
      );
      const until = Number(rows[0]!.until);
      const second = newEvent('Happened', {});
      await writer.store.append('taken-2', [second], 'no_stream');
      await waitFor(
        'the batch of the second event, after the other lease ran out',
        () => traces.some((t) => t.last === lastOf(second.id)),
        10_000,
      );
      const batch = traces.find((t) => t.last === lastOf(second.id))!;
      assert.ok(
        batch.startedAt >= until - 50,
        `a batch ran ${until - batch.startedAt} ms before the other consumer's lease ended`,
      );
      assert.ok(errors.some((e) => e instanceof Error && e.name === 'LeaseLostError'));
    });

    it('hands over at once on a clean stop', async () => {
      const traces: BatchTrace[] = [];
      const d = await consumer('consumer-d', traces);
      const e = await consumer('consumer-e', traces);
      const writer = consumers.find((x) => x.name === 'writer')!;
      const errors: string[] = [];
      const seen = new Set<string>();
      const options = {
        name: 'handover',
        handle: (events: readonly { id: string }[]) => {
          for (const event of events) seen.add(event.id);
          return Promise.resolve();
        },
        onError: (error: unknown) => errors.push(String(error)),
      };
      const first = await d.store.subscribe(options);
      // The subscription starts at the log's beginning: earlier tests' events may come in batches
      // of their own before this one's.
      const before = newEvent('Happened', {});
      await writer.store.append('handover-1', [before], 'no_stream');
      await waitFor('the first consumer to handle its event', () => seen.has(before.id));
      subscriptions.push(await e.store.subscribe(options));
      const stoppedAt = Date.now();
      await first.stop();
      // A stopped subscription has traced every batch it committed.
      const handedOverAt = traces.length;
      const firstOwner = traces[0]!.owner;
      await writer.store.append('handover-2', [newEvent('Happened', {})], 'no_stream');
      await waitFor('the standby to take over', () => traces.length > handedOverAt, 5_000);
      const next = traces[handedOverAt]!;
      assert.notEqual(next.owner, firstOwner, JSON.stringify({ traces, errors }));
      assert.ok(
        traces.slice(0, handedOverAt).every((t) => t.owner === firstOwner),
        'only the first consumer ran before the stop',
      );
      // The lease here is 1 s: a takeover that waited it out would take at least that.
      assert.ok(next.startedAt - stoppedAt < leaseMs, 'the standby waited out the lease');
    });
  },
);
