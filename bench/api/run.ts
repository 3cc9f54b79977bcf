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
 * CPU profile of the API process (the load generator is a separate, unprofiled process):
 *   BENCH_QUICK=1 BENCH_ROLES=api node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/api/run.ts
 *   npx tsx bench/api/profile.ts /tmp/prof/*.cpuprofile
 * Tuning through config env only (DATABASE_POOL_SIZE is passed through).
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
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
  pool,
  printMachine,
  startBenchRuntime,
  summary,
  traceSql,
  tuningEnv,
} from '../webhooks/harness.ts';
import type { LoadRequest, LoadResult } from './loadgen.ts';

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

const tracer = process.env.BENCH_TRACE_SQL === '1' ? traceSql() : null;
const report = summary();
const dbs = databases();

const load = (request: LoadRequest): Promise<LoadResult> =>
  new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL('./loadgen.ts', import.meta.url)), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.once('message', (result) => resolve(result as LoadResult));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`load generator exited with ${code}`));
    });
    child.send(request);
  });

/** The store alone: 8 writers x 1 event per append, 'any', 1000 streams, a fresh database. */
const storeAppends = async (): Promise<RunResult> => {
  const db = await dbs.create();
  const handle = await openDatabase({
    kind: 'postgres',
    url: db.url,
    poolSize: Number(tuning.DATABASE_POOL_SIZE ?? 10),
  });
  const store = new PostgresEventStore(handle);
  try {
    return await runWriters({
      writers: 8,
      seconds: storeSeconds,
      warmupSeconds: 1,
      op: async () => {
        await store.append(`bench-${Math.floor(Math.random() * 1000)}`, [benchEvent(0)], 'any');
        return 1;
      },
    });
  } finally {
    await store.close();
    await handle.close();
    await db.drop();
  }
};

const api = async (roles: string): Promise<LoadResult & { cpuPct: number }> => {
  const db = await dbs.create();
  const runtime = await startBenchRuntime(db.url, { ...tuning, ROLES: roles });
  try {
    const created = await runtime.incentives.createProgram(
      {
        name: 'API benchmark',
        tiers: [
          { name: 'Bronze', minPoints: 0 },
          { name: 'Silver', minPoints: 1_000_000 },
        ],
        tierBasis: 'lifetime',
        pointsExpiryDays: null,
        timezone: 'UTC',
        notificationEmail: 'ops@example.com',
      },
      { programId: null, actor: 'key_benchmark01', correlationId: randomUUID(), causationId: null },
    );
    if (!created.ok) throw new Error(created.message);
    const first = created.value.events[0]!;
    if (first.type !== 'ProgramCreated') throw new Error('unexpected event');
    const programId = first.data.programId;
    const memberIds: string[] = [];
    await pool(memberCount, 16, async (i) => {
      const r = await runtime.incentives.registerMember(
        programId,
        { email: `m${i}@example.com`, name: `Member ${i}`, externalId: null, attributes: {} },
        { programId, actor: 'key_benchmark01', correlationId: randomUUID(), causationId: null },
      );
      if (!r.ok) throw new Error(r.message);
      const e = r.value.events[0]!;
      if (e.type === 'MemberRegistered') memberIds.push(e.data.memberId);
    });
    await runtime.readModels?.caughtUp();
    tracer?.reset();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const result = await load({
      url: runtime.url!,
      key: adminApiKey,
      programId,
      memberIds,
      connections,
      seconds,
      warmupSeconds,
    });
    const cpu = process.cpuUsage(cpu0);
    if (tracer) {
      console.log(
        `SQL per award, ROLES=${roles} (includes warm-up requests; statements of every role in this process):`,
      );
      tracer.print(result.requests * ((seconds + warmupSeconds) / seconds), 'award');
    }
    return {
      ...result,
      cpuPct: ((cpu.user + cpu.system) / 1000 / (performance.now() - t0)) * 100,
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
  try {
    const before = await storeAppends();
    rows.push([
      'store.append, 8 writers x 1 event (before)',
      fmtInt(before.eventsPerS),
      fmtMs(before.latencyP50Ms),
      fmtMs(before.latencyP99Ms),
      '—',
      `${fmtInt(before.nodeCpuPct)}%`,
      cpuPressure(),
    ]);
    console.log(rows.at(-1)!.join(' | '));
    const apis: [string, LoadResult & { cpuPct: number }][] = [];
    for (const roles of roleSets) {
      const r = await api(roles);
      apis.push([roles, r]);
      const other = Object.entries(r.statuses)
        .filter(([s]) => s !== '201')
        .map(([s, n]) => `${s}:${n}`)
        .join(' ');
      rows.push([
        `API award, ${connections} conn, ROLES=${roles}`,
        fmtInt(r.perS),
        fmtMs(r.p50),
        fmtMs(r.p99),
        `${other || 'none'}${r.errors ? ` errors:${r.errors}` : ''}`,
        `${fmtInt(r.cpuPct)}%`,
        cpuPressure(),
      ]);
      console.log(rows.at(-1)!.join(' | '));
    }
    const after = await storeAppends();
    rows.push([
      'store.append, 8 writers x 1 event (after)',
      fmtInt(after.eventsPerS),
      fmtMs(after.latencyP50Ms),
      fmtMs(after.latencyP99Ms),
      '—',
      `${fmtInt(after.nodeCpuPct)}%`,
      cpuPressure(),
    ]);
    console.log();
    printTable(['scenario', 'per s', 'p50 ms', 'p99 ms', 'non-201', 'node CPU', 'psi %'], rows);
    const storeRate = (before.eventsPerS + after.eventsPerS) / 2;
    console.log(`store append rate (mean of before/after): ${fmtInt(storeRate)} events/s`);
    report.note(
      'store.append, 8 writers x 1 event, before / after',
      `${fmtInt(before.eventsPerS)} / ${fmtInt(after.eventsPerS)} events/s`,
    );
    for (const [roles, r] of apis) {
      const ratio = r.perS / storeRate;
      const clean = r.errors === 0 && Object.keys(r.statuses).every((s) => s === '201');
      report.note(
        `API awards/s, ${connections} conn, ROLES=${roles}`,
        `${fmtInt(r.perS)}${clean ? '' : ' (non-201 answers!)'}`,
        '>= 2,000',
        r.perS >= 2000 && clean,
      );
      report.note(
        `API p50 / p99, ROLES=${roles}`,
        `${fmtMs(r.p50)} / ${fmtMs(r.p99)} ms`,
        'p99 < 50 ms',
        r.p99 < 50,
      );
      report.note(`API / store append, ROLES=${roles}`, fmtRatio(ratio), '>= 0.5', ratio >= 0.5);
    }
  } finally {
    await dbs.dropAll();
  }
  report.print();
  console.log(`\nCPU pressure at the end: ${cpuPressure()}%`);
  console.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
};

await main();
