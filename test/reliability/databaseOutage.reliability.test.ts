import { after, describe, it, type TestContext } from 'node:test';
import { startLoad } from './support/client.ts';
import { skipWithoutCluster } from './support/cluster.ts';
import { checkOutages, type Outage } from './support/outages.ts';
import { startProbe } from './support/probe.ts';
import { summarize } from './support/reconcile.ts';
import { assertNoProblems, progress } from './support/report.ts';
import { setUpScenario, type Scenario } from './support/scenario.ts';
import { pause } from './support/wait.ts';

const members = 20;
const ratePerS = 40;
const maxInFlight = 256;
const restarts = 2;
/** How long PostgreSQL stays down each time (the issue saw ~2.7 s). */
const downMs = 2500;
const terminations = 5;
/** Load between faults, and before the first one. */
const betweenMs = 1500;
const drainTimeoutMs = 15_000;
/** A hung scenario fails instead of holding the suite (today's crashes make it slow, not hung). */
const testTimeoutMs = 300_000;

/**
 * Runs `faults` under award load with a /readyz probe, then drains the client, reconciles, and
 * checks what the API answered around each fault.
 */
const underLoad = async (
  t: TestContext,
  scenario: Scenario,
  faults: () => Promise<{ outages: Outage[]; expectAnswersDuring: boolean }>,
) => {
  const service = scenario.services[0]!;
  const probe = startProbe(`${service.baseUrl}/readyz`);
  const load = startLoad({
    client: scenario.client,
    programId: scenario.programId,
    memberIds: scenario.memberIds,
    ratePerS,
    maxInFlight,
  });
  let result: { outages: Outage[]; expectAnswersDuring: boolean };
  try {
    await pause(betweenMs);
    result = await faults();
    await pause(betweenMs);
  } finally {
    load.stop();
    await probe.stop();
  }
  progress('faults done; draining');
  const unresolved = await scenario.drain(drainTimeoutMs);
  progress(`drained (${unresolved} unresolved); reconciling`);
  const outages = checkOutages({
    outages: result.outages,
    observations: scenario.client.observations,
    readiness: probe.samples,
    expectAnswersDuring: result.expectAnswersDuring,
  });
  const report = await scenario.reconcile();
  for (const line of outages.seen) t.diagnostic(`answers during ${line}`);
  t.diagnostic(
    `first award after each fault: ${outages.resumeMs.map((ms) => `${ms ?? '-'} ms`).join(', ')}`,
  );
  t.diagnostic(`${unresolved} keys unresolved at drain; ${summarize(report)}`);
  assertNoProblems([...outages.problems, ...report.problems], scenario.services);
};

describe('PostgreSQL faults under award load', { skip: skipWithoutCluster() }, () => {
  const scenarios: Scenario[] = [];
  after(async () => {
    for (const s of scenarios) await s.close();
  });

  it(
    `answers 503 while PostgreSQL is stopped and started ${restarts} times, crashes nothing, and loses nothing`,
    { timeout: testTimeoutMs },
    async (t) => {
      const scenario = await setUpScenario({ members, services: [{ name: 'svc' }] });
      scenarios.push(scenario);
      await underLoad(t, scenario, async () => {
        const outages: Outage[] = [];
        for (let i = 0; i < restarts; i++) {
          if (i > 0) await pause(betweenMs);
          const from = Date.now();
          await scenario.cluster.stop('fast');
          await pause(downMs);
          await scenario.cluster.start();
          outages.push({ label: `restart ${i + 1}`, from, to: Date.now() });
          progress(`PostgreSQL restart ${i + 1}/${restarts} done`);
        }
        return { outages, expectAnswersDuring: true };
      });
    },
  );

  it(
    `answers 503 or carries on when the service's backends are terminated ${terminations} times, crashes nothing, and loses nothing`,
    { timeout: testTimeoutMs },
    async (t) => {
      const scenario = await setUpScenario({ members, services: [{ name: 'svc' }] });
      scenarios.push(scenario);
      await underLoad(t, scenario, async () => {
        const outages: Outage[] = [];
        for (let i = 0; i < terminations; i++) {
          if (i > 0) await pause(betweenMs);
          // Each termination meets a running service: one that crashed is let restart first.
          await scenario.services[0]!.ready();
          const from = Date.now();
          const ended = await scenario.cluster.terminateBackends({ database: scenario.database });
          outages.push({ label: `termination ${i + 1} (${ended} backends)`, from, to: Date.now() });
          progress(`termination ${i + 1}/${terminations}: ${ended} backends`);
        }
        return { outages, expectAnswersDuring: false };
      });
    },
  );
});
