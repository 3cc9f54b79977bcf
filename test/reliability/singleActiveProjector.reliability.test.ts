import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  checkBatches,
  logPositions,
  readTrace,
  traceBatchesVariable,
  type BatchTrace,
} from './support/batchTrace.ts';
import { startLoad } from './support/client.ts';
import { skipWithoutCluster } from './support/cluster.ts';
import { backlog, subscriptionNames, summarize, timeToAdvance } from './support/reconcile.ts';
import { assertNoProblems, progress } from './support/report.ts';
import { setUpScenario, type Scenario } from './support/scenario.ts';
import type { ServiceProcess } from './support/service.ts';
import { pause } from './support/wait.ts';

const members = 20;
const ratePerS = 40;
const maxInFlight = 256;
const terminations = 5;
/** Load before the first termination and between terminations. */
const betweenMs = 1500;
/** The issue's bound: a standby takes over within 10 s of the active one losing its session. */
const takeoverWithinMs = 10_000;
const drainTimeoutMs = 15_000;
/** A hung scenario fails instead of holding the suite (today's crashes make it slow, not hung). */
const testTimeoutMs = 300_000;

describe('the projector is single-active per subscription', { skip: skipWithoutCluster() }, () => {
  let scenario: Scenario;
  const traceDir = mkdtempSync(join(tmpdir(), 'incentable-trace-'));
  const tracePath = (name: string) => join(traceDir, `${name}.jsonl`);
  const projectorNames = ['p1', 'p2'];

  before(async () => {
    scenario = await setUpScenario({
      members,
      services: [
        { name: 'api', roles: 'api,delivery' },
        ...projectorNames.map((name) => ({
          name,
          roles: 'projector',
          env: { [traceBatchesVariable]: tracePath(name) },
        })),
      ],
    });
  });
  after(async () => {
    await scenario?.close();
    rmSync(traceDir, { recursive: true, force: true });
  });

  const traces = () => projectorNames.map((name) => ({ name, ...readTrace(tracePath(name)) }));
  const allBatches = () =>
    traces().flatMap((t) =>
      t.batches.map((b): BatchTrace & { process: string } => ({ ...b, process: t.name })),
    );

  /** The process that handled the newest batch of `subscription`, or null without a trace. */
  const activeFor = (subscription: string): string | null => {
    const newest = allBatches()
      .filter((b) => b.subscription === subscription)
      .sort((a, b) => b.endedAt - a.endedAt)[0];
    return newest?.process ?? null;
  };

  it(
    `never lets two processes handle batches of one subscription at once, nor skips an event, while the active one's backends are terminated ${terminations} times`,
    { timeout: testTimeoutMs },
    async (t) => {
      const projectors = scenario.services.filter((s) => projectorNames.includes(s.name));
      const byName = new Map<string, ServiceProcess>(projectors.map((s) => [s.name, s]));
      const load = startLoad({
        client: scenario.client,
        programId: scenario.programId,
        memberIds: scenario.memberIds,
        ratePerS,
        maxInFlight,
      });
      const problems: string[] = [];
      const rounds: string[] = [];
      try {
        await pause(betweenMs);
        for (let round = 0; round < terminations; round++) {
          if (round > 0) await pause(betweenMs);
          for (const p of projectors) await p.up();
          const subscription = subscriptionNames[round % subscriptionNames.length]!;
          // Without a trace (not implemented) the two take turns, so each loses its sessions.
          const active = activeFor(subscription);
          const target = active ?? projectorNames[round % projectorNames.length]!;
          const behind = await backlog(scenario.cluster, scenario.database);
          const ended = await scenario.cluster.terminateBackends({ applicationName: target });
          const takeover = await timeToAdvance({
            cluster: scenario.cluster,
            database: scenario.database,
            timeoutMs: takeoverWithinMs,
            startedBatches: (since) =>
              new Set(
                allBatches()
                  .filter((b) => b.startedAt >= since)
                  .map((b) => b.subscription),
              ),
          });
          rounds.push(
            `round ${round + 1}: ${target} (${active ? `active on ${subscription}` : 'no trace: taking turns'}): ${ended} backends ended with ${[...behind].map(([name, n]) => `${name} ${n}`).join(', ')} events not yet handled, every subscription moved on ${takeover.ms === null ? 'NOT' : `after ${takeover.ms} ms`}`,
          );
          progress(rounds.at(-1)!);
          if (takeover.ms === null)
            problems.push(
              `round ${round + 1}: after ${target}'s backends were terminated, ${takeover.stuck.join(', ')} did not move within ${takeoverWithinMs} ms`,
            );
        }
        await pause(betweenMs);
      } finally {
        load.stop();
      }
      progress('faults done; draining');
      const unresolved = await scenario.drain(drainTimeoutMs);
      progress(`drained (${unresolved} unresolved); reconciling`);
      const report = await scenario.reconcile();

      const log = await logPositions(scenario.cluster, scenario.database);
      const written = traces();
      const batches = allBatches();
      for (const trace of written)
        // Each exit may tear the line being written; any other malformed line breaks the contract.
        if (trace.malformed > (byName.get(trace.name)?.exits.length ?? 0))
          problems.push(`${trace.name}'s trace has ${trace.malformed} malformed lines`);
      if (batches.length === 0) {
        problems.push(
          `no batch trace was written to ${projectorNames.map(tracePath).join(', ')}: the product does not implement ${traceBatchesVariable} (one JSON line per handled batch), so single-active cannot be checked`,
        );
      } else {
        for (const subscription of subscriptionNames) {
          const checked = checkBatches(subscription, batches, log);
          problems.push(...checked.problems);
          const pids = new Set(
            batches.filter((b) => b.subscription === subscription).map((b) => b.pid),
          );
          t.diagnostic(
            `${subscription}: ${checked.committed} committed batches from ${pids.size} pids, ${checked.overlaps} overlaps, ${checked.failedOverlaps} overlaps with a failed batch (longest ${checked.longestFailedOverlapMs.toFixed(1)} ms), ${checked.replays} replays`,
          );
        }
      }
      for (const line of rounds) t.diagnostic(line);
      t.diagnostic(
        `${log.length} events in the log; ${unresolved} keys unresolved at drain; ${summarize(report)}`,
      );
      for (const p of byName.values())
        if (p.startFailures.length > 0)
          t.diagnostic(`${p.name}: ${p.startFailures.length} restarts failed to start`);
      assertNoProblems([...problems, ...report.problems], scenario.services);
    },
  );
});
