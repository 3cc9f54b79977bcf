/**
 * The HTTP fuzz at length (issue 13): BENCH_CASES generated and hostile requests (100,000) over
 * every route of the OpenAPI document, with the generators of test/support/fuzz.ts, BENCH_BATCH (4)
 * at a time on keep-alive connections to the runtime in this process on a fresh PostgreSQL database.
 * Prints the answers by status, by error code and by route, every 5xx with what was sent, the
 * refused requests that recorded an event, and cases/s; exits 1 if there is a 5xx or such an event.
 *
 *   npx tsx bench/fuzz/run.ts                  (100,000 cases)
 *   BENCH_QUICK=1 npx tsx bench/fuzz/run.ts    (5,000 cases)
 *   BENCH_CASES=20000 BENCH_SEED=123           (a number of cases; a seed to replay a run)
 *   BENCH_BATCH=1                              (one request at a time)
 */
import fc from 'fast-check';
import { sql } from 'kysely';
import {
  anyCase,
  formatStats,
  Fuzzer,
  fuzzAppEnv,
  roundCases,
  seedFixtures,
  type WireRequest,
} from '../../test/support/fuzz.ts';
import { cpuPressure, fmtInt } from '../eventstore/support.ts';
import {
  adminApiKey,
  databases,
  printMachine,
  processCpu,
  startBenchRuntime,
  summary,
  tuningEnv,
} from '../webhooks/harness.ts';
import type { Runtime } from '../../adapters/runtime.ts';

const quick = process.env.BENCH_QUICK === '1';
const cases = Number(process.env.BENCH_CASES ?? (quick ? 5_000 : 100_000));
const seed = Number(process.env.BENCH_SEED ?? Date.now() % 2 ** 31);
/** Requests in flight at once (one batch per run of the property), as the e2e test sends them. */
const batch = Number(process.env.BENCH_BATCH ?? 4);
const report = summary();
const dbs = databases();

const shown = (request: WireRequest): string => {
  const body =
    typeof request.body === 'string'
      ? request.body.slice(0, 300)
      : request.body
        ? `0x${request.body.toString('hex').slice(0, 100)}`
        : '(none)';
  return `${request.method} ${request.path.slice(0, 300)} content-type=${request.headers['content-type'] ?? '-'} body=${body}`;
};

/**
 * CPU seconds the PostgreSQL backends serving the run's database have used so far. A lower bound:
 * a backend whose connection the pool closed while idle is no longer counted.
 */
const backendCpuSeconds = async (runtime: Runtime): Promise<number> => {
  const { rows } = await sql<{ pid: number }>`
    select pid from pg_stat_activity where datname = current_database()`.execute(
    runtime.database.db,
  );
  return rows.reduce((sum, { pid }) => sum + (processCpu(pid, 'postgres') ?? 0), 0);
};

const main = async (): Promise<void> => {
  await printMachine('HTTP fuzz: generated and hostile requests on every route');
  console.log(
    `BENCH_CASES=${cases} BENCH_BATCH=${batch} BENCH_SEED=${seed} BENCH_QUICK=${quick ? 1 : 0}`,
  );
  const db = await dbs.create();
  const runtime = await startBenchRuntime(db.url, { ...fuzzAppEnv, ...tuningEnv() });
  const fuzzer = new Fuzzer({
    runtime,
    url: runtime.url!,
    key: adminApiKey,
    connections: batch,
  });
  const failures: string[] = [];
  let serverErrors = 0;
  let broken = 0;
  try {
    await fuzzer.prepare();
    await seedFixtures(fuzzer, adminApiKey);
    let sent = 0;
    const started = performance.now();
    const nodeCpu = process.cpuUsage();
    const pgCpu = await backendCpuSeconds(runtime);
    let lastReport = started;
    const property = fc.asyncProperty(
      fc.array(anyCase(), { minLength: batch, maxLength: batch }),
      async (batchCases) => {
        sent += batchCases.length;
        for (const { request, response, problems } of await fuzzer.run(batchCases)) {
          if (response.status >= 500) serverErrors++;
          if (problems.length > 0) broken++;
          if (problems.length > 0 && failures.length < 20)
            failures.push(
              `${problems.join('; ')}\n  ${shown(request)}\n  -> ${response.status} ${response.text.slice(0, 300)}`,
            );
        }
        const now = performance.now();
        if (now - lastReport > 10_000) {
          lastReport = now;
          console.log(
            `${fmtInt(sent)} cases, ${fmtInt(sent / ((now - started) / 1000))}/s, 5xx ${serverErrors}, CPU pressure ${cpuPressure()}%`,
          );
        }
      },
    );
    // One seed for the run: round r replays with seed + r.
    for (let round = 0; round * roundCases < cases; round++) {
      if (round > 0) await seedFixtures(fuzzer, adminApiKey);
      const numRuns = Math.ceil(Math.min(roundCases, cases - round * roundCases) / batch);
      await fc.assert(property, { numRuns, seed: seed + round });
    }
    const seconds = (performance.now() - started) / 1000;
    const { user, system } = process.cpuUsage(nodeCpu);
    const nodeCpuS = (user + system) / 1e6;
    const pgCpuS = (await backendCpuSeconds(runtime)) - pgCpu;
    const unattributed = await fuzzer.unattributedEvents();
    console.log();
    for (const line of formatStats(fuzzer.stats)) console.log(line);
    if (failures.length > 0)
      console.log(`\nfirst ${failures.length} failures:\n${failures.join('\n')}`);
    if (unattributed.length > 0)
      console.log(
        `\nevents no accepted request recorded:\n${unattributed.slice(0, 20).join('\n')}`,
      );
    const refused = [...fuzzer.stats.byStatus.entries()]
      .filter(([s]) => s >= 400 && s < 500)
      .reduce((sum, [, n]) => sum + n, 0);
    report.note('cases (fixtures not counted)', fmtInt(sent));
    report.note('answers >= 500', fmtInt(serverErrors), '0', serverErrors === 0);
    report.note(
      'answers breaking the contract (5xx, error body, events)',
      fmtInt(broken),
      '0',
      broken === 0,
    );
    report.note('refused (4xx) requests', fmtInt(refused));
    report.note(
      'events not from an accepted request',
      fmtInt(unattributed.length),
      '0',
      unattributed.length === 0,
    );
    report.note(`cases/s (${batch} in flight, checks included)`, fmtInt(sent / seconds));
    report.note('wall time', `${seconds.toFixed(0)} s`);
    report.note(
      'CPU per case: this process (app + fuzzer) / PostgreSQL backends open at the end (at least)',
      `${((nodeCpuS / sent) * 1000).toFixed(2)} / ${((pgCpuS / sent) * 1000).toFixed(2)} ms`,
    );
    if (broken > 0 || unattributed.length > 0) process.exitCode = 1;
  } finally {
    await fuzzer.close();
    await runtime.stop();
    await dbs.dropAll();
  }
  report.print();
  console.log(`\nCPU pressure at the end: ${cpuPressure()}%`);
};

await main();
