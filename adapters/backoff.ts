/**
 * The delay before an infrastructure retry (a reconnect, a failed batch, a lost connection):
 * `baseMs × factor^attempt`, capped at `maxMs`. With `jitter` (0 to 1) the delay is drawn from
 * [delay × (1 − jitter), delay], so that processes which failed together do not retry together.
 *
 * Every retry loop of the adapters takes its delay from here, with its own constants named at
 * the call. The loops themselves stay where they are: each also wakes on a stop or a
 * notification, which a retry-a-promise library (exponential-backoff, p-retry) does not model.
 */
export type BackoffOptions = {
  /** 0 for the first retry. */
  attempt: number;
  baseMs: number;
  maxMs: number;
  /** Growth per attempt; 2 unless given. */
  factor?: number;
  /** Share of the delay that is random, 0 (none, the default) to 1. */
  jitter?: number;
  /** For tests: a source of numbers in [0, 1). */
  random?: () => number;
};

export const backoff = (options: BackoffOptions): number => {
  const { attempt, baseMs, maxMs, factor = 2, jitter = 0, random = Math.random } = options;
  if (!(attempt >= 0)) throw new RangeError(`backoff: attempt must be ≥ 0, got ${attempt}`);
  // Past the cap the power only overflows: stop growing at the first attempt that reaches it.
  const delay = Math.min(maxMs, baseMs * factor ** Math.min(attempt, 64));
  const share = Math.min(1, Math.max(0, jitter));
  return delay - delay * share * random();
};
