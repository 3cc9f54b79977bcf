import { createHash } from 'node:crypto';
import type { EventMetadata } from '../../domain/recordedEvent.ts';

/**
 * The text PostgreSQL's jsonb output gives for `JSON.stringify(value)` stored as jsonb, computed
 * in JavaScript. The hash chain covers these bytes so that PostgreSQL can recompute it from the
 * stored rows itself (`audit verify` runs in SQL), while a store without PostgreSQL (EventStoreDB)
 * computes the very same bytes here. jsonb's output, stable since 9.4:
 * - object keys sorted by their UTF-8 byte length, then bytewise; `": "` and `", "` between;
 * - strings escaped as JSON.stringify escapes them (both write `\uXXXX` in lowercase hex for the
 *   other control characters; PostgreSQL refuses `\u0000` and lone surrogates on input);
 * - numbers as `numeric` prints them: never an exponent, 1e21 -> 1000000000000000000000,
 *   1.5e-7 -> 0.00000015.
 * test/adapters/eventstore/canonical.int.test.ts compares this with PostgreSQL and PGlite.
 */
export const jsonbText = (value: unknown): string => textOf(value, '') ?? 'null';

/** A value's text, or undefined where JSON.stringify drops it (undefined, functions, symbols). */
const textOf = (raw: unknown, key: string): string | undefined => {
  const value = hasToJson(raw) ? raw.toJSON(key) : raw;
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? numericText(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      throw new TypeError('a bigint has no JSON text');
    case 'object':
      if (value === null) return 'null';
      if (Array.isArray(value))
        return `[${Array.from(value, (item: unknown, i) => textOf(item, String(i)) ?? 'null').join(', ')}]`;
      return objectText(value as Record<string, unknown>);
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
};

const hasToJson = (value: unknown): value is { toJSON: (key: string) => unknown } =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as { toJSON?: unknown }).toJSON === 'function';

const ascii = /^[^\u0080-\uffff]*$/;

/** jsonb's key order: shorter UTF-8 first, then bytewise (ASCII: bytewise is code-unit order). */
const sortKeys = (keys: string[]): string[] => {
  if (keys.every((key) => ascii.test(key)))
    return keys.sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
  return keys
    .map((key) => ({ key, bytes: Buffer.from(key) }))
    .sort((a, b) => a.bytes.length - b.bytes.length || Buffer.compare(a.bytes, b.bytes))
    .map(({ key }) => key);
};

const objectText = (object: Record<string, unknown>): string => {
  const members: string[] = [];
  for (const key of sortKeys(Object.keys(object))) {
    const text = textOf(object[key], key);
    if (text !== undefined) members.push(`${JSON.stringify(key)}: ${text}`);
  }
  return `{${members.join(', ')}}`;
};

/**
 * A finite number as `numeric` prints the JSON number JavaScript writes for it: the same digits,
 * with the exponent spelt out in zeros (numeric keeps the scale the input implies, and JavaScript's
 * shortest round-trip digits never end in a fractional zero).
 */
const numericText = (value: number): string => {
  const written = JSON.stringify(value);
  const e = written.indexOf('e');
  if (e === -1) return written;
  const negative = written.startsWith('-');
  const mantissa = written.slice(negative ? 1 : 0, e);
  const point = mantissa.indexOf('.');
  const digits = mantissa.replace('.', '');
  const integerDigits = (point === -1 ? mantissa.length : point) + Number(written.slice(e + 1));
  const unsigned =
    integerDigits <= 0
      ? `0.${'0'.repeat(-integerDigits)}${digits}`
      : integerDigits >= digits.length
        ? `${digits}${'0'.repeat(integerDigits - digits.length)}`
        : `${digits.slice(0, integerDigits)}.${digits.slice(integerDigits)}`;
  return negative ? `-${unsigned}` : unsigned;
};

/**
 * The bytes an event's hash covers: the jsonb text of `{id, stream, type, data, metadata}`, which
 * is what the SQL function `incentable_canonical` (migration 001) builds from a stored row. The
 * revision is not among them: the chain itself fixes the order, so a swapped pair breaks it as
 * surely as an altered one. `id` must be a uuid in PostgreSQL's spelling (lowercase, hyphens).
 */
export const canonicalEvent = (event: {
  id: string;
  streamName: string;
  type: string;
  data: unknown;
  metadata: EventMetadata;
}): string =>
  `{"id": ${JSON.stringify(event.id)}, "data": ${jsonbText(event.data)}, "type": ${JSON.stringify(event.type)}, "stream": ${JSON.stringify(event.streamName)}, "metadata": ${jsonbText(event.metadata)}}`;

/** sha256 hex of the previous hash (empty for a stream's first event) then the canonical bytes. */
export const chainHash = (previousHash: string | null, canonical: string): string =>
  createHash('sha256')
    .update(previousHash ?? '')
    .update(canonical)
    .digest('hex');
