import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { streamReader, memberHistory } from '../../../adapters/audit/history.ts';
import { readModelTableNames } from '../../../projections/readModelColumns.ts';
import { replayReadModels, type RowDifference } from '../../../adapters/audit/replay.ts';
import { verifyChains, type ChainBreak } from '../../../adapters/audit/verify.ts';
import { loadConfig } from '../../../adapters/config.ts';
import { startRuntime, type Runtime } from '../../../adapters/runtime.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  type TestDatabase,
} from '../../support/postgres.ts';
import { runScript, steppingClock } from './scripted.ts';

const root = new URL('../../../', import.meta.url).pathname;

/** The real CLI in a child process: `npx incentable …` against the test database. */
const cli = (url: string, args: string[]) => {
  const result = spawnSync(process.execPath, ['bin/incentable.js', ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'silent' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
};

describe('audit', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  let runtime: Runtime;
  let programId: string;
  let memberIds: string[];

  const settle = async () => {
    // Policies append tier changes and scores; the projector must have handled those too.
    for (let i = 0; i < 3; i++) {
      await runtime.readModels!.caughtUp();
      await runtime.policies!.caughtUp();
    }
    await runtime.readModels!.caughtUp();
  };

  before(async () => {
    database = await createTestDatabase();
    const clock = steppingClock();
    runtime = await startRuntime(
      loadConfig({ DATABASE_URL: database.url, ROLES: 'api,projector', LOG_LEVEL: 'silent' }),
      { clock, scheduler: false, listen: false },
    );
    ({ programId, memberIds } = await runScript(runtime.incentives, 10_000));
    await settle();
  });
  after(async () => {
    await runtime?.stop();
    await database?.drop();
  });

  describe('after a scripted run of 10,000 mixed commands', () => {
    it('verifies every hash chain clean, and the CLI exits 0', async () => {
      const report = await verifyChains(runtime.database.db);
      assert.equal(report.ok, true);
      assert.ok(report.events > 10_000, `only ${report.events} events`);
      const run = cli(database.url, ['audit', 'verify', '--json']);
      assert.equal(run.status, 0, run.stderr);
      const printed = JSON.parse(run.stdout) as { ok: boolean; breaks: ChainBreak[] };
      assert.equal(printed.ok, true);
      assert.deepEqual(printed.breaks, []);
    });

    it('replays into a fresh schema and finds zero differences with every live read model', async () => {
      const differences: RowDifference[] = [];
      const report = await replayReadModels(runtime.database.db, {
        verify: true,
        onDifference: (d) => {
          differences.push(d);
        },
      });
      assert.deepEqual(differences, []);
      assert.equal(report.totalDifferences, 0);
      assert.ok(report.events > 10_000);
      const counts = await sql<{ n: number }>`select count(*)::int as n from rm_ledger`.execute(
        runtime.database.db,
      );
      assert.ok(counts.rows[0]!.n > 5000);
    });

    it('finds zero differences with the live projector code as the engine too', async () => {
      const report = await replayReadModels(runtime.database.db, {
        verify: true,
        engine: 'projector',
      });
      assert.equal(report.totalDifferences, 0);
    });

    it('finds exactly the one read-model row corrupted in the database, and the CLI exits 1', async () => {
      const db = runtime.database.db;
      const victim = memberIds[3]!;
      await sql`update rm_members set balance = balance + 1 where member_id = ${victim}`.execute(
        db,
      );
      try {
        const differences: RowDifference[] = [];
        const report = await replayReadModels(db, {
          verify: true,
          onDifference: (d) => {
            differences.push(d);
          },
        });
        assert.equal(report.totalDifferences, 1);
        assert.equal(differences.length, 1);
        assert.equal(differences[0]!.table, 'rm_members');
        assert.deepEqual(differences[0]!.key, { member_id: victim });
        assert.deepEqual(differences[0]!.columns, ['balance']);
        const run = cli(database.url, ['replay', '--verify', '--json']);
        assert.equal(run.status, 1, run.stderr);
        const parsed = JSON.parse(run.stdout) as { totalDifferences: number };
        assert.equal(parsed.totalDifferences, 1);
      } finally {
        await sql`update rm_members set balance = balance - 1 where member_id = ${victim}`.execute(
          db,
        );
      }
    });

    it('swaps the rebuilt tables in atomically, and the live projector keeps writing to them', async () => {
      const db = runtime.database.db;
      await sql`delete from rm_ledger where event_id in (select event_id from rm_ledger limit 3)`.execute(
        db,
      );
      const report = await replayReadModels(db, { swap: true });
      assert.ok(report.swapped);
      const verified = await replayReadModels(db, { verify: true });
      assert.equal(verified.totalDifferences, 0);
      await runtime.incentives.movePoints(
        programId,
        memberIds[0]!,
        { direction: 'award', points: 7, reason: 'after swap', reference: null },
        { programId, actor: 'key_audit', correlationId: 'c', causationId: null },
      );
      await settle();
      const afterwards = await replayReadModels(db, { verify: true });
      assert.equal(afterwards.totalDifferences, 0);
      const backups = await sql<{ n: number }>`
        select count(*)::int as n from pg_tables where schemaname = ${report.swapped.backupSchema}`.execute(
        db,
      );
      assert.equal(backups.rows[0]!.n, readModelTableNames.length);
    });

    it('gives balances as of several timestamps equal to the sums of the ledger up to them', async () => {
      const db = runtime.database.db;
      const reader = streamReader(db);
      for (const memberId of memberIds.slice(0, 5)) {
        const ledger = await sql<{ points: number; occurred_at: Date }>`
          select points, occurred_at from rm_ledger where member_id = ${memberId}
          order by occurred_at`.execute(db);
        const rows = ledger.rows;
        assert.ok(rows.length > 3);
        const moments = [0.25, 0.5, 0.75, 1].map(
          (f) => rows[Math.min(rows.length - 1, Math.floor(rows.length * f))]!.occurred_at,
        );
        for (const moment of moments) {
          const history = await memberHistory(reader, { programId, memberId, asOf: moment });
          const sum = rows
            .filter((r) => r.occurred_at.getTime() <= moment.getTime())
            .reduce((total, r) => total + r.points, 0);
          assert.equal(history!.member.balance, sum, `${memberId} at ${moment.toISOString()}`);
          assert.equal(history!.ledger.at(-1)!.balance_after, sum);
        }
        // Now: the same as the live read model.
        // (next_expiry looks ahead under the program's current settings; a view as of a time
        // does not carry it, docs/api.md "Points expiry".)
        const { next_expiry: _next, ...live } = (await runtime.queries.member(
          programId,
          memberId,
        ))!;
        const now = await memberHistory(reader, { programId, memberId, asOf: new Date(8.64e15) });
        const { as_of: _asOf, ...state } = now!.member;
        assert.deepEqual(state, live);
      }
      const before = await memberHistory(reader, {
        programId,
        memberId: memberIds[0]!,
        asOf: new Date('2000-01-01T00:00:00Z'),
      });
      assert.equal(before, null);
    });

    it('prints the history of a member from the CLI', () => {
      const run = cli(database.url, ['history', 'member', memberIds[1]!, '--json']);
      assert.equal(run.status, 0, run.stderr);
      const parsed = JSON.parse(run.stdout) as { member: { id: string; balance: number } };
      assert.equal(parsed.member.id, memberIds[1]);
    });
  });

  describe('with the history tampered with in the database', () => {
    const stream = () => `points-${programId}-${memberIds[2]}`;
    const verifyBoth = async (): Promise<ChainBreak[]> => {
      const breaks: ChainBreak[] = [];
      const report = await verifyChains(runtime.database.db, {
        programId,
        onBreak: (b) => {
          breaks.push(b);
        },
      });
      assert.equal(report.ok, false);
      assert.equal(report.breaks, breaks.length);
      const run = cli(database.url, ['audit', 'verify', '--program', programId, '--json']);
      assert.equal(run.status, 1, run.stderr);
      assert.deepEqual((JSON.parse(run.stdout) as { breaks: ChainBreak[] }).breaks, breaks);
      return breaks;
    };
    const where = (b: ChainBreak) => ({ stream: b.stream, revision: b.revision, kind: b.kind });
    const snapshot = async (revision: number) =>
      (
        await sql<Record<string, unknown>>`
          select global_position::text as global_position, transaction_id::text as transaction_id,
            event_id::text as event_id, stream_name, stream_revision, type, data::text as data,
            metadata::text as metadata, hash
          from incentable_events where stream_name = ${stream()} and stream_revision = ${revision}`.execute(
          runtime.database.db,
        )
      ).rows[0]!;
    const restore = async (row: Record<string, unknown>) => {
      await sql`
        insert into incentable_events (global_position, transaction_id, event_id, stream_name,
          stream_revision, type, data, metadata, hash)
        overriding system value
        values (${row.global_position}::bigint, ${row.transaction_id}::xid8, ${row.event_id}::uuid,
          ${row.stream_name}, ${row.stream_revision}::bigint, ${row.type}, ${row.data}::jsonb,
          ${row.metadata}::jsonb, ${row.hash})`.execute(runtime.database.db);
    };
    after(async () => {
      assert.equal((await verifyChains(runtime.database.db)).ok, true);
    });

    it("reports exactly the stream and revision whose event's data changed, and exits 1", async () => {
      const db = runtime.database.db;
      const original = await snapshot(2);
      await sql`update incentable_events set data = jsonb_set(data, '{points}', '999999')
        where stream_name = ${stream()} and stream_revision = 2`.execute(db);
      try {
        const breaks = await verifyBoth();
        assert.deepEqual(breaks.map(where), [
          { stream: stream(), revision: '2', kind: 'hash_mismatch' },
        ]);
        assert.equal(breaks[0]!.foundHash, original.hash);
        assert.notEqual(breaks[0]!.expectedHash, original.hash);
      } finally {
        await sql`update incentable_events set data = ${original.data}::jsonb
          where stream_name = ${stream()} and stream_revision = 2`.execute(db);
      }
      assert.equal((await verifyChains(db)).ok, true);
    });

    it('reports exactly the first revision of a swapped pair, and exits 1', async () => {
      const db = runtime.database.db;
      const swap = async () => {
        await db.transaction().execute(async (tx) => {
          const s = stream();
          await sql`update incentable_events set stream_revision = -1 where stream_name = ${s} and stream_revision = 1`.execute(
            tx,
          );
          await sql`update incentable_events set stream_revision = 1 where stream_name = ${s} and stream_revision = 2`.execute(
            tx,
          );
          await sql`update incentable_events set stream_revision = 2 where stream_name = ${s} and stream_revision = -1`.execute(
            tx,
          );
        });
      };
      await swap();
      try {
        const breaks = await verifyBoth();
        assert.deepEqual(breaks.map(where), [
          { stream: stream(), revision: '1', kind: 'hash_mismatch' },
        ]);
      } finally {
        await swap();
      }
      assert.equal((await verifyChains(db)).ok, true);
    });

    it('reports exactly the revision of a deleted event, and exits 1', async () => {
      const db = runtime.database.db;
      const original = await snapshot(2);
      await sql`delete from incentable_events where event_id = ${original.event_id}::uuid`.execute(
        db,
      );
      try {
        const breaks = await verifyBoth();
        assert.deepEqual(breaks.map(where), [
          { stream: stream(), revision: '2', kind: 'revision_gap' },
        ]);
      } finally {
        await restore(original);
      }
      assert.equal((await verifyChains(db)).ok, true);
    });

    it('reports a deleted last event at its revision, from the stream head', async () => {
      const db = runtime.database.db;
      const head = await sql<{ revision: number }>`
        select revision from incentable_streams where stream_name = ${stream()}`.execute(db);
      const last = head.rows[0]!.revision;
      const original = await snapshot(last);
      await sql`delete from incentable_events where event_id = ${original.event_id}::uuid`.execute(
        db,
      );
      try {
        const breaks = await verifyBoth();
        assert.deepEqual(breaks.map(where), [
          { stream: stream(), revision: String(last), kind: 'missing_tail' },
        ]);
      } finally {
        await restore(original);
      }
    });
  });
});
