/**
 * Input checks shared by the deciders. They run inside `decide` because a command may come from
 * any adapter; the HTTP edge validates too, but the domain does not trust it to.
 * Lengths count code points, so an emoji is one character, as a user would count it.
 */

/** The largest amount of points one command may move. */
export const maxPointsPerCommand = 1_000_000_000;

/** U+0000-U+001F and U+007F: invisible in logs and dashboards, and a vector for log injection. */
export const hasControlCharacters = (value: string): boolean => {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code <= 0x1f || code === 0x7f) return true;
  }
  return false;
};

export const lengthOf = (value: string): number => [...value].length;

/** Text of `min..max` code points, not blank once trimmed, with no control characters. */
export const isText = (value: unknown, limits: { min: number; max: number }): value is string =>
  typeof value === 'string' &&
  value.trim().length > 0 &&
  lengthOf(value) >= limits.min &&
  lengthOf(value) <= limits.max &&
  !hasControlCharacters(value);

export const isName = (value: unknown): value is string => isText(value, { min: 1, max: 200 });

export const isReason = (value: unknown): value is string => isText(value, { min: 1, max: 500 });

/** Basic shape only (something@domain.tld); deliverability is the mailer's business. */
export const isEmail = (value: unknown): value is string =>
  typeof value === 'string' &&
  value.length <= 254 &&
  !hasControlCharacters(value) &&
  /^[^\s@]+@(?:[^\s@.]+\.)+[^\s@.]+$/.test(value);

/** A positive safe integer no larger than `maxPointsPerCommand`. */
export const isPoints = (value: unknown): value is number =>
  typeof value === 'number' &&
  Number.isSafeInteger(value) &&
  value > 0 &&
  value <= maxPointsPerCommand;

export const isIntegerBetween = (value: unknown, min: number, max: number): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max;

/** Whether the runtime's ICU knows the IANA zone (Intl throws a RangeError otherwise). */
export const isTimezone = (value: unknown): value is string => {
  if (typeof value !== 'string' || value.length === 0 || value.length > 100) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
    return true;
  } catch {
    return false;
  }
};

/** Structural equality for the JSON-shaped values carried in events (key order ignored). */
export const jsonEqual = (a: unknown, b: unknown): boolean => {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]));
  }
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const keys = Object.keys(left);
  return (
    keys.length === Object.keys(right).length &&
    keys.every((key) => Object.hasOwn(right, key) && jsonEqual(left[key], right[key]))
  );
};

/** The ISO-8601 UTC form every event uses for time. */
export const isoOf = (date: Date): string => date.toISOString();
