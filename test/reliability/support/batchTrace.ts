import { existsSync, readFileSync } from 'node:fs';
import type { Cluster } from './cluster.ts';

/**
 * The contract the product implements for this suite: with `INCENTABLE_TRACE_BATCHES=<file>` in
 * its environment, a process appends one JSON line per batch it handles, of any subscription:
 *
 *   {"pid":123,"subscription":"read-models","startedAt":1733100000123.4,"endedAt":1733100000131.9,
 *    "first":"812.40","last":"815.44","count":7,"outcome":"committed"}
 *
 * - `startedAt`: when the process began the batch, after it last confirmed it is the active
 *   consumer and before it read the page; `endedAt`: when its commit (or rollback) returned.
 *   Milliseconds since the epoch, from this machine's clock (Date.now(), or
 *   performance.timeOrigin + performance.now() for sub-millisecond resolution).
 * - `first`/`last`: the positions of the batch's first and last event, as formatPosition writes
 *   them (`<commit>.<prepare>`); `count`: its number of events.
 * - `outcome`: `committed` when the batch's transaction (handler and checkpoint) committed,
 *   `failed` when it did not (the same events come back later).
 * Lines are appended whole (one write per line), so a kill -9 leaves at most a torn last line.
 *
 * The reader also takes the shape a first product draft writes: `events` for `count`,
 * `<commit>/<prepare>` positions, and no `outcome` (it traces committed batches only).
 */
export type BatchTrace = {
  pid: number;
  subscription: string;
  startedAt: number;
  endedAt: number;
  first: string;
  last: string;
  count: number;
  outcome: 'committed' | 'failed';
};

/** The env var that turns the trace on. */
export const traceBatchesVariable = 'INCENTABLE_TRACE_BATCHES';

/** Reads a trace file; a torn or malformed line is skipped and counted. */
export const readTrace = (path: string): { batches: BatchTrace[]; malformed: number } => {
  if (!existsSync(path)) return { batches: [], malformed: 0 };
  const batches: BatchTrace[] = [];
  let malformed = 0;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      const b = JSON.parse(line) as Partial<BatchTrace> & { events?: number };
      const count = b.count ?? b.events;
      const outcome = b.outcome ?? 'committed';
      if (
        typeof b.pid === 'number' &&
        typeof b.subscription === 'string' &&
        typeof b.startedAt === 'number' &&
        typeof b.endedAt === 'number' &&
        typeof b.first === 'string' &&
        typeof b.last === 'string' &&
        typeof count === 'number' &&
        (outcome === 'committed' || outcome === 'failed')
      )
        batches.push({
          pid: b.pid,
          subscription: b.subscription,
          startedAt: b.startedAt,
          endedAt: b.endedAt,
          first: b.first.replace('/', '.'),
          last: b.last.replace('/', '.'),
          count,
          outcome,
        });
      else malformed++;
    } catch {
      malformed++;
    }
  }
  return { batches, malformed };
};

/**
 * How far apart two processes' batch times may be and still count as one after the other: the
 * old consumer records `endedAt` when its commit's answer arrives, a moment after the server
 * committed and let the new one in. A real second consumer overlaps by whole batches.
 */
export const overlapToleranceMs = 5;

/**
 * Checks one subscription's batches, from every process, against the log: no two committed
 * batches overlap in time (single active consumer), and the committed batches, in commit order,
 * cover the log's events contiguously from the first to the last (no event skipped, and each
 * batch's `count` is the number of events in its range). Replays (a range handled again after a
 * failure) are counted, not failures: delivery is at least once.
 *
 * An overlap with a failed batch is counted apart (`failedOverlaps`, with the longest), not
 * failed: when the server ends a consumer's session its transaction is gone at once, but the
 * process only records `endedAt` when the error reaches it, and by then the standby may have
 * begun. A consumer that goes on after losing its session shows up as committed overlaps.
 */
export const checkBatches = (
  subscription: string,
  batches: readonly (BatchTrace & { process: string })[],
  log: readonly string[],
): {
  problems: string[];
  overlaps: number;
  failedOverlaps: number;
  longestFailedOverlapMs: number;
  replays: number;
  committed: number;
} => {
  const problems: string[] = [];
  const mine = batches.filter((b) => b.subscription === subscription);
  const sorted = [...mine].sort((a, b) => a.startedAt - b.startedAt);
  let overlaps = 0;
  let failedOverlaps = 0;
  let longestFailedOverlapMs = 0;
  const examples: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i]!;
    for (let j = i + 1; j < sorted.length; j++) {
      const b = sorted[j]!;
      if (b.startedAt >= a.endedAt - overlapToleranceMs) break;
      if (a.outcome === 'failed' || b.outcome === 'failed') {
        failedOverlaps++;
        longestFailedOverlapMs = Math.max(
          longestFailedOverlapMs,
          Math.min(a.endedAt, b.endedAt) - b.startedAt,
        );
        continue;
      }
      // Two batches at once in one process is also a second consumer (two loops).
      overlaps++;
      if (examples.length < 3)
        examples.push(
          `${a.process}/pid ${a.pid} [${a.first}..${a.last}] ${a.startedAt.toFixed(1)}-${a.endedAt.toFixed(1)} and ${b.process}/pid ${b.pid} [${b.first}..${b.last}] ${b.startedAt.toFixed(1)}-${b.endedAt.toFixed(1)}`,
        );
    }
  }
  if (overlaps > 0)
    problems.push(
      `${subscription}: ${overlaps} pairs of committed batches ran at the same time, e.g. ${examples.join('; ')}`,
    );

  const index = new Map(log.map((position, i) => [position, i]));
  const committed = mine
    .filter((b) => b.outcome === 'committed')
    .sort((a, b) => a.endedAt - b.endedAt);
  let next = 0;
  let replays = 0;
  let skipped = 0;
  const skips: string[] = [];
  for (const b of committed) {
    const from = index.get(b.first);
    const to = index.get(b.last);
    if (from === undefined || to === undefined || to < from) {
      problems.push(
        `${subscription}: batch [${b.first}..${b.last}] of ${b.process} names positions not in the log`,
      );
      continue;
    }
    if (to - from + 1 !== b.count)
      problems.push(
        `${subscription}: batch [${b.first}..${b.last}] of ${b.process} handled ${b.count} events, the log has ${to - from + 1} in that range`,
      );
    if (from > next) {
      skipped += from - next;
      if (skips.length < 3) skips.push(`${from - next} before ${b.first} (${b.process})`);
    } else if (from < next) replays++;
    next = Math.max(next, to + 1);
  }
  if (skipped > 0)
    problems.push(
      `${subscription}: ${skipped} events skipped by every consumer: ${skips.join('; ')}`,
    );
  if (next < log.length)
    problems.push(
      `${subscription}: the committed batches end ${log.length - next} events before the end of the log`,
    );
  return {
    problems,
    overlaps,
    failedOverlaps,
    longestFailedOverlapMs,
    replays,
    committed: committed.length,
  };
};

/** Every event's position in the order subscriptions read them, as `commit.prepare`. */
export const logPositions = async (cluster: Cluster, database: string): Promise<string[]> =>
  (
    await cluster.query<{ at: string }>(
      database,
      `select transaction_id::text || '.' || global_position::text as at from incentable_events
        order by transaction_id, global_position`,
    )
  ).map((r) => r.at);
