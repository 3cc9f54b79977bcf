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

/**
 * Whether the string is Unicode text every store and wire format can carry: no NUL (PostgreSQL's
 * text and jsonb cannot hold U+0000) and no unpaired UTF-16 surrogate (a JSON `"\ud800"` escape
 * parses to one; it has no UTF-8 encoding, and PostgreSQL refuses it). Stricter rules, such as
 * `hasControlCharacters`, come on top of this one, never instead of it.
 */
export const isWellFormedText = (value: string): boolean => {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code === 0) return false;
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    } else if (code >= 0xdc00 && code <= 0xdfff) return false;
  }
  return true;
};

/**
 * Object keys JavaScript gives a meaning of their own: `__proto__` sets an object's prototype when
 * assigned (so a copy drops it silently) and `constructor`/`prototype` shadow what code reaches
 * through them. A JSON object may hold them as plain keys; we refuse them as names of user data.
 */
export const isReservedKey = (key: string): boolean =>
  key === '__proto__' || key === 'constructor' || key === 'prototype';

export const lengthOf = (value: string): number => [...value].length;

/** Well-formed text of `min..max` code points, not blank once trimmed, without control characters. */
export const isText = (value: unknown, limits: { min: number; max: number }): value is string =>
  typeof value === 'string' &&
  value.trim().length > 0 &&
  lengthOf(value) >= limits.min &&
  lengthOf(value) <= limits.max &&
  !hasControlCharacters(value) &&
  isWellFormedText(value);

export const isName = (value: unknown): value is string => isText(value, { min: 1, max: 200 });

export const isReason = (value: unknown): value is string => isText(value, { min: 1, max: 500 });

/** Basic shape only (something@domain.tld); deliverability is the mailer's business. */
export const isEmail = (value: unknown): value is string =>
  typeof value === 'string' &&
  value.length <= 254 &&
  !hasControlCharacters(value) &&
  isWellFormedText(value) &&
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
