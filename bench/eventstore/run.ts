/**
 * Event store benchmark: append throughput (ours, a raw INSERT baseline, Emmett), readAll
 * throughput and subscription lag, on real PostgreSQL and on PGlite. Prints tables and a
 * markdown summary for BENCHMARKS.md; writes nothing into the repository.
 *
 *   BENCH_SECONDS=5 BENCH_READ_EVENTS=1000000 npx tsx bench/eventstore/run.ts
 *   BENCH_QUICK=1 npx tsx bench/eventstore/run.ts        (smoke run, small sizes)
 *   BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/postgres  (admin db; loopback only)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import pg from 'pg';
import { openDatabase, type DatabaseHandle } from '../../adapters/db/database.ts';
import { ConcurrencyError, type ExpectedRevision } from '../../application/ports.ts';
import { PostgresEventStore } from '../../adapters/eventstore/postgresEventStore.ts';
import { comparePositions, type Position } from '../../domain/recordedEvent.ts';
import type { EmmettBench } from './emmett.ts';
import { measureLag, type LagResult } from './lag.ts';
import {
  benchEvent,
  Conflict,
  cpuPressure,
  createBenchDatabase,
  fmtInt,
  fmtMs,
  fmtRatio,
  printTable,
  quantile,
  runWriters,
  sleep,
  type BenchDatabase,
  type RunResult,
} from './support.ts';
import { commitRates } from '../webhooks/harness.ts';

const quick = process.env.BENCH_QUICK === '1';
const seconds = Number(process.env.BENCH_SECONDS ?? (quick ? 1 : 5));
const warmupSeconds = Math.min(1, seconds * 0.2);
const readEvents = Number(process.env.BENCH_READ_EVENTS ?? (quick ? 20_000 : 1_000_000));
const pgliteReadEvents = Math.min(readEvents, quick ? 10_000 : 200_000);
const readMaxSeconds = Number(process.env.BENCH_READ_MAX_SECONDS ?? 60);
const lagRatePerS = 1000;
const streamCount = 1000;
const adminUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const loopbackHosts = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
if (!loopbackHosts.has(new URL(adminUrl).hostname)) {
  throw new Error(`BENCH_PG_URL must point at a loopback host, not ${new URL(adminUrl).hostname}`);
}

type SummaryRow = { what: string; figure: string; target: string; result: string };
const summary: SummaryRow[] = [];
const note = (what: string, figure: string, target = '', pass?: boolean) =>
  summary.push({
    what,
    figure,
    target: target || '—',
    result: pass === undefined ? '—' : pass ? 'pass' : 'MISS',
  });

const databases: BenchDatabase[] = [];
const tempDirs: string[] = [];
const newDatabase = async () => {
  const db = await createBenchDatabase(adminUrl);
  databases.push(db);
  return db;
};
const newTempDir = () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'incentable-bench-'));
  tempDirs.push(dir);
  return dir;
};

const randomInt = (n: number) => Math.floor(Math.random() * n);

// ---------------------------------------------------------------------------------------------
// Appends

type Mode = 'any' | 'exact';
type Scenario = { writers: number; batch: number; mode: Mode };
const scenarioName = (s: Scenario) =>
  `${s.writers}w x ${s.batch} ev/append, ${s.mode === 'any' ? "'any'" : 'exact'}`;

/** Writer w owns streams w, w+writers, w+2*writers...: exact revisions never clash. */
const pickStream = (prefix: string, scenario: Scenario, writer: number): string =>
  scenario.mode === 'any'
    ? `${prefix}-${randomInt(streamCount)}`
    : `${prefix}-${writer + scenario.writers * randomInt(Math.floor(streamCount / scenario.writers))}`;

let scenarioCounter = 0;

const measureOurs = async (store: PostgresEventStore, scenario: Scenario): Promise<RunResult> => {
  const prefix = `bench-ours${++scenarioCounter}`;
  const revisions = new Map<string, bigint>();
  return runWriters({
    writers: scenario.writers,
    seconds,
    warmupSeconds,
    op: async (writer) => {
      const stream = pickStream(prefix, scenario, writer);
      const events = Array.from({ length: scenario.batch }, (_, i) => benchEvent(i));
      let expected: ExpectedRevision = 'any';
      if (scenario.mode === 'exact') expected = revisions.get(stream) ?? 'no_stream';
      try {
        const result = await store.append(stream, events, expected);
        if (scenario.mode === 'exact') revisions.set(stream, result.nextRevision);
      } catch (error) {
        if (error instanceof ConcurrencyError) throw new Conflict();
        throw error;
      }
      return scenario.batch;
    },
  });
};

const measureEmmett = async (emmett: EmmettBench, scenario: Scenario): Promise<RunResult> => {
  const prefix = `bench-emmett${++scenarioCounter}`;
  const versions = new Map<string, bigint>();
  return runWriters({
    writers: scenario.writers,
    seconds,
    warmupSeconds,
    op: async (writer) => {
      const stream = pickStream(prefix, scenario, writer);
      const events = Array.from({ length: scenario.batch }, (_, i) => {
        const e = benchEvent(i);
        return {
          type: e.type,
          data: e.data as Record<string, unknown>,
          metadata: { ...e.metadata },
        };
      });
      const next = await emmett.append(
        stream,
        events,
        scenario.mode === 'any' ? 'none' : (versions.get(stream) ?? 'new'),
      );
      if (scenario.mode === 'exact') versions.set(stream, next);
      return scenario.batch;
    },
  });
};

/** One single-row INSERT per autocommit transaction, on a plain table of similar columns. */
const measureRawInsert = async (url: string, connections: number): Promise<RunResult> => {
  const pool = new pg.Pool({ connectionString: url, max: connections });
  pool.on('error', () => {});
  await pool.query(`create table if not exists raw_events (
    id uuid primary key, stream_name text not null, type text not null, data jsonb not null, metadata jsonb not null)`);
  try {
    return await runWriters({
      writers: connections,
      seconds,
      warmupSeconds,
      op: async () => {
        const e = benchEvent(randomInt(1000));
        await pool.query(
          'insert into raw_events (id, stream_name, type, data, metadata) values ($1, $2, $3, $4, $5)',
          [
            e.id,
            `raw-${randomInt(streamCount)}`,
            e.type,
            JSON.stringify(e.data),
            JSON.stringify(e.metadata),
          ],
        );
        return 1;
      },
    });
  } finally {
    await pool.end();
  }
};

const appendRow = (label: string, r: RunResult, extra = ''): string[] => [
  label,
  fmtInt(r.eventsPerS),
  fmtInt(r.appendsPerS),
  fmtMs(r.latencyP50Ms),
  fmtMs(r.latencyP99Ms),
  fmtInt(r.conflicts),
  `${fmtInt(r.nodeCpuPct)}%`,
  cpuPressure(),
  extra,
];
const appendHeaders = [
  'scenario',
  'events/s',
  'appends/s',
  'p50 ms',
  'p99 ms',
  'conflicts',
  'node CPU',
  'psi %',
  'note',
];

const scenarios = (writers: number): Scenario[] =>
  [1, 10].flatMap((batch) => (['any', 'exact'] as const).map((mode) => ({ writers, batch, mode })));

const benchPostgresAppends = async (): Promise<void> => {
  console.log(
    `\n## 1-3. Appends on PostgreSQL (${seconds} s each after ${warmupSeconds} s warm-up, ${streamCount} streams)`,
  );
  console.log(
    'Raw INSERT, ours and Emmett are interleaved per scenario so drifting machine load hits all three alike.',
  );
  console.log(
    'Pools: ours 10 connections (openDatabase default), Emmett a pg.Pool of 10, raw one per writer.',
  );
  const [oursDb, emmettDb, rawDb] = [await newDatabase(), await newDatabase(), await newDatabase()];
  const handle = await openDatabase({ kind: 'postgres', url: oursDb.url, poolSize: 10 });
  const store = new PostgresEventStore(handle);
  const { openEmmett } = await import('./emmett.ts');
  const emmett = await openEmmett(emmettDb.url, 10);
  const rows: string[][] = [];
  const ours = new Map<string, RunResult>();
  const theirs = new Map<string, RunResult>();
  const raw = new Map<number, RunResult>();
  try {
    for (const writers of [1, 8]) {
      const r = await measureRawInsert(rawDb.url, writers);
      raw.set(writers, r);
      rows.push(appendRow(`raw INSERT, ${writers} conn x 1 row/commit`, r));
      console.log(rows.at(-1)!.join(' | '));
      for (const scenario of scenarios(writers)) {
        const o = await measureOurs(store, scenario);
        ours.set(scenarioName(scenario), o);
        rows.push(appendRow(`ours   ${scenarioName(scenario)}`, o));
        console.log(rows.at(-1)!.join(' | '));
        const e = await measureEmmett(emmett, scenario);
        theirs.set(scenarioName(scenario), e);
        rows.push(
          appendRow(
            `Emmett ${scenarioName(scenario)}`,
            e,
            `ours/Emmett ${fmtRatio(o.eventsPerS / e.eventsPerS)}`,
          ),
        );
        console.log(rows.at(-1)!.join(' | '));
      }
    }
  } finally {
    await emmett.close();
    await store.close();
    await handle.close();
  }
  console.log();
  printTable(appendHeaders, rows);

  for (const writers of [1, 8]) {
    const r = raw.get(writers)!;
    note(`PG raw single-row INSERT commits, ${writers} conn`, `${fmtInt(r.eventsPerS)} rows/s`);
  }
  for (const writers of [1, 8]) {
    for (const scenario of scenarios(writers)) {
      const name = scenarioName(scenario);
      const o = ours.get(name)!;
      const e = theirs.get(name)!;
      note(
        `PG ours append ${name}`,
        `${fmtInt(o.eventsPerS)} events/s (${fmtInt(o.appendsPerS)} appends/s)`,
      );
      note(
        `PG Emmett append ${name}`,
        `${fmtInt(e.eventsPerS)} events/s (${fmtInt(e.appendsPerS)} appends/s)`,
      );
      const ratio = o.eventsPerS / e.eventsPerS;
      const targeted = writers === 8 && scenario.batch === 1;
      note(
        `PG ours/Emmett ${name}`,
        fmtRatio(ratio),
        targeted ? '>= 1.0' : '',
        targeted ? ratio >= 1 : undefined,
      );
    }
  }
  const oursAny8 = ours.get(scenarioName({ writers: 8, batch: 1, mode: 'any' }))!;
  const oursExact8 = ours.get(scenarioName({ writers: 8, batch: 1, mode: 'exact' }))!;
  const raw8 = raw.get(8)!;
  const rawRatio = oursAny8.eventsPerS / raw8.eventsPerS;
  const rawRatioExact = oursExact8.eventsPerS / raw8.eventsPerS;
  console.log(
    `\nours(8 writers, 1 event/append, 'any') / raw(8 connections) = ${fmtRatio(rawRatio)} (target >= 0.6)`,
  );
  console.log(
    `ours(8 writers, 1 event/append, exact) / raw(8 connections) = ${fmtRatio(rawRatioExact)}`,
  );
  note(
    "PG ours(8w, 1 ev, 'any') / raw INSERT(8 conn)",
    fmtRatio(rawRatio),
    '>= 0.6',
    rawRatio >= 0.6,
  );
  note(
    'PG ours(8w, 1 ev, exact) / raw INSERT(8 conn)',
    fmtRatio(rawRatioExact),
    '>= 0.6',
    rawRatioExact >= 0.6,
  );
};

const benchPgliteAppends = async (): Promise<void> => {
  console.log(
    `\n## 1b. Appends on PGlite (${seconds} s each; one in-process connection: 8 "writers" serialise on it)`,
  );
  const handle = await openDatabase({ kind: 'pglite', dataDir: newTempDir() });
  const store = new PostgresEventStore(handle);
  const rows: string[][] = [];
  try {
    for (const writers of [1, 8]) {
      for (const scenario of scenarios(writers)) {
        const r = await measureOurs(store, scenario);
        rows.push(
          appendRow(`PGlite ${scenarioName(scenario)}`, r, writers > 1 ? 'serialised' : ''),
        );
        console.log(rows.at(-1)!.join(' | '));
        note(
          `PGlite ours append ${scenarioName(scenario)}${writers > 1 ? ' (serialised)' : ''}`,
          `${fmtInt(r.eventsPerS)} events/s (${fmtInt(r.appendsPerS)} appends/s)`,
        );
      }
    }
  } finally {
    await store.close();
    await handle.close();
  }
  console.log();
  printTable(appendHeaders, rows);
};

// ---------------------------------------------------------------------------------------------
// readAll

/**
 * Fills through incentable_append itself (hash chain and all), with the arrays built server-side
 * so the fill costs what the database costs: 1000 events per call, one stream per call.
 */
const fillSql = (stream: string, count: number) => sql`
  with a as (
    select
      array_agg(gen_random_uuid() order by g) as ids,
      array_agg('PointsAwarded'::text order by g) as types,
      array_agg(jsonb_build_object(
        'transactionId', 'txn_' || left(md5(random()::text), 16),
        'memberId', 'mem_' || lpad((g % 100000)::text, 6, '0'),
        'points', 100 + g % 900,
        'reason', 'Quarterly sales target reached for the benchmark program') order by g) as data,
      array_agg(jsonb_build_object(
        'programId', 'prg_bench', 'correlationId', gen_random_uuid(), 'causationId', null,
        'actor', 'key_benchmark01', 'recordedAt', to_char(now() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) order by g) as metadata
    from generate_series(1, ${count}::int) g
  )
  select r.next_revision from a,
    incentable_append(${stream}::text, -2::bigint, a.ids, a.types, a.data, a.metadata) r`;

const fill = async (handle: DatabaseHandle, total: number, parallel: number): Promise<number> => {
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    for (;;) {
      const chunk = Math.min(1000, total - next);
      if (chunk <= 0) return;
      const index = next;
      next += chunk;
      await fillSql(`fill-${index / 1000}`, chunk).execute(handle.db);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return (performance.now() - started) / 1000;
};

/**
 * Pages through store.readAll, timing only the reads; checks that every event comes once and in
 * the global order. Stops after `maxSeconds` (reported) so a slow read cannot stall the run.
 */
const readThrough = async (store: PostgresEventStore, pageSize: number, maxSeconds: number) => {
  let after: Position | null = null;
  let count = 0;
  let inversions = 0;
  let capped = false;
  const ids = new Set<string>();
  const pageMs: number[] = [];
  let readMs = 0;
  const cpu0 = process.cpuUsage();
  for (;;) {
    const t = performance.now();
    const page = await store.readAll({ after, limit: pageSize });
    const ms = performance.now() - t;
    readMs += ms;
    pageMs.push(ms);
    count += page.length;
    for (const event of page) {
      ids.add(event.id);
      if (after && comparePositions(event.position, after) <= 0) inversions++;
      after = event.position;
    }
    if (page.length < pageSize) break;
    if (readMs > maxSeconds * 1000) {
      capped = true;
      break;
    }
  }
  const s = readMs / 1000;
  const cpu = process.cpuUsage(cpu0);
  pageMs.sort((a, b) => a - b);
  return {
    count,
    distinct: ids.size,
    inversions,
    capped,
    seconds: s,
    perS: count / s,
    pageP50: quantile(pageMs, 0.5),
    cpuPct: (cpu.user + cpu.system) / 1e4 / s,
  };
};

const readReport = (r: Awaited<ReturnType<typeof readThrough>>, expected: number): string =>
  `${fmtInt(r.count)} events in ${r.seconds.toFixed(2)} s = ${fmtInt(r.perS)} events/s ` +
  `(page p50 ${fmtMs(r.pageP50)} ms, node CPU ${fmtInt(r.cpuPct)}% of a core)` +
  (r.capped ? ` — stopped after ${readMaxSeconds} s (BENCH_READ_MAX_SECONDS)` : '') +
  (r.distinct !== r.count ? ` — ${fmtInt(r.count - r.distinct)} DUPLICATES` : '') +
  (r.inversions > 0 ? ` — ${fmtInt(r.inversions)} OUT OF ORDER` : '') +
  (!r.capped && r.count !== expected
    ? ` — expected ${fmtInt(expected)}, ${fmtInt(expected - r.distinct)} MISSING`
    : '');

/** Other sessions on this cluster can hold the snapshot xmin back; wait until nothing is held. */
const waitUntilVisible = async (handle: DatabaseHandle, total: number): Promise<void> => {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await sql<{ visible: string }>`
      select count(*)::text as visible from incentable_events
      where transaction_id < pg_snapshot_xmin(pg_current_snapshot())`.execute(handle.db);
    if (Number(r.rows[0]!.visible) >= total || Date.now() > deadline) return;
    await sleep(100);
  }
};

const benchPostgresReadAll = async (): Promise<void> => {
  console.log(`\n## 4. readAll on PostgreSQL over ${fmtInt(readEvents)} events (pages of 1000)`);
  const db = await newDatabase();
  const handle = await openDatabase({ kind: 'postgres', url: db.url });
  const store = new PostgresEventStore(handle);
  try {
    const fillS = await fill(handle, readEvents, 2);
    console.log(
      `fill via incentable_append, 1000 events/call, 2 connections: ${fmtInt(readEvents / fillS)} events/s (${fillS.toFixed(1)} s)`,
    );
    note(
      'PG fill via incentable_append, 1000 ev/call, 2 conn',
      `${fmtInt(readEvents / fillS)} events/s`,
    );
    const v0 = performance.now();
    await sql`vacuum analyze incentable_events`.execute(handle.db);
    console.log(
      `vacuum analyze (as autovacuum would after a bulk insert): ${((performance.now() - v0) / 1000).toFixed(1)} s`,
    );
    const size = await sql<{ size: string; avg: string }>`
      select pg_size_pretty(pg_total_relation_size('incentable_events')) as size,
        (select round(avg(pg_column_size(e.*)))::text from (select * from incentable_events limit 10000) e) as avg`.execute(
      handle.db,
    );
    console.log(`table + indexes: ${size.rows[0]!.size}, average row ${size.rows[0]!.avg} B`);
    await waitUntilVisible(handle, readEvents);

    const r = await readThrough(store, 1000, readMaxSeconds);
    const complete = r.capped || (r.count === readEvents && r.distinct === r.count);
    const pass = r.perS >= 150_000 && complete && r.inversions === 0;
    console.log(`store.readAll (CPU pressure ${cpuPressure()}%): ${readReport(r, readEvents)}`);
    note(
      `PG store.readAll over ${fmtInt(readEvents)} events, pages of 1000`,
      `${fmtInt(r.perS)} events/s`,
      '>= 150,000',
      pass,
    );

    // The same page query on a bare pg client, rows left as pg parses them: what the SQL costs.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const pageSql = `select global_position::text as global_position, transaction_id::text as transaction_id,
        event_id::text as event_id, stream_name, stream_revision::text as stream_revision, type, data, metadata, hash
        from incentable_events
        where (transaction_id, global_position) > ($1::xid8, $2::bigint)
          and transaction_id < pg_snapshot_xmin(pg_current_snapshot()) and true
        order by incentable_events.transaction_id, incentable_events.global_position limit 1000`;
      let after: [string, string] = ['0', '0'];
      let count = 0;
      const t0 = performance.now();
      for (;;) {
        const page = await client.query<{ transaction_id: string; global_position: string }>(
          pageSql,
          after,
        );
        count += page.rows.length;
        if (page.rows.length < 1000) break;
        const last = page.rows[page.rows.length - 1]!;
        after = [last.transaction_id, last.global_position];
      }
      const rawS = (performance.now() - t0) / 1000;
      console.log(
        `same page SQL on a bare pg client (no mapping): ${fmtInt(count / rawS)} events/s`,
      );
      note('PG same page SQL, bare pg client (reference)', `${fmtInt(count / rawS)} events/s`);
      const textSql = pageSql.replace(
        'type, data, metadata',
        'type, data::text as data, metadata::text as metadata',
      );
      after = ['0', '0'];
      count = 0;
      const t1 = performance.now();
      for (;;) {
        const page = await client.query<{ transaction_id: string; global_position: string }>(
          textSql,
          after,
        );
        count += page.rows.length;
        if (page.rows.length < 1000) break;
        const last = page.rows[page.rows.length - 1]!;
        after = [last.transaction_id, last.global_position];
      }
      const textS = (performance.now() - t1) / 1000;
      console.log(
        `same page SQL, jsonb as text (no JSON.parse): ${fmtInt(count / textS)} events/s`,
      );
      note(
        'PG same page SQL, jsonb returned as text (reference)',
        `${fmtInt(count / textS)} events/s`,
      );

      const mid = await client.query<{ t: string; g: string }>(
        `select transaction_id::text as t, global_position::text as g from incentable_events
         order by global_position offset $1 limit 1`,
        [Math.floor(readEvents / 2)],
      );
      const explain = await client.query<{ 'QUERY PLAN': string }>(
        `explain (analyze, buffers) ${pageSql}`,
        [mid.rows[0]!.t, mid.rows[0]!.g],
      );
      console.log('EXPLAIN (ANALYZE, BUFFERS) of one page from the middle:');
      for (const row of explain.rows) console.log(`  ${row['QUERY PLAN']}`);
    } finally {
      await client.end();
    }
  } finally {
    await store.close();
    await handle.close();
  }
};

const benchPgliteReadAll = async (): Promise<void> => {
  console.log(
    `\n## 4b. readAll on PGlite over ${fmtInt(pgliteReadEvents)} events (smaller count: in-process WASM, no fsync)`,
  );
  const handle = await openDatabase({ kind: 'pglite', dataDir: newTempDir() });
  const store = new PostgresEventStore(handle);
  try {
    const fillS = await fill(handle, pgliteReadEvents, 1);
    console.log(
      `fill via incentable_append, 1000 events/call: ${fmtInt(pgliteReadEvents / fillS)} events/s`,
    );
    note(
      'PGlite fill via incentable_append, 1000 ev/call',
      `${fmtInt(pgliteReadEvents / fillS)} events/s`,
    );
    await sql`vacuum analyze incentable_events`.execute(handle.db);
    const r = await readThrough(store, 1000, readMaxSeconds);
    console.log(`store.readAll: ${readReport(r, pgliteReadEvents)}`);
    note(
      `PGlite store.readAll over ${fmtInt(pgliteReadEvents)} events, pages of 1000`,
      `${fmtInt(r.perS)} events/s`,
    );
  } finally {
    await store.close();
    await handle.close();
  }
};

// ---------------------------------------------------------------------------------------------
// Subscription lag

const lagOptions = (monitorUrl?: string) => ({
  monitorUrl,
  name: `bench-lag-${++scenarioCounter}`,
  seconds,
  ratePerS: lagRatePerS,
  streams: streamCount,
});

const lagHeaders = [
  'setup',
  'events',
  'written/s',
  'p50 ms',
  'p99 ms',
  'max ms',
  'before resolve',
  'missing',
  'max in flight',
  'foreign xact p99 ms',
  'psi %',
];
const lagRow = (label: string, r: LagResult) => [
  label,
  fmtInt(r.count),
  fmtInt(r.rate),
  fmtMs(r.p50),
  fmtMs(r.p99),
  fmtMs(r.max),
  fmtInt(r.early),
  fmtInt(r.missing),
  fmtInt(r.maxInFlight),
  fmtMs(r.foreignXactP99Ms),
];

const benchLag = async (): Promise<void> => {
  console.log(
    `\n## 5. Subscription lag, commit -> handler, paced writer at ${lagRatePerS} events/s for ${seconds} s (1 event/append, 'any')`,
  );
  const rows: string[][] = [];
  const record = (label: string, r: LagResult) => {
    rows.push([...lagRow(label, r), cpuPressure()]);
    console.log(rows.at(-1)!.join(' | '));
    const pass = r.p99 < 25 && r.missing === 0 && r.errors === 0;
    note(
      `${label}: lag p50 / p99 / max`,
      `${fmtMs(r.p50)} / ${fmtMs(r.p99)} / ${fmtMs(r.max)} ms` +
        (Number.isFinite(r.foreignXactP99Ms)
          ? ` (other databases' open xacts p99 ${fmtMs(r.foreignXactP99Ms)} ms)`
          : ''),
      'p99 < 25 ms',
      pass,
    );
  };
  {
    const db = await newDatabase();
    const handle = await openDatabase({ kind: 'postgres', url: db.url });
    const store = new PostgresEventStore(handle);
    try {
      record(
        'PG, same store (in-process wake)',
        await measureLag(store, store, lagOptions(db.url)),
      );
    } finally {
      await store.close();
      await handle.close();
    }
  }
  {
    const db = await newDatabase();
    const subscriberHandle = await openDatabase({ kind: 'postgres', url: db.url });
    const writerHandle = await openDatabase({ kind: 'postgres', url: db.url });
    const subscriber = new PostgresEventStore(subscriberHandle);
    const writer = new PostgresEventStore(writerHandle);
    try {
      record(
        'PG, writer on a second handle (LISTEN/NOTIFY wake)',
        await measureLag(subscriber, writer, lagOptions(db.url)),
      );
    } finally {
      await subscriber.close();
      await writer.close();
      await subscriberHandle.close();
      await writerHandle.close();
    }
  }
  {
    const handle = await openDatabase({ kind: 'pglite', dataDir: newTempDir() });
    const store = new PostgresEventStore(handle);
    try {
      record('PGlite, same store', await measureLag(store, store, lagOptions()));
    } finally {
      await store.close();
      await handle.close();
    }
  }
  console.log();
  printTable(lagHeaders, rows);
  console.log(
    "'before resolve': the handler saw the event before the writer's append() promise resolved (lag counted as 0).",
  );
  console.log(
    "'foreign xact p99': age of the oldest xid-holding transaction in OTHER databases of this cluster, sampled every 10 ms.\n" +
      'Readers only see events below pg_snapshot_xmin, which is cluster-wide: lag cannot be lower than that on a shared server.',
  );
};

// ---------------------------------------------------------------------------------------------

const printMachine = async (): Promise<void> => {
  const cpus = os.cpus();
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  const version = await client.query<{ version: string }>('select version()');
  const settings = await client.query<{ name: string; setting: string }>(
    `select name, setting from pg_settings where name in
      ('shared_buffers', 'synchronous_commit', 'fsync', 'wal_level', 'max_connections', 'commit_delay')`,
  );
  const activity = await client.query<{ n: string }>(
    `select count(*)::text as n from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()`,
  );
  await client.end();
  console.log('# Event store benchmark');
  console.log(`date: ${new Date().toISOString()}`);
  console.log(`cpu: ${cpus[0]?.model ?? 'unknown'} x ${cpus.length}`);
  console.log(
    `os: ${os.type()} ${os.release()}, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(`node: ${process.version}`);
  console.log(`postgres: ${version.rows[0]!.version}`);
  console.log(
    `postgres settings: ${settings.rows.map((s) => `${s.name}=${s.setting}`).join(', ')}`,
  );
  console.log(
    `other client sessions on the server at start: ${activity.rows[0]!.n} (shared machine: they add noise)`,
  );
  console.log(
    `CPU pressure at start (PSI some avg10): ${cpuPressure()}% — anything well above 0 means other work competes for the cores`,
  );
  console.log(`disk commit rate: ${await commitRates()}`);
  console.log(
    `BENCH_SECONDS=${seconds} BENCH_READ_EVENTS=${readEvents} BENCH_QUICK=${quick ? 1 : 0}`,
  );
};

const printSummary = (): void => {
  console.log('\n## Summary (markdown, for BENCHMARKS.md)\n');
  console.log('| measurement | figure | target | result |');
  console.log('| --- | --- | --- | --- |');
  for (const row of summary)
    console.log(`| ${row.what} | ${row.figure} | ${row.target} | ${row.result} |`);
};

const main = async (): Promise<void> => {
  const started = performance.now();
  await printMachine();
  try {
    // Emmett's dumbo swaps pg's global jsonb/int8 parsers when it opens: everything that reads
    // rows through pg runs before the append section that loads it.
    await benchPostgresReadAll();
    await benchLag();
    await benchPostgresAppends();
    await benchPgliteAppends();
    await benchPgliteReadAll();
  } finally {
    for (const db of databases)
      await db.drop().catch((error: unknown) => console.error(`drop ${db.name}:`, error));
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  }
  printSummary();
  console.log(
    `\nCPU pressure at the end: ${cpuPressure()}% ('psi %' columns: PSI cpu some avg10 when each row finished)`,
  );
  console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(0)} s`);
};

await main();
