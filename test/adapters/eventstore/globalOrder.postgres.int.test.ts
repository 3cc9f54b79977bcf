import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { openDatabase, type DatabaseHandle } from '../../../adapters/db/database.ts';
import { PostgresEventStore } from '../../../adapters/eventstore/postgresEventStore.ts';
import { comparePositions, type Position } from '../../../domain/recordedEvent.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  waitFor,
  type TestDatabase,
} from '../../support/postgres.ts';

const writers = 8;
const eventsPerWriter = 2_000;

/**
 * Writers hold their transaction open for a random few milliseconds after taking a position, so
 * commits land out of position order: exactly what makes a position-only cursor skip events.
 */
describe('global order on PostgreSQL', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  let handle: DatabaseHandle;
  let store: PostgresEventStore;
  let pool: pg.Pool;
  before(async () => {
    database = await createTestDatabase();
    handle = await openDatabase({ kind: 'postgres', url: database.url });
    store = new PostgresEventStore(handle, { pollIntervalMs: 200 });
    pool = new pg.Pool({ connectionString: database.url, max: writers });
    // The database is dropped (with force) at the end: an idle writer connection ending then is expected.
    pool.on('error', () => {});
  });
  after(async () => {
    await store?.close();
    await handle?.close();
    await pool?.end();
    await database?.drop();
  });

  it('hands a subscriber every event exactly once, in increasing position, while 8 writers commit out of order', async () => {
    const seen: { id: string; position: Position }[] = [];
    const subscription = await store.subscribe({
      name: 'gap-test',
      batchSize: 250,
      handle: (events) => {
        for (const e of events) seen.push({ id: e.id, position: e.position });
        return Promise.resolve();
      },
    });

    const written = new Set<string>();
    const writer = async (w: number) => {
      for (let i = 0; i < eventsPerWriter; i++) {
        const id = randomUUID();
        const stream = `gap-prg_t-${w}_${Math.floor(Math.random() * 50)}`;
        const metadata = {
          programId: 'prg_t',
          correlationId: id,
          causationId: null,
          actor: 'test',
          recordedAt: new Date().toISOString(),
        };
        const client = await pool.connect();
        try {
          await client.query('begin');
          await client.query(
            'select incentable_append($1, -2, $2::uuid[], $3::text[], $4::text[]::jsonb[], $5::text[]::jsonb[])',
            [stream, [id], ['GapWritten'], [JSON.stringify({ w, i })], [JSON.stringify(metadata)]],
          );
          const holdMs = Math.random() < 0.2 ? Math.random() * 4 : 0;
          if (holdMs > 0) await new Promise((resolve) => setTimeout(resolve, holdMs));
          await client.query('commit');
          written.add(id);
        } finally {
          client.release();
        }
        if (i % 50 === 0) await pool.query("select pg_notify('incentable_events', '')");
      }
    };
    await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
    await waitFor('the subscriber to see every event', () => seen.length >= written.size, 60_000);
    await subscription.caughtUp();
    await subscription.stop();

    assert.equal(written.size, writers * eventsPerWriter);
    assert.equal(seen.length, written.size, 'every event exactly once');
    assert.equal(new Set(seen.map((s) => s.id)).size, seen.length, 'no duplicates');
    for (const s of seen) assert.ok(written.has(s.id));
    for (let i = 1; i < seen.length; i++) {
      assert.ok(
        comparePositions(seen[i - 1]!.position, seen[i]!.position) < 0,
        `position order broken at ${i}`,
      );
    }
    const outOfOrderCommits = seen.filter(
      (s, i) => i > 0 && s.position.prepare < seen[i - 1]!.position.prepare,
    ).length;
    // Not asserted (it depends on scheduling); it shows the hazard the guard exists for.
    console.log(
      `events whose identity is below an earlier-committed one (a position-only cursor risks skipping them): ${outOfOrderCommits}`,
    );
  });

  it('is not held back by a transaction open in another database on the same server', async () => {
    const other = await createTestDatabase();
    const client = new pg.Client({ connectionString: other.url });
    await client.connect();
    try {
      await client.query('begin');
      await client.query('create table held (n int)');
      await client.query('insert into held values (1)');
      const seen: string[] = [];
      const subscription = await store.subscribe({
        name: 'other-database',
        handle: (events) => {
          for (const e of events) if (e.type === 'WhileOtherDatabaseBusy') seen.push(e.id);
          return Promise.resolve();
        },
      });
      const id = randomUUID();
      await store.append(
        'busy-prg_t-1',
        [
          {
            id,
            type: 'WhileOtherDatabaseBusy',
            data: {},
            metadata: {
              programId: 'prg_t',
              correlationId: id,
              causationId: null,
              actor: 'test',
              recordedAt: new Date().toISOString(),
            },
          },
        ],
        'any',
      );
      // The other database's transaction is still open: the event arrives all the same.
      await waitFor('the event to reach the subscriber', () => seen.length === 1, 5_000);
      await subscription.stop();
      assert.deepEqual(seen, [id]);
    } finally {
      await client.query('rollback').catch(() => {});
      await client.end();
      await other.drop();
    }
  });
});
