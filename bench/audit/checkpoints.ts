/**
 * Issue 18 (verifiable history) benchmark, three parts, one run, one line per figure (each with
 * the CPU pressure when it was taken):
 *
 * 1. Appends with the Merkle tree's builder on and off, side by side: the real PostgresEventStore
 *    (group commit, 8 writers, 1 event per append, 'any', bench/eventstore's workload) on two
 *    fresh databases, one with the `audit-tree` subscription running the real builder and one
 *    without; phases alternate off, on, off, on... The builder's handler time per event, the
 *    rows and bytes it keeps per event, WAL per event, and the tree's lag (sampled every 100 ms)
 *    and its time to catch up when the writers stop.
 * 2. A seeded 1,000,000-event history (bench/audit/history.ts): the tree built over it by the
 *    real subscription (its default batch of 500, as the runtime runs it), then inclusion proofs
 *    (one leaf; 50 leaves at once, a member statement's worth), consistency proofs and roots,
 *    each proof checked with the RFC 9162 verifiers.
 * 3. A signed checkpoint (createCheckpointer, tiles written to a temp dir; with nine more signed
 *    notes at every tenth of the size, as a checkpoint interval leaves them), then
 *    `verifyCheckpoints` in process and `audit verify --checkpoints` through the real CLI when
 *    it has that option; the time split into its page reads, hashing and tile reads.
 *
 *   npx tsx bench/audit/checkpoints.ts [events]      (default 1,000,000)
 *   BENCH_QUICK=1 npx tsx bench/audit/checkpoints.ts (smoke run: 20,000 events, 2 s phases)
 *   BENCH_APPEND_SECONDS=10 BENCH_ROUNDS=2 BENCH_WRITERS=8   (part 1)
 *   BENCH_TREE_BATCH=500      (the subscription's batch while building over the history)
 *   BENCH_ONLY=appends|history (one part only; history is parts 2 and 3)
 *   BENCH_KEEP=1              (keep the history's database and checkpoint dir; prints them)
 *   BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/postgres  (admin db; loopback only)
 */
import { spawnSync } from 'node:child_process';
import { hash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { openDatabase, type DatabaseHandle } from '../../adapters/db/database.ts';
import type { Database } from '../../adapters/db/schema.ts';
import { PostgresEventStore } from '../../adapters/eventstore/postgresEventStore.ts';
import type { Subscription, SubscriptionHandler } from '../../application/ports.ts';
import {
  auditTreeSubscription,
  createAuditTreeBuilder,
  consistencyProof,
  inclusionProofs,
  rootAt,
  treeSize,
} from '../../adapters/audit/auditTree.ts';
import { createCheckpointer, writeCheckpointDir } from '../../adapters/audit/checkpoints.ts';
import {
  appendLeaves,
  frontierRoot,
  leafHash,
  verifyConsistency,
  verifyInclusion,
  type Frontier,
} from '../../adapters/audit/merkle.ts';
import {
  checkpointText,
  noteSigner,
  parseVerifier,
  verifierKeyOf,
} from '../../adapters/audit/signedNote.ts';
import { tilePath } from '../../adapters/audit/checkpoints.ts';
import {
  readCheckpointSources,
  verifyCheckpoints,
} from '../../adapters/audit/verifyCheckpoints.ts';
import {
  benchEvent,
  cpuPressure,
  createBenchDatabase,
  fmtInt,
  fmtMs,
  fmtRatio,
  quantile,
  runWriters,
  sleep,
  type BenchDatabase,
  type RunResult,
} from '../eventstore/support.ts';
import { adminUrl, postgresCpuSeconds, printMachine } from '../webhooks/harness.ts';
import { seedHistory } from './history.ts';

const quick = process.env.BENCH_QUICK === '1';
const total = Number(process.argv[2] ?? (quick ? 20_000 : 1_000_000));
const phaseSeconds = Number(process.env.BENCH_APPEND_SECONDS ?? (quick ? 2 : 10));
const warmupSeconds = quick ? 0.25 : Math.min(1, phaseSeconds * 0.2);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const writers = Number(process.env.BENCH_WRITERS ?? 8);
const treeBatch =
  process.env.BENCH_TREE_BATCH === undefined ? undefined : Number(process.env.BENCH_TREE_BATCH);
const only = process.env.BENCH_ONLY ?? 'all';
const keep = process.env.BENCH_KEEP === '1';
const samples = quick
  ? { single: 200, consistency: 50, batches: 20, roots: 5 }
  : { single: 1_000, consistency: 500, batches: 200, roots: 20 };
const streams = 1000;
const origin = 'bench.incentable.example/log';
const root = new URL('../../', import.meta.url).pathname;

const psi = () => `CPU pressure ${cpuPressure()} %`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
const perS = (n: number, ms: number) => fmtInt((n / ms) * 1000);
const bytes = (n: number) =>
  n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
const randomInt = (n: number) => Math.floor(Math.random() * n);

/** p50 / p99 / max of timings, in ms. */
const spread = (ms: number[]): string => {
  const sorted = [...ms].sort((a, b) => a - b);
  return `p50 ${fmtMs(quantile(sorted, 0.5))} ms, p99 ${fmtMs(quantile(sorted, 0.99))} ms, max ${fmtMs(sorted.at(-1) ?? Number.NaN)} ms`;
};

/** What else runs: the server's other sessions and the busiest processes on the machine. */
const otherWork = async (): Promise<string> => {
  const parts: string[] = [];
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const r = await client.query<{ datname: string | null; n: string }>(
      `select datname, count(*)::text as n from pg_stat_activity
       where backend_type = 'client backend' and pid <> pg_backend_pid()
       group by datname order by datname`,
    );
    parts.push(
      `other sessions on the server: ${r.rows.map((row) => `${row.datname ?? '?'} ${row.n}`).join(', ') || 'none'}`,
    );
  } finally {
    await client.end();
  }
  const ps = spawnSync('ps', ['-eo', 'pcpu,pid,comm', '--sort=-pcpu', '--no-headers'], {
    encoding: 'utf8',
  });
  const busiest = (ps.stdout ?? '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith(`0.0 `) && !line.includes(` ${process.pid} `))
    .slice(0, 5);
  parts.push(`busiest processes (%CPU over their life, pid, name): ${busiest.join('; ') || '-'}`);
  return parts.join('; ');
};

/** The builder with a stopwatch around it: handler time and events, over its whole life. */
const timedBuilder = () => {
  const stats = { ms: 0, events: 0, batches: 0 };
  const builder = createAuditTreeBuilder();
  const handle: SubscriptionHandler<Kysely<Database>> = async (events, tx) => {
    const started = performance.now();
    await builder(events, tx);
    stats.ms += performance.now() - started;
    stats.events += events.length;
    stats.batches++;
  };
  return { stats, handle };
};

const walLsn = async (db: Kysely<Database>): Promise<string> =>
  (await sql<{ lsn: string }>`select pg_current_wal_lsn()::text as lsn`.execute(db)).rows[0]!.lsn;
const walSince = async (db: Kysely<Database>, from: string): Promise<number> =>
  Number(
    (
      await sql<{
        d: string;
      }>`select pg_wal_lsn_diff(pg_current_wal_lsn(), ${from}::pg_lsn)::text as d`.execute(db)
    ).rows[0]!.d,
  );
const eventCount = async (db: Kysely<Database>): Promise<number> =>
  Number(
    (await sql<{ n: string }>`select count(*)::text as n from incentable_events`.execute(db))
      .rows[0]!.n,
  );

/** Rows and on-disk bytes (with indexes) of the tree's two tables. */
const treeFootprint = async (db: Kysely<Database>) => {
  const r = await sql<{ leaves: string; nodes: string; leaf_bytes: string; node_bytes: string }>`
    select (select count(*) from incentable_audit_leaves)::text as leaves,
      (select count(*) from incentable_audit_nodes)::text as nodes,
      pg_total_relation_size('incentable_audit_leaves')::text as leaf_bytes,
      pg_total_relation_size('incentable_audit_nodes')::text as node_bytes`.execute(db);
  const row = r.rows[0]!;
  return {
    leaves: Number(row.leaves),
    nodes: Number(row.nodes),
    leafBytes: Number(row.leaf_bytes),
    nodeBytes: Number(row.node_bytes),
  };
};

const databases: BenchDatabase[] = [];
const tempDirs: string[] = [];
const newDatabase = async () => {
  const database = await createBenchDatabase(adminUrl);
  databases.push(database);
  return database;
};

// ---------------------------------------------------------------------------------------------
// 1. Appends with the tree's builder on and off

type Phase = {
  on: boolean;
  run: RunResult;
  appended: number;
  walPerEvent: number;
  handlerUsPerEvent: number;
  batches: number;
  maxLag: number;
  maxLagFirstHalf: number;
  maxLagSecondHalf: number;
  lagAtStop: number;
  catchUpMs: number;
  pressure: string;
};

const benchAppends = async (): Promise<void> => {
  console.log(
    `\n## 1. Appends, tree builder on vs off: ${writers} writers x 1 event/append, 'any', ${streams} streams, group commit on, pool of 10; ${phaseSeconds} s per phase after ${warmupSeconds} s warm-up, ${rounds} rounds of off then on`,
  );
  const [offDb, onDb] = [await newDatabase(), await newDatabase()];
  const offHandle = await openDatabase({ kind: 'postgres', url: offDb.url, poolSize: 10 });
  const onHandle = await openDatabase({ kind: 'postgres', url: onDb.url, poolSize: 10 });
  const offStore = new PostgresEventStore(offHandle);
  const onStore = new PostgresEventStore(onHandle);
  const builder = timedBuilder();
  let tree: Subscription | null = null;
  const phases: Phase[] = [];
  try {
    tree = await onStore.subscribe({
      name: auditTreeSubscription,
      handle: builder.handle,
      onError: (error) => console.error('audit tree failed; retrying:', error),
    });
    const appendedTotal = { on: 0, off: 0 };
    for (let round = 0; round < rounds; round++) {
      for (const on of [false, true]) {
        const store = on ? onStore : offStore;
        const handle = on ? onHandle : offHandle;
        const key = on ? 'on' : 'off';
        const wal0 = await walLsn(handle.db);
        const handler0 = { ...builder.stats };
        let appended = 0;
        const lags: { at: number; lag: number }[] = [];
        let sampling = true;
        const started = performance.now();
        // Both phases sample alike (the off database's tree stays empty): the same extra load.
        const sampler = (async () => {
          while (sampling) {
            const size = await treeSize(handle.db);
            if (on) lags.push({ at: performance.now() - started, lag: appendedTotal.on - size });
            await sleep(100);
          }
        })();
        const run = await runWriters({
          writers,
          seconds: phaseSeconds,
          warmupSeconds,
          op: async () => {
            await store.append(`bench-${randomInt(streams)}`, [benchEvent(randomInt(1000))], 'any');
            appended++;
            appendedTotal[key]++;
            return 1;
          },
        });
        sampling = false;
        await sampler;
        const pressure = psi();
        let lagAtStop = 0;
        let catchUpMs = 0;
        if (on && tree) {
          const events = await eventCount(handle.db);
          lagAtStop = events - (await treeSize(handle.db));
          // Polled, not tree.caughtUp(): that waits for the idle loop's next poll (500 ms).
          const t = performance.now();
          while ((await treeSize(handle.db)) < events && performance.now() - t < 60_000)
            await sleep(1);
          catchUpMs = performance.now() - t;
          const size = await treeSize(handle.db);
          if (size !== events)
            console.log(`  TREE SIZE ${size} AFTER CATCHING UP, ${events} EVENTS IN THE LOG`);
        }
        const wal = await walSince(handle.db, wal0);
        const half = (phaseSeconds + warmupSeconds) * 500;
        const max = (list: typeof lags) => Math.max(0, ...list.map((l) => l.lag));
        const phase: Phase = {
          on,
          run,
          appended,
          walPerEvent: wal / appended,
          handlerUsPerEvent:
            ((builder.stats.ms - handler0.ms) * 1000) /
            Math.max(1, builder.stats.events - handler0.events),
          batches: builder.stats.batches - handler0.batches,
          maxLag: max(lags),
          maxLagFirstHalf: max(lags.filter((l) => l.at < half)),
          maxLagSecondHalf: max(lags.filter((l) => l.at >= half)),
          lagAtStop,
          catchUpMs,
          pressure,
        };
        phases.push(phase);
        const events = builder.stats.events - handler0.events;
        console.log(
          `round ${round + 1}, tree builder ${on ? 'on ' : 'off'}: ${fmtInt(run.eventsPerS)} events/s (p50 ${fmtMs(run.latencyP50Ms)} ms, p99 ${fmtMs(run.latencyP99Ms)} ms per append), ` +
            `${fmtInt(phase.walPerEvent)} B of WAL per event` +
            (on
              ? `, builder ${fmtInt(phase.handlerUsPerEvent)} µs of handler time per event (${fmtInt(events)} events in ${fmtInt(phase.batches)} batches, ${(events / Math.max(1, phase.batches)).toFixed(1)} per batch), ` +
                `lag max ${fmtInt(phase.maxLag)} events (first half ${fmtInt(phase.maxLagFirstHalf)}, second half ${fmtInt(phase.maxLagSecondHalf)}), ${fmtInt(phase.lagAtStop)} behind when the writers stopped, caught up ${fmtMs(phase.catchUpMs)} ms later`
              : '') +
            `, node CPU ${fmtInt(run.nodeCpuPct)} %, ${pressure}`,
        );
      }
    }
    const on = phases.filter((p) => p.on);
    const off = phases.filter((p) => !p.on);
    const mean = (list: Phase[], f: (p: Phase) => number) =>
      list.reduce((sum, p) => sum + f(p), 0) / list.length;
    const onRate = mean(on, (p) => p.run.eventsPerS);
    const offRate = mean(off, (p) => p.run.eventsPerS);
    console.log(
      `append rate, tree builder on / off: ${on.map((p) => fmtInt(p.run.eventsPerS)).join(', ')} / ${off.map((p) => fmtInt(p.run.eventsPerS)).join(', ')} events/s; means ${fmtInt(onRate)} / ${fmtInt(offRate)}, ratio on/off ${fmtRatio(onRate / offRate)} (per round: ${on.map((p, i) => fmtRatio(p.run.eventsPerS / off[i]!.run.eventsPerS)).join(', ')}), ${psi()}`,
    );
    console.log(
      `tree builder handler time per event: ${on.map((p) => fmtInt(p.handlerUsPerEvent)).join(', ')} µs (over its life ${fmtInt((builder.stats.ms * 1000) / Math.max(1, builder.stats.events))} µs, ${fmtInt(builder.stats.events)} events in ${fmtInt(builder.stats.batches)} batches)`,
    );
    console.log(
      `WAL per appended event, on / off: ${fmtInt(mean(on, (p) => p.walPerEvent))} / ${fmtInt(mean(off, (p) => p.walPerEvent))} B (cluster-wide WAL: includes anything else the server wrote meanwhile)`,
    );
    const footprint = await treeFootprint(onHandle.db);
    const events = await eventCount(onHandle.db);
    console.log(
      `tree rows per event: ${(footprint.leaves / events).toFixed(2)} leaf + ${(footprint.nodes / events).toFixed(2)} node rows; on disk with indexes ${fmtInt(footprint.leafBytes / events)} + ${fmtInt(footprint.nodeBytes / events)} B per event (${fmtInt(events)} events, ${bytes(footprint.leafBytes)} + ${bytes(footprint.nodeBytes)})`,
    );
    console.log(
      `tree lag: max ${fmtInt(Math.max(...on.map((p) => p.maxLag)))} events while appending (per phase ${on.map((p) => `${fmtInt(p.maxLagFirstHalf)} then ${fmtInt(p.maxLagSecondHalf)}`).join('; ')}), caught up within ${fmtMs(Math.max(...on.map((p) => p.catchUpMs)))} ms of the writers stopping; tree ${fmtInt(footprint.leaves)} leaves for ${fmtInt(events)} events at the end`,
    );
  } finally {
    await tree?.stop();
    await onStore.close();
    await offStore.close();
    await onHandle.close();
    await offHandle.close();
  }
};

// ---------------------------------------------------------------------------------------------
// 2. The tree over a seeded history, and its proofs

/** The leaf page `audit verify --checkpoints` reads (verifyCheckpoints.ts readLeafPage). */
const leafPageSql = (from: number, limit: number) => sql<{ leaf_index: string; hash: string }>`
  select l.leaf_index::text, e.hash from incentable_audit_leaves l
  left join incentable_events e on e.event_id = l.event_id
  where l.leaf_index >= ${from}::bigint and l.leaf_index < ${from + limit}::bigint
  order by l.leaf_index`;

const buildTree = async (handle: DatabaseHandle, events: number): Promise<void> => {
  const store = new PostgresEventStore(handle);
  const builder = timedBuilder();
  const pg0 = postgresCpuSeconds();
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const progress = setInterval(() => {
    process.stderr.write(`\rtree: ${builder.stats.events} leaves`);
  }, 2000);
  try {
    const tree = await store.subscribe({
      name: auditTreeSubscription,
      handle: builder.handle,
      ...(treeBatch !== undefined && { batchSize: treeBatch }),
      onError: (error) => console.error('audit tree failed; retrying:', error),
    });
    await tree.caughtUp();
    const ms = performance.now() - started;
    await tree.stop();
    clearInterval(progress);
    process.stderr.write('\n');
    const cpu = process.cpuUsage(cpu0);
    const pg1 = postgresCpuSeconds();
    const size = await treeSize(handle.db);
    console.log(
      `tree built over the history by the audit-tree subscription (batches of ${treeBatch ?? 500}): ${fmtInt(size)} leaves in ${seconds(ms)} = ${perS(size, ms)} events/s; ` +
        `handler ${fmtInt((builder.stats.ms * 1000) / Math.max(1, builder.stats.events))} µs per event (${fmtInt((builder.stats.ms / ms) * 100)} % of the time; the rest is the subscription's page reads, lease and checkpoint), ${fmtInt(builder.stats.batches)} batches, ` +
        `node CPU ${fmtInt(((cpu.user + cpu.system) / 1000 / ms) * 100)} %` +
        (pg0 !== null && pg1 !== null
          ? `, postgres CPU ${fmtInt(((pg1 - pg0) * 1000 * 100) / ms)} %`
          : '') +
        `, ${psi()}`,
    );
    if (size !== events) console.log(`  TREE SIZE ${size}, ${events} EVENTS`);
  } finally {
    clearInterval(progress);
    await store.close();
  }
  const footprint = await treeFootprint(handle.db);
  console.log(
    `tree rows: ${fmtInt(footprint.leaves)} leaves (${bytes(footprint.leafBytes)} with indexes, ${fmtInt(footprint.leafBytes / events)} B per event), ${fmtInt(footprint.nodes)} nodes (${bytes(footprint.nodeBytes)}, ${fmtInt(footprint.nodeBytes / events)} B per event)`,
  );
};

const benchProofs = async (db: Kysely<Database>): Promise<void> => {
  const size = await treeSize(db);
  const rootMs: number[] = [];
  let treeRoot: Buffer = Buffer.alloc(0);
  for (let i = 0; i < samples.roots; i++) {
    const t = performance.now();
    treeRoot = await rootAt(db, size);
    rootMs.push(performance.now() - t);
  }
  const sizes = Array.from({ length: samples.roots }, () => 1 + randomInt(size));
  for (const at of sizes) {
    const t = performance.now();
    await rootAt(db, at);
    rootMs.push(performance.now() - t);
  }
  console.log(
    `root of the tree at its size and at ${samples.roots} random sizes (${rootMs.length} reads): ${spread(rootMs)}, ${psi()}`,
  );

  const leafOf = async (index: number) =>
    Buffer.from(
      (
        await sql<{ hash: Buffer }>`
          select hash from incentable_audit_leaves where leaf_index = ${index}::bigint`.execute(db)
      ).rows[0]!.hash,
    );

  const singleMs: number[] = [];
  let checked = 0;
  let bad = 0;
  let hashes = 0;
  for (let i = 0; i < samples.single; i++) {
    const index = randomInt(size);
    const t = performance.now();
    const [proof] = await inclusionProofs(db, [index], size);
    singleMs.push(performance.now() - t);
    hashes += proof!.length;
    if (i < 100) {
      checked++;
      if (
        !verifyInclusion({ index, size, leaf: await leafOf(index), proof: proof!, root: treeRoot })
      )
        bad++;
    }
  }
  console.log(
    `inclusion proof, 1 random leaf of ${fmtInt(size)}, ${fmtInt(samples.single)} proofs one after another: ${spread(singleMs)}, ${(hashes / samples.single).toFixed(1)} hashes each; ${checked} checked with verifyInclusion, ${bad} bad, ${psi()}`,
  );

  const batchMs: number[] = [];
  bad = 0;
  for (let i = 0; i < samples.batches; i++) {
    const indexes = Array.from({ length: 50 }, () => randomInt(size));
    const t = performance.now();
    const proofs = await inclusionProofs(db, indexes, size);
    batchMs.push(performance.now() - t);
    if (i < 5)
      for (const [k, index] of indexes.entries())
        if (
          !verifyInclusion({
            index,
            size,
            leaf: await leafOf(index),
            proof: proofs[k]!,
            root: treeRoot,
          })
        )
          bad++;
  }
  console.log(
    `inclusion proofs, 50 random leaves at once (a member statement's worth), ${fmtInt(samples.batches)} batches: ${spread(batchMs)}; 5 batches checked, ${bad} bad, ${psi()}`,
  );

  const consistencyMs: number[] = [];
  bad = 0;
  for (let i = 0; i < samples.consistency; i++) {
    const a = 1 + randomInt(size);
    const b = 1 + randomInt(size);
    const [from, to] = a <= b ? [a, b] : [b, a];
    const t = performance.now();
    const proof = await consistencyProof(db, from, to);
    consistencyMs.push(performance.now() - t);
    if (i < 50) {
      const [oldRoot, newRoot] = [await rootAt(db, from), await rootAt(db, to)];
      if (!verifyConsistency({ oldSize: from, newSize: to, oldRoot, newRoot, proof })) bad++;
    }
  }
  console.log(
    `consistency proof between 2 random sizes up to ${fmtInt(size)}, ${fmtInt(samples.consistency)} proofs: ${spread(consistencyMs)}; ${Math.min(50, samples.consistency)} checked with verifyConsistency, ${bad} bad, ${psi()}`,
  );
};

// ---------------------------------------------------------------------------------------------
// 3. Checkpoints and audit verify --checkpoints

const dirFootprint = async (dir: string): Promise<{ files: number; bytes: number }> => {
  let files = 0;
  let size = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    files++;
    size += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return { files, bytes: size };
};

/** Whether bin/incentable.js will run the compiled dist/ (it does only while it is fresh). */
const compiled = async (): Promise<boolean> => {
  // @ts-expect-error bin/ is plain JavaScript, outside the typed program.
  const { fingerprint } = (await import('../../bin/sources.mjs')) as {
    fingerprint: (root: string) => string;
  };
  try {
    return (await readFile(`${root}dist/.sources`, 'utf8')) === fingerprint(root);
  } catch {
    return false;
  }
};

const cliHas = (option: string): boolean => {
  const help = spawnSync(process.execPath, ['bin/incentable.js', 'audit', 'verify', '--help'], {
    cwd: root,
    encoding: 'utf8',
  });
  return help.stdout.includes(option);
};

const cli = (url: string, args: string[]) => {
  const started = performance.now();
  const result = spawnSync(
    '/usr/bin/time',
    ['-f', '%M', process.execPath, 'bin/incentable.js', ...args],
    {
      cwd: root,
      encoding: 'utf8',
      maxBuffer: 1 << 28,
      env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'silent' },
    },
  );
  const ms = performance.now() - started;
  const rssKb = Number(result.stderr.trim().split('\n').at(-1));
  let json: Record<string, unknown> | null = null;
  try {
    json = JSON.parse(result.stdout) as Record<string, unknown>;
  } catch {
    json = null;
  }
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, ms, rssKb, json };
};

/** Where verifyCheckpoints' time goes: its page reads, its hashing, its tile reads, apart. */
const breakdown = async (db: Kysely<Database>, size: number, tilesDir: string): Promise<void> => {
  const pageSize = 20_000;
  let rows: { leaf_index: string; hash: string }[] = [];
  const pageMs: number[] = [];
  const t0 = performance.now();
  const all: string[] = [];
  for (let from = 0; from < size; from += pageSize) {
    const t = performance.now();
    rows = (await leafPageSql(from, pageSize).execute(db)).rows;
    pageMs.push(performance.now() - t);
    for (const row of rows) all.push(row.hash);
  }
  const readMs = performance.now() - t0;
  console.log(
    `  breakdown, the leaf pages alone (the same SQL, ${fmtInt(pageSize)} rows a page, one after another): ${seconds(readMs)} = ${perS(size, readMs)} leaves/s, page ${spread(pageMs)}, ${psi()}`,
  );
  const t1 = performance.now();
  for (let from = 0; from < size; from += pageSize)
    await sql`
      select l.leaf_index from incentable_audit_leaves l
      left join incentable_events e on e.event_id = l.event_id
      where l.leaf_index >= ${from}::bigint and l.leaf_index < ${from + pageSize}::bigint
      order by l.leaf_index`.execute(db);
  const joinOnlyMs = performance.now() - t1;
  const t2 = performance.now();
  for (let from = 0; from < size; from += pageSize)
    await sql`
      select l.leaf_index::text, l.hash from incentable_audit_leaves l
      where l.leaf_index >= ${from}::bigint and l.leaf_index < ${from + pageSize}::bigint
      order by l.leaf_index`.execute(db);
  const leavesOnlyMs = performance.now() - t2;
  console.log(
    `  breakdown, the same join returning only leaf_index (no hash text to transfer and parse): ${seconds(joinOnlyMs)}; the leaves table alone (no join, stored hash): ${seconds(leavesOnlyMs)}, ${psi()}`,
  );
  const explain = await sql<{ 'QUERY PLAN': string }>`explain (analyze, buffers) ${leafPageSql(
    Math.floor(size / 2),
    pageSize,
  )}`.execute(db);
  console.log(`  EXPLAIN (ANALYZE, BUFFERS) of one page from the middle:`);
  for (const row of explain.rows) console.log(`    ${row['QUERY PLAN']}`);

  const t3 = performance.now();
  const leaves = all.map((hash) => leafHash(Buffer.from(hash, 'hex')));
  const leafMs = performance.now() - t3;
  const t4 = performance.now();
  const frontier: Frontier = { size: 0, nodes: [] };
  for (let from = 0; from < leaves.length; from += pageSize)
    appendLeaves(frontier, leaves.slice(from, from + pageSize));
  frontierRoot(frontier);
  const foldMs = performance.now() - t4;
  console.log(
    `  breakdown, hashing: hex decode + leaf hash ${seconds(leafMs)} (${perS(size, leafMs)} leaves/s), appendLeaves' node hashes ${seconds(foldMs)} (${perS(size, foldMs)} leaves/s), ${psi()}`,
  );
  // What a faster verify could do instead (references, not the product's code): one-shot
  // crypto.hash (Node >= 20.12) into scratch buffers, and a frontier of bare hashes.
  const t6 = performance.now();
  const leafInput = Buffer.alloc(33);
  const nodeInput = Buffer.alloc(65);
  nodeInput[0] = 1;
  const stack: { level: number; hash: Buffer }[] = [];
  for (const hex of all) {
    leafInput.write(hex, 1, 'hex');
    let top = { level: 0, hash: hash('sha256', leafInput, 'buffer') as Buffer };
    while (stack.length > 0 && stack[stack.length - 1]!.level === top.level) {
      stack.pop()!.hash.copy(nodeInput, 1);
      top.hash.copy(nodeInput, 33);
      top = { level: top.level + 1, hash: hash('sha256', nodeInput, 'buffer') };
    }
    stack.push(top);
  }
  let folded = stack[stack.length - 1]?.hash ?? Buffer.alloc(0);
  for (let i = stack.length - 2; i >= 0; i--) {
    stack[i]!.hash.copy(nodeInput, 1);
    folded.copy(nodeInput, 33);
    folded = hash('sha256', nodeInput, 'buffer');
  }
  const oneShotMs = performance.now() - t6;
  console.log(
    `  reference, the same hashing with one-shot crypto.hash into scratch buffers and a frontier of bare hashes: ${seconds(oneShotMs)} (${perS(size, oneShotMs)} leaves/s), same root: ${folded.equals(frontierRoot(frontier))}, ${psi()}`,
  );
  const t7 = performance.now();
  let after = ['0', '0'];
  let inOrder = 0;
  for (;;) {
    const page = await sql<{ t: string; g: string; hash: string }>`
      select transaction_id::text as t, global_position::text as g, hash from incentable_events
      where (transaction_id, global_position) > (${after[0]}::xid8, ${after[1]}::bigint)
      order by transaction_id, global_position limit ${pageSize}`.execute(db);
    inOrder += page.rows.length;
    const last = page.rows.at(-1);
    if (!last || page.rows.length < pageSize) break;
    after = [last.t, last.g];
  }
  const inOrderMs = performance.now() - t7;
  console.log(
    `  reference, the events' hashes in the tree's order (the order index, keyset pages, no join): ${seconds(inOrderMs)} = ${perS(inOrder, inOrderMs)} leaves/s, ${psi()}`,
  );
  // Every 256-leaf subtree root (a full tile's root) computed by PostgreSQL from those pages.
  const page256 = 256 * Math.floor(pageSize / 256);
  let levels = sql`l0 as (select row_number() over (order by transaction_id, global_position) - 1 as i,
    sha256('\\x00'::bytea || decode(hash, 'hex')) as h from page)`;
  for (let k = 1; k <= 8; k++)
    levels = sql`${levels}, ${sql.raw(`l${k}`)} as (select i / 2 as i,
      sha256('\\x01'::bytea || string_agg(h, ''::bytea order by i)) as h
      from ${sql.raw(`l${k - 1}`)} group by i / 2 having count(*) = 2)`;
  const t8 = performance.now();
  after = ['0', '0'];
  const roots: Buffer[] = [];
  for (;;) {
    const r = await sql<{ n: string; t: string | null; g: string | null; roots: Buffer[] | null }>`
      with page as materialized (
        select transaction_id, global_position, hash from incentable_events
        where (transaction_id, global_position) > (${after[0]}::xid8, ${after[1]}::bigint)
        order by transaction_id, global_position limit ${page256}),
      ${levels},
      tail as (select transaction_id::text as t, global_position::text as g from page
        order by transaction_id desc, global_position desc limit 1)
      select (select count(*) from page)::text as n, (select t from tail) as t,
        (select g from tail) as g, (select array_agg(h order by i) from l8) as roots`.execute(db);
    const row = r.rows[0]!;
    roots.push(...(row.roots ?? []));
    if (Number(row.n) < page256 || row.t === null || row.g === null) break;
    after = [row.t, row.g];
  }
  const subtreeMs = performance.now() - t8;
  const stored = await sql<{ hash: Buffer }>`
    select hash from incentable_audit_nodes where level = 8 order by node_index`.execute(db);
  const matching = roots.filter((r, i) => stored.rows[i]?.hash.equals(r)).length;
  const subtrees = roots.length;
  console.log(
    `  reference, the same pages with every 256-leaf subtree root computed by PostgreSQL (sha256 in SQL, a GROUP BY per level, leaving Node ${fmtInt(subtrees)} roots to fold): ${seconds(subtreeMs)} = ${perS(size, subtreeMs)} leaves/s (${fmtInt(matching)} of ${fmtInt(subtrees)} equal to the stored level-8 nodes, checked after the clock stopped), ${psi()}`,
  );

  const t5 = performance.now();
  let compared = 0;
  for (let tile = 0; tile * 256 < size; tile++) {
    const full = join(tilesDir, tilePath(0, tile, 256));
    const bytesOf =
      (await readFile(full).catch(() => null)) ??
      (await readdir(`${full}.p`)
        .then((widths) => readFile(join(`${full}.p`, String(Math.max(...widths.map(Number))))))
        .catch(() => null));
    if (!bytesOf) continue;
    for (let at = 0; at + 32 <= bytesOf.length; at += 32) {
      if (!bytesOf.subarray(at, at + 32).equals(leaves[tile * 256 + at / 32]!)) break;
      compared++;
    }
  }
  const tileMs = performance.now() - t5;
  console.log(
    `  breakdown, reading the level-0 tiles and comparing each leaf: ${seconds(tileMs)} (${fmtInt(compared)} leaves compared, one await per tile; verifyCheckpoints awaits once per leaf), ${psi()}`,
  );
};

const benchCheckpoints = async (database: BenchDatabase, db: Kysely<Database>): Promise<void> => {
  const size = await treeSize(db);
  // signedNote.ts as committed in 3b2fcd9 split a verifier key on every '+', which base64 holds:
  // it refused about half of random keys' verifier keys. Should that come back, it shows here.
  let signer = noteSigner(randomBytes(32).toString('base64'), origin);
  for (let draws = 1; !parseVerifier(verifierKeyOf(signer.name, signer.publicKey)); draws++) {
    console.log(
      `note: parseVerifier refuses the verifier key of random key ${draws} (${verifierKeyOf(signer.name, signer.publicKey)}: its base64 holds a '+'); drawing another`,
    );
    signer = noteSigner(randomBytes(32).toString('base64'), origin);
  }
  const dir = await mkdtemp(join(tmpdir(), 'incentable-checkpoints-'));
  const again = await mkdtemp(join(tmpdir(), 'incentable-checkpoints-'));
  if (!keep) tempDirs.push(dir);
  tempDirs.push(again);
  const checkpointer = createCheckpointer({ db, signer, dir });
  const t0 = performance.now();
  const view = await checkpointer.make();
  const makeMs = performance.now() - t0;
  if (!view) throw new Error('no checkpoint was made');
  const t1 = performance.now();
  await writeCheckpointDir(db, again, view);
  const dirMs = performance.now() - t1;
  const files = await dirFootprint(dir);
  console.log(
    `checkpoint of ${fmtInt(view.size)} leaves: make() ${fmtMs(makeMs)} ms (sign, keep, then write ${fmtInt(files.files)} files, ${bytes(files.bytes)} of tiles and notes); the dir write alone, into an empty dir: ${fmtMs(dirMs)} ms; ${psi()}`,
  );
  // A checkpoint interval leaves many checkpoints: nine more at every tenth of the size.
  for (let k = 1; k < 10; k++) {
    const at = Math.floor((size * k) / 10);
    const note = signer.sign(checkpointText({ origin, size: at, root: await rootAt(db, at) }));
    await writeFile(join(dir, 'checkpoints', String(at).padStart(12, '0')), note);
  }
  const verifierKey = verifierKeyOf(signer.name, signer.publicKey);
  const verifier = parseVerifier(verifierKey);
  if (!verifier) throw new Error('the verifier key does not parse');
  const { sources, tilesDir } = await readCheckpointSources(dir);
  const runs: [string, string | null][] = [
    ['in-process', tilesDir],
    ['in-process, again', tilesDir],
    ['in-process, without the tiles', null],
  ];
  for (const [label, tiles] of quick ? runs.slice(0, 1) : runs) {
    const cpu0 = process.cpuUsage();
    const pg0 = postgresCpuSeconds();
    const t = performance.now();
    const report = await verifyCheckpoints(db, { sources, verifier, tilesDir: tiles });
    const ms = performance.now() - t;
    const cpu = process.cpuUsage(cpu0);
    const pg1 = postgresCpuSeconds();
    console.log(
      `audit verify --checkpoints, ${label}: ${fmtInt(report.leavesPerSecond)} leaves/s (${fmtInt(report.leaves)} leaves, ${report.checkpoints} checkpoints, ok=${report.ok}, ${report.breaks} breaks, ${seconds(ms)}; target 200,000 events/s: ${report.leavesPerSecond >= 200_000 ? 'pass' : 'MISS'}), ` +
        `node CPU ${fmtInt(((cpu.user + cpu.system) / 1000 / ms) * 100)} %` +
        (pg0 !== null && pg1 !== null
          ? `, postgres CPU ${fmtInt(((pg1 - pg0) * 1000 * 100) / ms)} %`
          : '') +
        `, ${psi()}`,
    );
  }
  await breakdown(db, size, dir);

  const keyFile = join(again, 'verifier.key');
  await writeFile(keyFile, `${verifierKey}\n`);
  if (keep)
    console.log(`kept: DATABASE_URL=${database.url}, checkpoint dir ${dir}, key ${verifierKey}`);
  if (!cliHas('--checkpoints')) {
    console.log(
      `audit verify --checkpoints, CLI: not timed: \`node bin/incentable.js audit verify --help\` has no --checkpoints option yet (in-process figures above)`,
    );
  } else {
    const args = ['audit', 'verify', '--checkpoints', dir, '--public-key', keyFile];
    if (cliHas('--json')) args.push('--json');
    const run = cli(database.url, args);
    // { ok, chains: verifyChains' report, checkpoints: verifyCheckpoints' report }
    const report = (key: string) => (run.json?.[key] ?? {}) as Record<string, unknown>;
    const tree = report('checkpoints');
    const chains = report('chains');
    console.log(
      `audit verify --checkpoints, CLI (${args.join(' ').replace(dir, '<dir>').replace(keyFile, '<key file>')}; it runs ${(await compiled()) ? 'dist/' : 'the sources through tsx'}): exit ${run.status}, ok=${String(run.json?.ok)}, wall ${seconds(run.ms)} = ${perS(size, run.ms)} leaves/s wall` +
        (typeof tree.leavesPerSecond === 'number'
          ? `, as it reports: tree ${fmtInt(tree.leavesPerSecond)} leaves/s (${seconds(Number(tree.elapsedMs))}), chains beside it ${fmtInt(Number(chains.eventsPerSecond))} events/s (${seconds(Number(chains.elapsedMs))})`
          : '') +
        `, peak RSS ${fmtInt(run.rssKb / 1024)} MB, ${psi()}`,
    );
    if (run.status !== 0)
      console.log(`  stderr: ${run.stderr.trim().split('\n').slice(-5).join(' | ')}`);
  }
  if (!quick) {
    const plain = cli(database.url, ['audit', 'verify', '--json']);
    const figure = plain.json?.eventsPerSecond;
    console.log(
      `reference, plain audit verify (hash chains) on the same history, CLI: exit ${plain.status}, wall ${seconds(plain.ms)}` +
        (typeof figure === 'number' ? `, ${fmtInt(figure)} events/s as it reports` : '') +
        `, peak RSS ${fmtInt(plain.rssKb / 1024)} MB, ${psi()}`,
    );
  }
};

const benchHistory = async (): Promise<void> => {
  console.log(`\n## 2. The tree over a seeded history of ${fmtInt(total)} events, and its proofs`);
  const database = await createBenchDatabase(adminUrl);
  if (!keep) databases.push(database);
  const handle = await openDatabase({ kind: 'postgres', url: database.url });
  try {
    const t0 = performance.now();
    const { events } = await seedHistory(database.url, {
      total,
      onProgress: (n) => {
        if (n % 100_000 < 5000) process.stderr.write(`\rseeded ${n}`);
      },
    });
    process.stderr.write('\n');
    console.log(`seeded ${fmtInt(events)} events in ${seconds(performance.now() - t0)}, ${psi()}`);
    // As autovacuum would after a bulk load (it is off on the bench machine).
    await sql`vacuum analyze incentable_events`.execute(handle.db);
    await buildTree(handle, events);
    await sql`vacuum analyze incentable_audit_leaves`.execute(handle.db);
    await sql`vacuum analyze incentable_audit_nodes`.execute(handle.db);
    await benchProofs(handle.db);
    console.log(`\n## 3. Checkpoints and audit verify --checkpoints over ${fmtInt(events)} events`);
    await benchCheckpoints(database, handle.db);
  } finally {
    await handle.close();
  }
};

// ---------------------------------------------------------------------------------------------

const started = performance.now();
await printMachine('Verifiable history benchmark (issue 18)');
console.log(
  `BENCH_QUICK=${quick ? 1 : 0} events=${total} BENCH_APPEND_SECONDS=${phaseSeconds} BENCH_ROUNDS=${rounds} BENCH_WRITERS=${writers} BENCH_ONLY=${only}`,
);
console.log(`at start: ${await otherWork()}`);
try {
  const part = async (name: string, run: () => Promise<void>) => {
    const t = performance.now();
    await run();
    console.log(`(${name} took ${seconds(performance.now() - t)})`);
  };
  if (only === 'all' || only === 'appends') await part('part 1', benchAppends);
  if (only === 'all' || only === 'history') await part('parts 2 and 3', benchHistory);
} finally {
  for (const database of databases)
    await database.drop().catch((error: unknown) => console.error(`drop ${database.name}:`, error));
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
}
console.log(`at the end: ${await otherWork()}, ${psi()}`);
console.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
