import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { ConcurrencyError, type ExpectedRevision } from '../../../application/ports.ts';
import { verifyChains } from '../../../adapters/audit/verify.ts';
import { openDatabase, type DatabaseHandle } from '../../../adapters/db/database.ts';
import { PostgresEventStore } from '../../../adapters/eventstore/postgresEventStore.ts';
import { createTestDatabase, skipWithoutPostgres } from '../../support/postgres.ts';

const event = (data: unknown = { n: 1 }) => ({
  id: randomUUID(),
  type: 'Tested',
  data,
  metadata: {
    programId: null,
    correlationId: 'c',
    causationId: null,
    actor: 'test',
    recordedAt: new Date().toISOString(),
  },
});

type Append = { stream: string; expected: ExpectedRevision; data?: unknown };

/**
 * Group commit's contract, on both databases. With one batch in flight, the first append of a
 * burst leaves alone and every other append of the burst waits for it and goes in the next
 * batch, together: so the tests know which appends shared a transaction.
 */
const groupCommitSuite = (
  name: string,
  open: () => Promise<{ handle: DatabaseHandle; close: () => Promise<void> }>,
) => {
  describe(`group commit on ${name}`, () => {
    let handle: DatabaseHandle;
    let close: () => Promise<void>;
    let store: PostgresEventStore;
    before(async () => {
      ({ handle, close } = await open());
      store = new PostgresEventStore(handle, { groupCommit: { maxInFlight: 1, maxBatch: 50 } });
    });
    after(async () => {
      await store?.close();
      await close?.();
    });

    /** A burst: every append submitted in one tick; settled results in the same order. */
    const burst = (appends: Append[]) =>
      Promise.allSettled(
        appends.map((a) => store.append(a.stream, [event(a.data), event(a.data)], a.expected)),
      );

    const transactionOf = async (stream: string): Promise<string[]> => {
      const rows = await sql<{ transaction_id: string }>`
        select transaction_id::text as transaction_id from incentable_events
        where stream_name = ${stream} order by stream_revision`.execute(handle.db);
      return rows.rows.map((row) => row.transaction_id);
    };

    it('writes the appends of a burst in one transaction, each at its own revision', async () => {
      const streams = Array.from({ length: 31 }, () => `gc-${randomUUID()}`);
      const before = store.appendBatches();
      const results = await burst(streams.map((stream) => ({ stream, expected: 'no_stream' })));
      for (const result of results) {
        assert.equal(result.status, 'fulfilled');
        assert.equal(result.value.nextRevision, 1n);
      }
      const batches = store.appendBatches();
      assert.equal(batches.appends - before.appends, 31);
      assert.equal(batches.batches - before.batches, 2, 'the first alone, the other 30 together');
      const transactions = new Set<string>();
      for (const stream of streams.slice(1)) {
        const ids = await transactionOf(stream);
        assert.equal(ids.length, 2);
        for (const id of ids) transactions.add(id);
      }
      assert.equal(transactions.size, 1, 'the 30 batched appends share one commit');
      const [firstId] = await transactionOf(streams[0]!);
      assert.ok(!transactions.has(firstId!));
      // Positions name each append's last event, all in the batch's commit.
      const positions = results.slice(1).map((r) => (r.status === 'fulfilled' ? r.value : null)!);
      assert.equal(new Set(positions.map((p) => p.position.commit)).size, 1);
      assert.equal(new Set(positions.map((p) => p.position.prepare)).size, 30);
      const report = await verifyChains(handle.db);
      assert.equal(report.ok, true);
    });

    it('fails a conflicting append alone and commits the rest of its batch', async () => {
      const streams = Array.from({ length: 12 }, () => `gc-${randomUUID()}`);
      for (const stream of streams) await store.append(stream, [event()], 'no_stream');
      const appends: Append[] = streams.map((stream) => ({ stream, expected: 0n }));
      appends[3] = { stream: streams[3]!, expected: 5n };
      appends[7] = { stream: streams[7]!, expected: 'no_stream' };
      // The same stream twice in one batch: the first to be written wins, the second conflicts.
      const twice = `gc-${randomUUID()}`;
      appends.push(
        { stream: twice, expected: 'no_stream' },
        { stream: twice, expected: 'no_stream' },
      );
      const results = await burst([{ stream: `gc-${randomUUID()}`, expected: 'any' }, ...appends]);
      const [, ...batched] = results;
      batched.forEach((result, i) => {
        if (i === 3 || i === 7) {
          assert.equal(result.status, 'rejected');
          assert.ok(result.reason instanceof ConcurrencyError, String(result.reason));
          assert.equal(result.reason.actual, 0n);
        } else if (i < 12) {
          assert.equal(result.status, 'fulfilled', `append ${i}`);
          assert.equal(result.value.nextRevision, 2n);
        }
      });
      const twiceResults = batched.slice(12).map((r) => r.status);
      assert.deepEqual([...twiceResults].sort(), ['fulfilled', 'rejected']);
      // Nothing of the failed appends was written; the others' events are there.
      assert.equal((await store.readStream(streams[3]!)).length, 1);
      assert.equal((await store.readStream(streams[7]!)).length, 1);
      assert.equal((await store.readStream(streams[0]!)).length, 3);
      assert.equal((await store.readStream(twice)).length, 2);
      const report = await verifyChains(handle.db);
      assert.equal(report.ok, true);
    });

    it('fails alone an append whose data PostgreSQL refuses, which fails the whole statement', async () => {
      const streams = Array.from({ length: 6 }, () => `gc-${randomUUID()}`);
      const appends: Append[] = streams.map((stream) => ({ stream, expected: 'no_stream' }));
      // jsonb refuses \u0000: the batch's parameters fail to cast before any append runs.
      appends[2] = { stream: streams[2]!, expected: 'no_stream', data: { text: 'a\u0000b' } };
      const results = await burst([{ stream: `gc-${randomUUID()}`, expected: 'any' }, ...appends]);
      const [, ...batched] = results;
      batched.forEach((result, i) => {
        if (i === 2) {
          assert.equal(result.status, 'rejected');
          assert.ok(!(result.reason instanceof ConcurrencyError));
        } else assert.equal(result.status, 'fulfilled', `append ${i}`);
      });
      assert.equal((await store.readStream(streams[2]!)).length, 0);
      assert.equal((await store.readStream(streams[5]!)).length, 2);
    });

    it('does not lose an append signalled before a wait begins', async () => {
      // A subscription notes appendSignals() before its read and waits after it: an append that
      // committed while the read ran must end the wait at once, not after the poll interval.
      const since = store.appendSignals();
      await store.append(`gc-${randomUUID()}`, [event()], 'no_stream');
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        store.waitForAppend(60_000, since).then(() => 'woken'),
        new Promise<string>((resolve) => {
          timer = setTimeout(() => resolve('still waiting'), 10_000);
        }),
      ]);
      clearTimeout(timer);
      assert.equal(outcome, 'woken');
    });

    it('writes one transaction per append when group commit is off', async () => {
      const single = new PostgresEventStore(handle, { groupCommit: false });
      const streams = Array.from({ length: 5 }, () => `gc-${randomUUID()}`);
      await Promise.all(streams.map((stream) => single.append(stream, [event()], 'no_stream')));
      const transactions = new Set((await Promise.all(streams.map(transactionOf))).flat());
      assert.equal(transactions.size, 5);
      await single.close();
    });
  });
};

describe('group commit', { skip: skipWithoutPostgres }, () => {
  groupCommitSuite('PostgreSQL', async () => {
    const database = await createTestDatabase();
    const handle = await openDatabase({ kind: 'postgres', url: database.url });
    return {
      handle,
      close: async () => {
        await handle.close();
        await database.drop();
      },
    };
  });
});

groupCommitSuite('PGlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'incentable-gc-'));
  const handle = await openDatabase({ kind: 'pglite', dataDir: join(dir, 'data') });
  return {
    handle,
    close: async () => {
      await handle.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
