import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { exportEvents, type ExportedEvent } from '../../../adapters/audit/export.ts';
import type { ReplayReport } from '../../../adapters/audit/replay.ts';
import { loadConfig } from '../../../adapters/config.ts';
import { startRuntime, type Runtime } from '../../../adapters/runtime.ts';
import { formatPosition } from '../../../domain/recordedEvent.ts';
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
    maxBuffer: 1 << 28,
    env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'silent' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
};

/** The output of a CLI run that must succeed: a failed one fails here, with its stderr. */
const succeeded = (url: string, args: string[]): string => {
  const run = cli(url, args);
  assert.equal(run.status, 0, `incentable ${args.join(' ')}: ${run.stderr}`);
  return run.stdout;
};

/** RFC 4180, independently of the exporter: quoted fields may hold commas, "" and line breaks. */
const parseCsv = (text: string): string[][] => {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
    } else field += c;
  }
  assert.equal(quoted, false, 'an unterminated quoted field');
  assert.equal(field + record.join(''), '', 'the last record ends with a line break');
  return records;
};

const jsonLines = (text: string): ExportedEvent[] =>
  text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as ExportedEvent);

describe('export and replay from the CLI', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  let runtime: Runtime;
  let programId: string;
  let otherProgramId: string;
  const awkward = 'line one, with a comma\nline "two"\r\nand a tab\tend';

  /** Every event in the global order, as the database holds them. */
  const stored = async (where = sql`true`) =>
    (
      await sql<{ event_id: string; recorded_at: string; program_id: string }>`
        select event_id::text as event_id, metadata->>'recordedAt' as recorded_at,
          metadata->>'programId' as program_id
        from incentable_events where ${where}
        order by transaction_id, global_position`.execute(runtime.database.db)
    ).rows;

  before(async () => {
    database = await createTestDatabase();
    runtime = await startRuntime(
      loadConfig({ DATABASE_URL: database.url, ROLES: 'api,projector', LOG_LEVEL: 'silent' }),
      { clock: steppingClock(), scheduler: false, listen: false },
    );
    let memberIds: string[];
    ({ programId, memberIds } = await runScript(runtime.incentives, 400));
    ({ programId: otherProgramId } = await runScript(runtime.incentives, 150, 7));
    const updated = await runtime.incentives.updateMember(
      programId,
      memberIds[0]!,
      { name: 'Doe, "Jo"', attributes: { note: awkward, 'key, "quoted"': 'x' } },
      { programId, actor: 'key_audit', correlationId: 'c', causationId: null },
    );
    assert.equal(updated.ok, true);
    for (let i = 0; i < 3; i++) {
      await runtime.readModels!.caughtUp();
      await runtime.policies!.caughtUp();
    }
    await runtime.readModels!.caughtUp();
  });
  after(async () => {
    await runtime?.stop();
    await database?.drop();
  });

  describe('export', () => {
    it('writes every event as one JSON line, in the global order', async () => {
      const run = cli(database.url, ['export']);
      assert.equal(run.status, 0, run.stderr);
      const events = jsonLines(run.stdout);
      const rows = await stored();
      assert.ok(rows.length > 500);
      assert.deepEqual(
        events.map((e) => e.id),
        rows.map((r) => r.event_id),
      );
      for (const event of events) {
        assert.match(event.position, /^\d+\.\d+$/);
        assert.match(event.hash, /^[0-9a-f]{64}$/);
        assert.equal(event.time, (event.metadata as { recordedAt: string }).recordedAt);
      }
    });

    it('writes CSV that parses back to the same events, quoting commas, quotes and line breaks', () => {
      const csv = cli(database.url, ['export', '--format', 'csv']);
      assert.equal(csv.status, 0, csv.stderr);
      const jsonl = jsonLines(succeeded(database.url, ['export']));
      const [header = [], ...records] = parseCsv(csv.stdout);
      assert.deepEqual(header, [
        'position',
        'global_position',
        'stream',
        'revision',
        'id',
        'type',
        'time',
        'data',
        'metadata',
        'hash',
      ]);
      assert.equal(records.length, jsonl.length);
      for (const [i, record] of records.entries()) {
        const event = jsonl[i]!;
        assert.equal(record.length, header.length);
        const parsed: Record<string, string> = Object.fromEntries(
          header.map((column, j) => [column, record[j] ?? '']),
        );
        assert.deepEqual(
          {
            ...parsed,
            data: JSON.parse(parsed.data ?? '') as unknown,
            metadata: JSON.parse(parsed.metadata ?? '') as unknown,
          },
          event,
        );
      }
      const changed = jsonl.find(
        (e) =>
          e.type === 'MemberUpdated' &&
          (e.data as { changes: { name?: string } }).changes.name === 'Doe, "Jo"',
      );
      assert.ok(changed, 'the awkward update is exported');
      assert.equal(
        (changed.data as { changes: { attributes: Record<string, string> } }).changes.attributes
          .note,
        awkward,
      );
      // JSON escapes the quote, CSV then doubles it: \""Jo\"".
      assert.ok(csv.stdout.includes('\\""Jo\\""'), 'quotes are doubled');
    });

    it('pages out the same bytes as the COPY export, as the embedded database does', async () => {
      for (const format of ['jsonl', 'csv'] as const) {
        let paged = '';
        const out = new Writable({
          write(chunk: Buffer, _encoding, done) {
            paged += chunk.toString();
            done();
          },
        });
        const { events } = await exportEvents(runtime.database.db, out, {
          format,
          pageSize: 97,
        });
        const copied = cli(database.url, ['export', '--format', format]);
        assert.equal(copied.status, 0, copied.stderr);
        assert.ok(events > 500);
        assert.equal(paged, copied.stdout);
      }
    });

    it('writes to a file with --output, and says how many events it wrote', async () => {
      const path = `/tmp/incentable-export-${process.pid}.jsonl`;
      const run = cli(database.url, ['export', '--output', path, '--format', 'jsonl']);
      assert.equal(run.status, 0, run.stderr);
      const { readFileSync, rmSync } = await import('node:fs');
      const events = jsonLines(readFileSync(path, 'utf8'));
      rmSync(path);
      assert.equal(events.length, (await stored()).length);
      assert.match(run.stderr, new RegExp(`exported ${events.length} events`));
    });

    it('keeps to the events recorded between --since and --until, both inclusive', async () => {
      const rows = await stored();
      const since = rows[Math.floor(rows.length / 3)]!.recorded_at;
      const until = rows[Math.floor((rows.length * 2) / 3)]!.recorded_at;
      const run = cli(database.url, ['export', '--since', since, '--until', until]);
      assert.equal(run.status, 0, run.stderr);
      const events = jsonLines(run.stdout);
      const expected = rows.filter(
        (r) =>
          Date.parse(r.recorded_at) >= Date.parse(since) &&
          Date.parse(r.recorded_at) <= Date.parse(until),
      );
      assert.ok(expected.length > 10 && expected.length < rows.length);
      assert.deepEqual(
        events.map((e) => e.id),
        expected.map((r) => r.event_id),
      );
      // Both bounds are inclusive: the events recorded exactly at them are in.
      assert.ok(events.some((e) => e.time === since));
      assert.ok(events.some((e) => e.time === until));

      const onlySince = jsonLines(succeeded(database.url, ['export', '--since', since]));
      assert.equal(
        onlySince.length,
        rows.filter((r) => Date.parse(r.recorded_at) >= Date.parse(since)).length,
      );
      const bad = cli(database.url, ['export', '--since', 'last tuesday']);
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /ISO-8601/);
    });

    it("keeps to one program's events with --program", async () => {
      for (const program of [programId, otherProgramId]) {
        const events = jsonLines(succeeded(database.url, ['export', '--program', program]));
        const expected = await stored(sql`metadata->>'programId' = ${program}`);
        assert.ok(expected.length > 50);
        assert.deepEqual(
          events.map((e) => e.id),
          expected.map((r) => r.event_id),
        );
      }
      const csv = parseCsv(
        succeeded(database.url, ['export', '--program', otherProgramId, '--format', 'csv']),
      );
      const metadataColumn = csv[0]!.indexOf('metadata');
      for (const record of csv.slice(1))
        assert.equal(
          (JSON.parse(record[metadataColumn]!) as { programId: string }).programId,
          otherProgramId,
        );
    });

    it('refuses a format it does not know', () => {
      const run = cli(database.url, ['export', '--format', 'xml']);
      assert.notEqual(run.status, 0);
      assert.match(run.stderr, /jsonl or csv/);
    });
  });

  describe('replay --from', () => {
    it('replays only the events after the position into a kept schema', async () => {
      const db = runtime.database.db;
      const all = (
        await sql<{ commit: string; prepare: string }>`
          select transaction_id::text as commit, global_position::text as prepare
          from incentable_events order by transaction_id, global_position`.execute(db)
      ).rows;
      // The middle points event: the policies' own appends may trail the commands in the log.
      const points = (
        await sql<{ commit: string; prepare: string }>`
          select transaction_id::text as commit, global_position::text as prepare
          from incentable_events where stream_name like 'points-%'
          order by transaction_id, global_position`.execute(db)
      ).rows;
      const cut = points[Math.floor(points.length / 2)]!;
      const after = all.findIndex(
        (row) => row.commit === cut.commit && row.prepare === cut.prepare,
      );
      const from = formatPosition({ commit: BigInt(cut.commit), prepare: BigInt(cut.prepare) });
      const run = cli(database.url, ['replay', '--from', from, '--projection', 'ledger', '--json']);
      assert.equal(run.status, 0, run.stderr);
      const report = JSON.parse(run.stdout) as ReplayReport & {
        lastPosition: { commit: string; prepare: string };
      };
      try {
        assert.equal(report.events, all.length - after - 1);
        assert.equal(report.kept, true);
        const last = all.at(-1)!;
        assert.deepEqual(report.lastPosition, last);
        // The rebuilt ledger holds exactly the live rows of the events after the cut.
        const rebuilt = await sql<{ event_id: string }>`
          select event_id::text as event_id from ${sql.id(report.schema, 'rm_ledger')}
          order by event_id`.execute(db);
        const expected = await sql<{ event_id: string }>`
          select l.event_id::text as event_id from rm_ledger l
          join incentable_events e on e.event_id = l.event_id
          where (e.transaction_id, e.global_position) > (${cut.commit}::xid8, ${cut.prepare}::bigint)
          order by l.event_id`.execute(db);
        assert.ok(
          expected.rows.length > 20,
          `${expected.rows.length} ledger rows after ${from}, rebuilt ${rebuilt.rows.length}, ${JSON.stringify(report)}`,
        );
        assert.deepEqual(rebuilt.rows, expected.rows);
        const members = await sql<{ n: number }>`
          select count(*)::int as n from ${sql.id(report.schema, 'rm_members')}`.execute(db);
        assert.equal(members.rows[0]!.n, 0, 'only the tables asked for are filled');
      } finally {
        await sql`drop schema if exists ${sql.id(report.schema)} cascade`.execute(db);
      }
    });

    it('replays nothing from the last position, and refuses a malformed one', async () => {
      const last = (
        await sql<{ commit: string; prepare: string }>`
          select transaction_id::text as commit, global_position::text as prepare
          from incentable_events order by transaction_id desc, global_position desc limit 1`.execute(
          runtime.database.db,
        )
      ).rows[0]!;
      const run = cli(database.url, [
        'replay',
        '--from',
        `${last.commit}.${last.prepare}`,
        '--json',
      ]);
      assert.equal(run.status, 0, run.stderr);
      const report = JSON.parse(run.stdout) as ReplayReport;
      await sql`drop schema if exists ${sql.id(report.schema)} cascade`.execute(
        runtime.database.db,
      );
      assert.equal(report.events, 0);
      const bad = cli(database.url, ['replay', '--from', 'yesterday']);
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /<commit>\.<prepare>/);
    });
  });
});
