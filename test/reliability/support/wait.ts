/**
 * Polls `check` until it returns true; fails after `timeoutMs` naming `what`, with `describe()`'s
 * text (e.g. a process's output) so the failure says what the system was doing. `check` may
 * throw to fail at once.
 */
export const waitUntil = async (
  what: string,
  check: () => boolean | Promise<boolean>,
  options: {
    timeoutMs?: number;
    intervalMs?: number;
    describe?: () => string | Promise<string>;
  } = {},
): Promise<void> => {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) {
      const detail = options.describe ? `\n${await options.describe()}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await pause(options.intervalMs ?? 20);
  }
};

export const pause = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** The p-th percentile (0-100) of `values`, nearest rank; NaN when empty. */
export const percentile = (values: readonly number[], p: number): number => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
};
