import { after, before, describe, it } from 'node:test';
import { startLoad } from './support/client.ts';
import { skipWithoutCluster } from './support/cluster.ts';
import { summarize } from './support/reconcile.ts';
import { assertNoProblems, progress } from './support/report.ts';
import { setUpScenario, type Scenario } from './support/scenario.ts';
import { pause, percentile } from './support/wait.ts';

const cycles = 10;
const members = 20;
const ratePerS = 40;
const maxInFlight = 256;
/** The load runs this long (uniformly random in between) before each kill. */
const runBeforeKillMs = { min: 100, max: 1500 };
/** After the last restart the load goes on this long, then stops; keys get this long to settle. */
const tailMs = 1500;
const drainTimeoutMs = 15_000;
/** A hung scenario fails instead of holding the suite (today's crashes make it slow, not hung). */
const testTimeoutMs = 300_000;

describe('the service killed -9 under award load', { skip: skipWithoutCluster() }, () => {
  let scenario: Scenario;

  before(async () => {
    scenario = await setUpScenario({ members, services: [{ name: 'svc' }] });
  });
  after(async () => {
    await scenario?.close();
  });

  it(
    `applies every acknowledged award once and delivers every webhook across ${cycles} kill -9 cycles`,
    { timeout: testTimeoutMs },
    async (t) => {
      const service = scenario.services[0]!;
      const load = startLoad({
        client: scenario.client,
        programId: scenario.programId,
        memberIds: scenario.memberIds,
        ratePerS,
        maxInFlight,
      });
      const readyMs: number[] = [];
      const delays: number[] = [];
      try {
        for (let cycle = 0; cycle < cycles; cycle++) {
          const delay = Math.round(
            runBeforeKillMs.min + Math.random() * (runBeforeKillMs.max - runBeforeKillMs.min),
          );
          delays.push(delay);
          await pause(delay);
          readyMs.push(await service.killAndRestart());
          progress(
            `kill ${cycle + 1}/${cycles} after ${delay} ms of load: ready again after ${readyMs.at(-1)} ms; ${scenario.client.records.size} awards sent`,
          );
        }
        await pause(tailMs);
      } finally {
        load.stop();
      }
      progress('faults done; draining');
      const unresolved = await scenario.drain(drainTimeoutMs);
      progress(`drained (${unresolved} unresolved); reconciling`);
      const report = await scenario.reconcile();
      t.diagnostic(
        `kills after ${delays.join(', ')} ms of load; ${unresolved} keys unresolved at drain`,
      );
      t.diagnostic(
        `kill to ready: p50 ${percentile(readyMs, 50)} ms, max ${Math.max(...readyMs)} ms`,
      );
      t.diagnostic(summarize(report));
      assertNoProblems(report.problems, scenario.services);
    },
  );
});
