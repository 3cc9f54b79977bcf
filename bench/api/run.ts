/**
 * API benchmark on real PostgreSQL: POST /v1/programs/:id/members/:id/points/award over keep-alive
 * connections (undici Pool in a child process) spread over 1,000 members, and, in the same run,
 * the event store's own append rate (8 writers, 1 event per append, as bench/eventstore measures
 * it), before and after the API runs so drifting machine load hits both alike.
 *
 *   npx tsx bench/api/run.ts                  (full run, ~2 min)
 *   BENCH_QUICK=1 npx tsx bench/api/run.ts    (smoke run, ~30-40 s)
 *   BENCH_SECONDS=20 BENCH_CONNECTIONS=32 BENCH_MEMBERS=1000
 *   BENCH_ROLES=api | api,projector,delivery  (one scenario only; default: both)
 *   BENCH_GROUP_COMMIT=both | on | off        (each scenario with group commit on and off, side by
 *                                              side; EVENTSTORE_GROUP_COMMIT=1 is "off")
 * The store's rate is one commit per append (group commit off), as the issue's target reads it;
 * the store with group commit on is measured too.
 * CPU profile of the API process during the measured load only (not the set-up; the load
 * generator is a separate, unprofiled process), one file per scenario:
 *   BENCH_CPU_PROFILE=/tmp/prof BENCH_QUICK=1 BENCH_ROLES=api npx tsx bench/api/run.ts
 *   npx tsx bench/api/profile.ts /tmp/prof/*.cpuprofile
 * Tuning through config env only (DATABASE_POOL_SIZE is passed through).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import inspector from 'node:inspector/promises';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { openDatabase } from '../../adapters/db/database.ts';
import { PostgresEventStore } from '../../adapters/eventstore/postgresEventStore.ts';
import {
  benchEvent,
  cpuPressure,
  fmtInt,
  fmtMs,
  fmtRatio,
  printTable,
  runWriters,
  type RunResult,
} from '../eventstore/support.ts';
import {
  adminApiKey,
  databases,
  postgresCpuSeconds,
  printMachine,
  seedProgram,
  startBenchRuntime,
  summary,
  traceSql,
  tuningEnv,
} from '../webhooks/harness.ts';
import { runLoad } from './load.ts';
import type { LoadResult } from './loadgen.ts';

const quick = process.env.BENCH_QUICK === '1';
const seconds = Number(process.env.BENCH_SECONDS ?? (quick ? 5 : 20));
const warmupSeconds = quick ? 1 : 3;
const storeSeconds = Number(process.env.BENCH_STORE_SECONDS ?? (quick ? 3 : 8));
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const memberCount = Number(process.env.BENCH_MEMBERS ?? (quick ? 1000 : 1000));
const roleSets = process.env.BENCH_ROLES
  ? [process.env.BENCH_ROLES]
  : ['api', 'api,projector,delivery'];
const tuning = tuningEnv();
const groupCommitModes = (
  { on: ['on'], off: ['off'], both: ['off', 'on'] } as Record<string, ('on' | 'off')[]>
)[process.env.BENCH_GROUP_COMMIT ?? 'both'] ?? ['off', 'on'];

const profileDir = process.env.BENCH_CPU_PROFILE ?? null;

/** CPU µs per award of the API process, of every PostgreSQL process, and of the load generator. */
type CpuPerAward = { api: number; postgres: number; loadgen: number };

/** The V8 CPU profiler of this process, from now until `stop` writes the profile to a file. */
const startProfile = async () => {
  const session = new inspector.Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    stop: async (file: string) => {
      const { profile } = await session.post('Profiler.stop');
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
};

const tracer = process.env.BENCH_TRACE_SQL === '1' ? traceSql() : null;
const report = summary();
const dbs = databases();

/** The store alone: 8 writers x 1 event per append, 'any', 1000 streams, a fresh database. */
const storeAppends = async (groupCommit: boolean): Promise<RunResult & { perCommit: number }> => {
  const db = await dbs.create();
  const handle = await openDatabase({
    kind: 'postgres',
    url: db.url,
    poolSize: Number(tuning.DATABASE_POOL_SIZE ?? 10),
  });
  const store = new PostgresEventStore(handle, groupCommit ? {} : { groupCommit: false });
  try {
    const result = await runWriters({
      writers: 8,
      seconds: storeSeconds,
      warmupSeconds: 1,
      op: async () => {
        await store.append(`bench-${Math.floor(Math.random() * 1000)}`, [benchEvent(0)], 'any');
        return 1;
      },
    });
    const { batches, appends } = store.appendBatches();
    return { ...result, perCommit: batches ? appends / batches : 1 };
  } finally {
    await store.close();
    await handle.close();
    await db.drop();
  }
};

const api = async (
  roles: string,
  groupCommit: 'on' | 'off',
): Promise<LoadResult & { cpuPct: number; cpuUsPerAward: CpuPerAward }> => {
  const db = await dbs.create();
  const runtime = await startBenchRuntime(db.url, {
    ...(groupCommit === 'off' && { EVENTSTORE_GROUP_COMMIT: '1' }),
    ...tuning,
    ROLES: roles,
  });
  try {
    const { programId, memberIds } = await seedProgram(runtime, 'API benchmark', memberCount, [
      { name: 'Bronze', minPoints: 0 },
      { name: 'Silver', minPoints: 1_000_000 },
    ]);
    await runtime.readModels?.caughtUp();
    tracer?.reset();
    const profiler = profileDir ? await startProfile() : null;
    const cpu0 = process.cpuUsage();
    const pg0 = postgresCpuSeconds();
    const t0 = performance.now();
    const result = await runLoad({
      url: runtime.url!,
      key: adminApiKey,
      programId,
      memberIds,
      connections,
      seconds,
      warmupSeconds,
    });
    const cpu = process.cpuUsage(cpu0);
    const pg1 = postgresCpuSeconds();
    if (profiler && profileDir) {
      const file = join(
        profileDir,
        `api-${roles.replaceAll(',', '+')}-gc-${groupCommit}.cpuprofile`,
      );
      await profiler.stop(file);
      console.log(`CPU profile of the load: ${file}`);
    }
    if (tracer) {
      console.log(
        `SQL per award, ROLES=${roles} (includes warm-up requests; statements of every role in this process):`,
      );
      tracer.print(result.requests * ((seconds + warmupSeconds) / seconds), 'award');
    }
    // Per award sent in the whole load, warm-up included (the CPU figures cover all of it).
    const awards = result.perS * (seconds + warmupSeconds);
    return {
      ...result,
      cpuPct: ((cpu.user + cpu.system) / 1000 / (performance.now() - t0)) * 100,
      cpuUsPerAward: {
        api: (cpu.user + cpu.system) / awards,
        postgres: pg0 === null || pg1 === null ? Number.NaN : ((pg1 - pg0) * 1e6) / awards,
        loadgen: (result.cpuMs * 1000) / awards,
      },
    };
  } finally {
    await runtime.stop();
    await db.drop();
  }
};

const main = async (): Promise<void> => {
  const started = performance.now();
  await printMachine('API benchmark: award points over HTTP');
  console.log(
    `BENCH_SECONDS=${seconds} (+${warmupSeconds} s warm-up) connections=${connections} members=${memberCount} ` +
      `store append ${storeSeconds} s x2 BENCH_QUICK=${quick ? 1 : 0}; runtime tuning env ${JSON.stringify(tuning)}`,
  );
  const rows: string[][] = [];
  const storeRow = (label: string, r: RunResult & { perCommit: number }) => {
    rows.push([
      label,
      fmtInt(r.eventsPerS),
      fmtMs(r.latencyP50Ms),
      fmtMs(r.latencyP99Ms),
      r.perCommit.toFixed(1),
      '—',
      `${fmtInt(r.nodeCpuPct)}%`,
      cpuPressure(),
    ]);
    console.log(rows.at(-1)!.join(' | '));
  };
  try {
    const before = await storeAppends(false);
    storeRow('store.append, 8 writers x 1 event, one commit each (before)', before);
    storeRow('store.append, 8 writers x 1 event, group commit', await storeAppends(true));
    const apis: [string, string, LoadResult & { cpuPct: number; cpuUsPerAward: CpuPerAward }][] =
      [];
    for (const roles of roleSets) {
      for (const mode of groupCommitModes) {
        const r = await api(roles, mode);
        const label = `ROLES=${roles}, group commit ${mode}`;
        apis.push([roles, label, r]);
        const other = Object.entries(r.statuses)
          .filter(([s]) => s !== '201')
          .map(([s, n]) => `${s}:${n}`)
          .join(' ');
        rows.push([
          `API award, ${connections} conn, ${label}`,
          fmtInt(r.perS),
          fmtMs(r.p50),
          fmtMs(r.p99),
          '',
          `${other || 'none'}${r.errors ? ` errors:${r.errors}` : ''}`,
          `${fmtInt(r.cpuPct)}%`,
          cpuPressure(),
        ]);
        console.log(rows.at(-1)!.join(' | '));
      }
    }
    const after = await storeAppends(false);
    storeRow('store.append, 8 writers x 1 event, one commit each (after)', after);
    console.log();
    printTable(
      ['scenario', 'per s', 'p50 ms', 'p99 ms', 'appends/commit', 'non-201', 'node CPU', 'psi %'],
      rows,
    );
    console.log('\nCPU per award (µs; the machine has ' + String(cpus().length) + ' cores):');
    printTable(
      [
        'scenario',
        'API process',
        'PostgreSQL',
        'load generator',
        'sum',
        'awards/s the cores allow',
      ],
      apis.map(([, label, r]) => {
        const c = r.cpuUsPerAward;
        const sum = c.api + c.postgres + c.loadgen;
        return [
          label,
          fmtInt(c.api),
          fmtInt(c.postgres),
          fmtInt(c.loadgen),
          fmtInt(sum),
          fmtInt((cpus().length * 1e6) / sum),
        ];
      }),
    );
    const storeRate = (before.eventsPerS + after.eventsPerS) / 2;
    console.log(
      `store append rate, one commit each (mean of before/after): ${fmtInt(storeRate)} events/s`,
    );
    report.note(
      'store.append, 8 writers x 1 event, one commit each, before / after',
      `${fmtInt(before.eventsPerS)} / ${fmtInt(after.eventsPerS)} events/s`,
    );
    for (const [roles, label, r] of apis) {
      const ratio = r.perS / storeRate;
      const clean = r.errors === 0 && Object.keys(r.statuses).every((s) => s === '201');
      report.note(
        `API awards/s, ${connections} conn, ${label}`,
        `${fmtInt(r.perS)}${clean ? '' : ' (non-201 answers!)'}`,
      );
      report.note(
        `API p50 / p99, ${label}`,
        `${fmtMs(r.p50)} / ${fmtMs(r.p99)} ms`,
        'p99 < 50 ms',
        r.p99 < 50,
      );
      const target = roles === 'api' ? 1 : 0.8;
      report.note(
        `API / store append (one commit each), ${label}`,
        fmtRatio(ratio),
        `>= ${target.toFixed(1)}`,
        ratio >= target,
      );
    }
  } finally {
    await dbs.dropAll();
  }
  report.print();
  console.log(`\nCPU pressure at the end: ${cpuPressure()}%`);
  console.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
};

await main();
