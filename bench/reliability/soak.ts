/**
 * The reliability soak (issue 12): the service under award load from a careful client, killed -9
 * BENCH_KILLS times (100) at random moments and restarted, with PostgreSQL (a cluster of its own,
 * never the machine's server) stopped and started BENCH_DB_RESTARTS times (5) in between. Prints
 * the reconciliation: awards sent and applied, duplicates delivered, time to ready after each
 * kill, award latency outside the outages, and every broken promise; exits 1 if there is one.
 *
 *   npx tsx bench/reliability/soak.ts                 # the full soak (~10-15 min on 2 cores)
 *   BENCH_QUICK=1 npx tsx bench/reliability/soak.ts   # a smoke run: 3 kills, 1 restart
 *
 * Other knobs: BENCH_RATE (awards/s, 40), BENCH_MEMBERS (20), BENCH_RUN_MS (load before each
 * kill, random up to this, 1500), BENCH_DOWN_MS (how long PostgreSQL stays down, 2500),
 * BENCH_DRAIN_MS (time for the last keys to settle, 30000).
 */
import { startLoad, type AwardRecord } from '../../test/reliability/support/client.ts';
import { clusterUnavailable } from '../../test/reliability/support/cluster.ts';
import { checkOutages, type Outage } from '../../test/reliability/support/outages.ts';
import { summarize } from '../../test/reliability/support/reconcile.ts';
import { setUpScenario } from '../../test/reliability/support/scenario.ts';
import { pause, percentile } from '../../test/reliability/support/wait.ts';
import { commitRates } from '../webhooks/harness.ts';

const quick = process.env.BENCH_QUICK === '1';
const numberFrom = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number >= 0`);
  return value;
};
const kills = numberFrom('BENCH_KILLS', quick ? 3 : 100);
const restarts = numberFrom('BENCH_DB_RESTARTS', quick ? 1 : 5);
const ratePerS = numberFrom('BENCH_RATE', 40);
const members = numberFrom('BENCH_MEMBERS', 20);
const runMs = numberFrom('BENCH_RUN_MS', 1500);
const downMs = numberFrom('BENCH_DOWN_MS', 2500);
const drainMs = numberFrom('BENCH_DRAIN_MS', 30_000);

const unavailable = clusterUnavailable();
if (unavailable) {
  console.error(`cannot soak: ${unavailable}`);
  process.exit(2);
}

const ms = (value: number) => (Number.isFinite(value) ? `${Math.round(value)} ms` : '-');
const began = Date.now();
console.log(
  `soak: ${kills} kill -9 cycles, ${restarts} PostgreSQL restarts, ${ratePerS} awards/s over ${members} members`,
);
console.log(`disk commit rate: ${await commitRates()}`);
const scenario = await setUpScenario({ members, services: [{ name: 'svc' }] });
const service = scenario.services[0]!;
/** Kills (to ready), database stops (to answering) and the service's recovery after those. */
const outages: (Outage & { kind: 'kill' | 'database' | 'recovery' })[] = [];
const readyMs: number[] = [];
let exitCode = 0;
try {
  const load = startLoad({
    client: scenario.client,
    programId: scenario.programId,
    memberIds: scenario.memberIds,
    ratePerS,
    maxInFlight: 512,
  });
  // The database restarts fall between kills, spread evenly over the run.
  const restartAfter = new Set(
    Array.from({ length: restarts }, (_, i) => Math.floor(((i + 1) * kills) / (restarts + 1))),
  );
  try {
    for (let cycle = 0; cycle < kills; cycle++) {
      await pause(100 + Math.random() * Math.max(0, runMs - 100));
      const from = Date.now();
      const ready = await service.killAndRestart();
      readyMs.push(ready);
      outages.push({ kind: 'kill', label: `kill ${cycle + 1}`, from, to: from + ready });
      if ((cycle + 1) % 10 === 0)
        console.log(
          `  ${cycle + 1}/${kills} kills, ${scenario.client.records.size} awards sent, last ready after ${ms(ready)}`,
        );
      if (restartAfter.has(cycle + 1)) {
        await pause(runMs);
        const stoppedAt = Date.now();
        await scenario.cluster.stop('fast');
        await pause(downMs);
        await scenario.cluster.start();
        const answering = Date.now();
        // A crash meanwhile is restarted by the harness; the outage lasts until it is ready.
        await service.up();
        outages.push({
          kind: 'database',
          label: `database restart ${outages.filter((o) => o.kind === 'database').length + 1}`,
          from: stoppedAt,
          to: answering,
        });
        outages.push({ kind: 'recovery', label: 'recovery', from: answering, to: Date.now() });
        console.log(`  PostgreSQL restarted (down ${ms(answering - stoppedAt)})`);
      }
    }
    await pause(runMs);
  } finally {
    load.stop();
  }
  const unresolved = await scenario.drain(drainMs);
  const database = checkOutages({
    outages: outages.filter((o) => o.kind === 'database'),
    observations: scenario.client.observations,
    expectAnswersDuring: true,
  });
  const report = await scenario.reconcile(60_000);

  const outside = (r: AwardRecord) =>
    r.settledAt !== null &&
    !outages.some((o) => r.firstSentAt <= o.to + 1000 && r.settledAt! >= o.from);
  const calm = [...scenario.client.records.values()].filter(outside);
  const latencies = calm.map((r) => r.settledAt! - r.firstSentAt);
  const statuses = new Map<string, number>();
  for (const o of scenario.client.observations) {
    const label = o.status === 0 ? `no answer` : `${o.status}${o.code ? ` ${o.code}` : ''}`;
    statuses.set(label, (statuses.get(label) ?? 0) + 1);
  }

  console.log('\n== reconciliation');
  console.log(`awards sent            ${report.awardsSent}`);
  console.log(`acknowledged (201)     ${report.acknowledged}`);
  console.log(`applied (events)       ${report.applied}`);
  console.log(`applied twice          ${report.appliedTwice}`);
  console.log(`applied, not acked     ${report.appliedUnacknowledged}`);
  console.log(`unresolved at drain    ${unresolved}`);
  console.log(`pending keys           ${report.pendingKeys}`);
  console.log(`webhooks received      ${report.webhooksReceived}`);
  console.log(`duplicates delivered   ${report.duplicatesDelivered}`);
  console.log(`webhooks missing       ${report.webhooksMissing}`);
  console.log(`audit verify           ${report.auditClean ? 'clean' : 'NOT clean'}`);
  console.log(
    `crashes (not ours)     ${report.crashes} (+${report.startFailures} failed restarts)`,
  );
  console.log(
    `time to ready per kill p50 ${ms(percentile(readyMs, 50))}, p99 ${ms(percentile(readyMs, 99))}, max ${ms(Math.max(...readyMs))} (${readyMs.length} kills)`,
  );
  console.log(
    `award latency outside outages p50 ${ms(percentile(latencies, 50))}, p99 ${ms(percentile(latencies, 99))} (${latencies.length} awards)`,
  );
  for (const line of database.seen) console.log(`answers during ${line}`);
  console.log(`every answer seen      ${[...statuses].map(([k, n]) => `${k}: ${n}`).join(', ')}`);
  console.log(`\n${summarize(report)}`);
  const problems = [...database.problems, ...report.problems];
  if (problems.length > 0) {
    exitCode = 1;
    console.log(`\n== ${problems.length} problem(s)`);
    for (const p of problems) console.log(`- ${p.length > 3000 ? `${p.slice(0, 3000)}…` : p}`);
  } else console.log('\nno problems');
  console.log(`\nsoak took ${((Date.now() - began) / 1000).toFixed(0)} s`);
} finally {
  await scenario.close();
}
process.exit(exitCode);
