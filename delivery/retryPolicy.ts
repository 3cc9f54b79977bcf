/**
 * Retry delays are data (Svix): `delaysS[k]` is the delay before attempt k+1, so the schedule's
 * length is the number of attempts. The docs' table: immediate, 5 min, 30 min, 2 h, 24 h, then
 * the delivery is failed.
 */
export const defaultRetrySchedule: readonly number[] = Object.freeze([0, 300, 1800, 7200, 86400]);

export type RetrySchedule =
  { ok: true; delaysS: readonly number[] } | { ok: false; message: string };

const maxEntries = 20;
const secondsPerUnit = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 } as const;
const item = /^(\d+)(ms|s|m|h|d)$/;

/**
 * Parses a schedule such as `0s,5m,30m,2h,24h` (units ms, s, m, h, d; whole numbers). A value,
 * not a throw, so config parsing can report the key; messages name the offending item.
 */
export const parseRetrySchedule = (text: string): RetrySchedule => {
  const items = text.split(',').map((part) => part.trim());
  if (items.length === 1 && items[0] === '') {
    return { ok: false, message: 'retry schedule is empty: give at least one delay, e.g. 0s' };
  }
  if (items.length > maxEntries) {
    return {
      ok: false,
      message: `retry schedule has ${items.length} delays, at most ${maxEntries}`,
    };
  }
  const delaysS: number[] = [];
  for (const [index, part] of items.entries()) {
    const match = item.exec(part);
    if (!match) {
      return {
        ok: false,
        message: `retry schedule item ${index + 1} "${part}" is not a whole number with a unit (ms, s, m, h, d)`,
      };
    }
    const [, amount = '', unit = 's'] = match;
    delaysS.push(Number(amount) * secondsPerUnit[unit as keyof typeof secondsPerUnit]);
  }
  return { ok: true, delaysS: Object.freeze(delaysS) };
};

/**
 * When the next attempt is due, or null once the schedule is exhausted. The delay before attempt
 * k+1 is measured from the previous failure (`lastFailureAt`); for the first attempt
 * (`attemptsMade` 0) pass the time the delivery was enqueued.
 */
export const nextAttemptAt = (input: {
  delaysS: readonly number[];
  attemptsMade: number;
  lastFailureAt: Date;
}): Date | null => {
  const delayS = input.delaysS[input.attemptsMade];
  if (delayS === undefined) return null;
  return new Date(input.lastFailureAt.getTime() + Math.round(delayS * 1000));
};
