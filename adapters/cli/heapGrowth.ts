import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export type HeapGrowthOptions = {
  /** Collect once the heap holds this many times what the last full collection left. */
  factor: number;
  /** ...and at least this many bytes: a small heap is left to V8. */
  floorBytes: number;
  /** How often the heap's size is read (a cheap call). */
  checkEveryMs: number;
};

export const replayHeapGrowth: HeapGrowthOptions = {
  factor: 2,
  floorBytes: 96 * 1024 * 1024,
  checkEveryMs: 250,
};

/**
 * Holds a batch job's heap to `factor` times its live size, for the CLI's replay.
 *
 * Why: V8 lets its old generation grow to up to four times what a full collection left before
 * it collects again. The replay's live set is small (the rows it keeps, ~45 MB on
 * test/adapters/audit's million-event history), but the values each folded event overwrites in
 * those long-lived rows, and the pages it holds while PostgreSQL writes the previous one, are
 * promoted and die in the old generation; left to V8 the peak RSS of the same replay ranged
 * 253-358 MB from run to run (BENCHMARKS.md, "Replay memory and rate"). Collecting when the heap has
 * doubled bounds it by the live set, whatever the history's size, at the cost of a full
 * collection (tens of ms) each time it doubles.
 *
 * How: `gc` is exposed with `--expose-gc` set at run time and taken from a fresh context (as
 * jest's leak detector gets it); the flag only adds that global. When it cannot be had, the job
 * runs as before and only loses the bound. Returns the function that stops the watch.
 */
export const boundHeapGrowth = (
  options: HeapGrowthOptions,
  gc: (() => void) | null = exposedGc(),
  usedBytes: () => number = () => getHeapStatistics().used_heap_size,
): (() => void) => {
  if (gc === null) return () => {};
  let limit = Math.max(options.floorBytes, usedBytes() * options.factor);
  const timer = setInterval(() => {
    if (usedBytes() < limit) return;
    gc();
    limit = Math.max(options.floorBytes, usedBytes() * options.factor);
  }, options.checkEveryMs);
  timer.unref();
  return () => clearInterval(timer);
};

export const exposedGc = (): (() => void) | null => {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('typeof gc === "function" ? gc : null');
    return typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    return null;
  }
};
