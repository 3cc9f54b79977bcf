import { randomBytes } from 'node:crypto';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { sql } from 'kysely';
import { Pool } from 'undici';
import { openApiDocument } from '../../adapters/http/api/openapi.ts';
import type { Runtime } from '../../adapters/runtime.ts';
import { webhookEventTypes } from '../../delivery/catalogue.ts';
import { idPrefixes, type IdKind } from '../../domain/ids.ts';
import { settle } from './api.ts';

/**
 * Request generators for every route of the OpenAPI document, and a client that sends them and
 * checks the answers: never a 5xx, every 4xx in the one error body, and no event recorded for a
 * refused request. Shared by test/adapters/http/fuzz.e2e.test.ts and bench/fuzz/run.ts.
 *
 * Inputs are derived from the document's JSON Schemas (the same zod objects that validate
 * requests), so a new route or field is fuzzed without touching this file. What a JSON Schema
 * cannot say (that a string is an email, an id of something that exists, a position a command
 * returned) comes from `hints` below, by field name.
 */

/** The JSON Schema subset zod's toJSONSchema writes into the document. */
type JsonSchema = {
  $ref?: string;
  type?: 'string' | 'integer' | 'number' | 'boolean' | 'null' | 'array' | 'object';
  enum?: readonly unknown[];
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
};

type OpenApiOperation = {
  parameters: { name: string; in: 'path' | 'query'; schema: JsonSchema }[];
  requestBody?: { content: { 'application/json': { schema: JsonSchema } } };
};

type OpenApiDocument = {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, JsonSchema> };
};

/** One route as the fuzz sees it. */
export type FuzzRoute = {
  /** `POST /v1/programs/{programId}/members`: the key of the by-route counts. */
  operation: string;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  template: string;
  /** Path parameters, each with the kind of id it names. */
  params: { name: string; kind: ParamKind }[];
  query: Record<string, JsonSchema>;
  body: JsonSchema | null;
};

/** What the fuzz remembers from accepted answers, to name things that exist. */
export type PoolKind = IdKind | 'position' | 'cursor';

/**
 * Values a case holds that JSON.stringify cannot write (a raw token such as `-0` or `1e400`), that
 * are too big to print in a counterexample, or that name something the run has seen: each is
 * written out only when the request is sent. Plain objects tagged with `wire`, recognised by
 * `specials`, so a generated body cannot forge one.
 */
export type Special =
  | { wire: 'raw'; text: string }
  | { wire: 'long'; unit: string; count: number }
  | { wire: 'many'; item: unknown; count: number }
  | { wire: 'wide'; value: unknown; count: number }
  | { wire: 'nested'; depth: number; inner: unknown; as: 'array' | 'object' }
  | { wire: 'known'; kind: PoolKind; pick: number }
  | { wire: 'bytes'; hex: string };

const specials = new WeakSet<object>();
const special = <T extends Special>(value: T): T => {
  specials.add(value);
  return value;
};
const isSpecial = (value: unknown): value is Special =>
  typeof value === 'object' && value !== null && specials.has(value);

/** A token written into the JSON text or the URL as it is (already encoded for a URL). */
export const raw = (text: string): Special => special({ wire: 'raw', text });
const long = (unit: string, count: number): Special => special({ wire: 'long', unit, count });
const many = (item: unknown, count: number): Special => special({ wire: 'many', item, count });
/** An object of `count` keys (k0, k1, ...), each holding `value`. */
const wide = (value: unknown, count: number): Special => special({ wire: 'wide', value, count });
const nested = (depth: number, inner: unknown, as: 'array' | 'object'): Special =>
  special({ wire: 'nested', depth, inner, as });
const known = (kind: PoolKind, pick: number): Special => special({ wire: 'known', kind, pick });
const bytes = (hex: string): Special => special({ wire: 'bytes', hex });

/**
 * An object holding exactly these own keys, `__proto__` included: assigning that key would set
 * the prototype instead, and a body must be able to carry it as a plain name.
 */
const objectOf = (entries: readonly (readonly [string, unknown])[]): Record<string, unknown> => {
  const object: Record<string, unknown> = {};
  for (const [key, value] of entries)
    Object.defineProperty(object, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return object;
};

/** Path parameter names the document uses, beside `<kind>Id`. */
const paramKinds: Record<string, IdKind> = {
  endpointId: 'webhookEndpoint',
  deliveryId: 'webhookDelivery',
  keyId: 'apiKey',
};

/** What a path parameter holds: an id of a kind, or a period id (derived, not generated). */
type ParamKind = IdKind | 'period';

const kindOfParam = (name: string): ParamKind => {
  if (name === 'periodId') return 'period';
  const kind = paramKinds[name] ?? name.replace(/Id$/, '');
  if (!(kind in idPrefixes))
    throw new Error(
      `the fuzz knows no id kind for the path parameter ${name}: add it to paramKinds`,
    );
  return kind as IdKind;
};

/** Every operation of the OpenAPI document the app serves. */
export const fuzzRoutes = (
  document = openApiDocument('fuzz') as OpenApiDocument,
): { routes: FuzzRoute[]; schemas: Record<string, JsonSchema> } => {
  const routes: FuzzRoute[] = [];
  for (const [template, operations] of Object.entries(document.paths))
    for (const [method, operation] of Object.entries(operations)) {
      const upper = method.toUpperCase() as FuzzRoute['method'];
      routes.push({
        operation: `${upper} ${template}`,
        method: upper,
        template,
        params: operation.parameters
          .filter((p) => p.in === 'path')
          .map((p) => ({ name: p.name, kind: kindOfParam(p.name) })),
        query: Object.fromEntries(
          operation.parameters.filter((p) => p.in === 'query').map((p) => [p.name, p.schema]),
        ),
        body: operation.requestBody?.content['application/json'].schema ?? null,
      });
    }
  return { routes, schemas: document.components.schemas };
};

const webhookTypes = [...webhookEventTypes];

/** `arbitrary` in `percent` % of cases, else undefined. */
const maybe = <T>(arbitrary: fc.Arbitrary<T>, percent: number): fc.Arbitrary<T | undefined> =>
  fc.oneof(
    { weight: percent, arbitrary },
    { weight: 100 - percent, arbitrary: fc.constant(undefined) },
  );

const email = fc
  .oneof(
    { weight: 9, arbitrary: fc.tuple(fc.stringMatching(/^[a-z0-9]{1,12}$/), fc.nat(1_000_000)) },
    { weight: 1, arbitrary: fc.tuple(fc.emailAddress(), fc.constant(-1)) },
  )
  .map(([local, n]) => (n < 0 ? local : `${local}.${n}@example.com`));

/**
 * Digit strings at the edges of PostgreSQL's integer types (bigint, xid8): a value of the right
 * shape that no column can hold.
 */
const edgeDigits = fc.constantFrom(
  '0',
  '1',
  '00000000000000000001',
  '2147483648',
  '9223372036854775807',
  '9223372036854775808',
  '18446744073709551615',
  '18446744073709551616',
  '99999999999999999999',
);

/**
 * Field names whose JSON Schema says less than the route wants. Endpoint URLs are loopback only:
 * the fuzz runs without the delivery role, and nothing generated may ever point elsewhere.
 */
const hints: Record<string, fc.Arbitrary<unknown>> = {
  email,
  notification_email: email,
  url: fc.constantFrom(
    'http://127.0.0.1:9/fuzz',
    'http://127.0.0.1:9/hooks?a=b',
    'http://localhost:9/x',
    'https://127.0.0.1:9/',
  ),
  timezone: fc.constantFrom(
    'UTC',
    'Europe/Berlin',
    'America/New_York',
    'Asia/Kathmandu',
    'Pacific/Chatham',
    'Etc/GMT+12',
    'Mars/Olympus',
    'utc',
    '+05:30',
  ),
  events: fc.oneof(
    fc.constant(['*']),
    fc.subarray(webhookTypes, { minLength: 1 }),
    fc.array(fc.constantFrom(...webhookTypes, '*', 'points.*', 'nope'), {
      minLength: 1,
      maxLength: 3,
    }),
  ),
  reward_id: fc.nat().map((pick) => known('reward', pick)),
  // The orders listing's filter: a member the run has seen (or a hostile value, as any field).
  member_id: fc.nat().map((pick) => known('member', pick)),
  endpoint_id: fc.nat().map((pick) => known('webhookEndpoint', pick)),
  after_position: fc.oneof(
    { weight: 3, arbitrary: fc.nat().map((pick) => known('position', pick)) },
    { weight: 1, arbitrary: fc.tuple(edgeDigits, edgeDigits).map((parts) => parts.join('.')) },
  ),
};

const text = (minLength: number, maxLength: number): fc.Arbitrary<string> => {
  const min = Math.max(minLength, 1);
  return fc
    .oneof(
      {
        weight: 4,
        arbitrary: fc.string({
          unit: 'grapheme-ascii',
          minLength: min,
          maxLength: Math.max(min, Math.min(maxLength, 30)),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.string({
          unit: 'grapheme',
          minLength: min,
          maxLength: Math.max(min, Math.min(maxLength / 4, 10)),
        }),
      },
    )
    .map((value) => (value.trim() === '' ? 'x'.repeat(min) : value));
};

const integer = (min = -Number.MAX_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER) =>
  fc.oneof(
    fc.bigInt({ min: BigInt(min), max: BigInt(Math.min(max, min + 1_000)) }).map(Number),
    fc.bigInt({ min: BigInt(min), max: BigInt(max) }).map(Number),
  );

/** A value the schema accepts, or close to it (the routes' refinements are not in the schema). */
const validValue = (
  schema: JsonSchema,
  schemas: Record<string, JsonSchema>,
  name?: string,
): fc.Arbitrary<unknown> => {
  const hinted = name === undefined ? undefined : hints[name];
  if (hinted) return hinted;
  if (schema.$ref) {
    const target = schemas[schema.$ref.replace('#/components/schemas/', '')];
    if (!target) throw new Error(`the document has no schema ${schema.$ref}`);
    return validValue(target, schemas, name);
  }
  if (schema.enum) return fc.constantFrom(...schema.enum);
  if (schema.anyOf) return fc.oneof(...schema.anyOf.map((s) => validValue(s, schemas, name)));
  switch (schema.type) {
    case 'string':
      if (schema.format === 'date-time')
        return fc.oneof(
          fc
            .date({ min: new Date('2020-01-01'), max: new Date('2030-01-01'), noInvalidDate: true })
            .map((d) => d.toISOString()),
          // Anything the pattern allows: year 0000, leap days, offsets of +23:59.
          fc.stringMatching(new RegExp(schema.pattern ?? '^$')),
        );
      if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern));
      return text(schema.minLength ?? 0, schema.maxLength ?? 100);
    case 'integer':
      return integer(schema.minimum, schema.maximum);
    case 'number':
      return fc.double({ noNaN: true, noDefaultInfinity: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(validValue(schema.items ?? {}, schemas), {
        minLength: schema.minItems ?? 0,
        maxLength: Math.max(schema.minItems ?? 0, Math.min(schema.maxItems ?? 4, 4)),
      });
    case 'object': {
      const required = new Set(schema.required ?? []);
      const fields = Object.entries(schema.properties ?? {}).map(([key, s]) => {
        const entry = validValue(s, schemas, key).map((value) => [[key, value] as const]);
        return required.has(key) ? entry : fc.oneof(entry, fc.constant([]));
      });
      const extra =
        typeof schema.additionalProperties === 'object'
          ? fc.array(
              fc.tuple(
                validValue(schema.propertyNames ?? { type: 'string' }, schemas).map(String),
                validValue(schema.additionalProperties, schemas),
              ),
              { maxLength: 4 },
            )
          : fc.constant([]);
      return fc
        .tuple(fc.tuple(...fields), extra)
        .map(([parts, more]) => objectOf([...parts.flat(), ...more]));
    }
    case undefined:
      return fc.jsonValue({ maxDepth: 2 });
  }
};

/** Strings no field should take whole: broken text, blanks, look-alikes, numbers as text. */
const hostileStrings = [
  '\ud800',
  'a\ud800b',
  '\udfff',
  '\udc00\ud800',
  '\u0000',
  'a\u0000b',
  '',
  ' ',
  '\t',
  '\r\n',
  '\u007f',
  '\u202e',
  '\u200b',
  '\ufeff',
  '\ufffd',
  '\ufdd0',
  '🎉',
  'NaN',
  'Infinity',
  '-Infinity',
  '-0',
  '1e308',
  '0x10',
  '1_000',
  '１２',
  ' 10 ',
  'null',
  'true',
  '[]',
  '{}',
  '__proto__',
  '%00',
  '\\u0000',
  "' OR '1'='1",
  '<script>alert(1)</script>',
  '../../etc/passwd',
  'prg_',
  `mem_${'A'.repeat(65)}`,
  '2026-02-30T00:00:00Z',
  '+275760-09-13T00:00:00.001Z',
];

/** Numbers at and past every edge, some as raw tokens JSON.stringify would rewrite. */
const hostileNumbers: unknown[] = [
  raw('-0'),
  raw('1e308'),
  raw('1e400'),
  raw('-1e400'),
  raw('18446744073709551616'),
  raw('9007199254740993'),
  raw('1.0'),
  raw('1E2'),
  raw('0.1e1'),
  raw('1'.repeat(400)),
  raw(`0.${'0'.repeat(400)}1`),
  1e308,
  -1e308,
  5e-324,
  -1,
  0,
  0.5,
  2 ** 31,
  2 ** 53,
  2 ** 64,
  Number.MAX_SAFE_INTEGER,
  1_000_000_001,
];

const wrongTypes: unknown[] = [null, true, false, [], {}, [null], [[[]]], { a: 1 }, [1, 'a']];

const longString = fc
  .tuple(
    fc.constantFrom('x', 'é', '🎉', ' ', '\u0000', '\ud800'),
    fc.integer({ min: 1_000, max: 100_000 }),
  )
  .map(([unit, count]) => long(unit, count));

const hugeArray = fc
  .tuple(
    fc.constantFrom<unknown>(0, '', null, {}, [], 'mem_x'),
    fc.integer({ min: 1_000, max: 20_000 }),
  )
  .map(([item, count]) => many(item, count));

const wideObject = fc
  .tuple(fc.constantFrom<unknown>(0, 'x', null, {}), fc.integer({ min: 51, max: 20_000 }))
  .map(([value, count]) => wide(value, count));

const deep = fc
  .tuple(
    fc.integer({ min: 33, max: 80 }),
    fc.constantFrom<unknown>(1, 'x', null, {}),
    fc.constantFrom<'array' | 'object'>('array', 'object'),
  )
  .map(([depth, inner, as]) => nested(depth, inner, as));

/** A value no field expects, or one at an edge of what it expects. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...hostileStrings) },
  { weight: 3, arbitrary: fc.constantFrom(...hostileNumbers) },
  { weight: 2, arbitrary: fc.constantFrom(...wrongTypes) },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 1, arbitrary: longString },
  { weight: 1, arbitrary: hugeArray },
  { weight: 1, arbitrary: wideObject },
  { weight: 1, arbitrary: deep },
);

const hostileKey = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    '',
    'extra',
    'a\u0000',
    '\ud800',
    'toString',
    'hasOwnProperty',
    '$where',
    'name ',
    'NAME',
    'k'.repeat(300),
  ),
  fc.string({ unit: 'binary', maxLength: 10 }),
);

/** Whole bodies: the wrong JSON type, broken JSON, bytes that are not UTF-8, too deep, too big. */
const hostileBody: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...wrongTypes, 0, 'x', raw('-0'), raw('1e400')) },
  { weight: 2, arbitrary: hostileValue },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      ...[
        '',
        ' ',
        '{',
        '[',
        '{"a":}',
        "{'a':1}",
        '{"a":1,}',
        'NaN',
        '"str"',
        '\ufeff{}',
        '{"a":"\\ud800"}',
        '{"name":"\\u0000"}',
        '{"points":1e400,"reason":"x"}',
        '{"__proto__":{"polluted":1}}',
        '{"constructor":{"prototype":{"polluted":1}}}',
        '{"a":1,"a":2}',
        '/* c */{}',
        'undefined',
        '{"a":"\\x41"}',
        '{"a":"\\u12"}',
        '{"a":"\u0001"}',
        '{"a":1}{"b":2}',
      ].map(raw),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      ...['ff', 'c0af', 'eda080', '7b226e616d65223a22ff227d', 'efbbbf7b7d', 'f4908080', 'e282'].map(
        bytes,
      ),
    ),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.integer({ min: 33, max: 100_000 }),
        fc.constantFrom<'array' | 'object'>('array', 'object'),
      )
      .map(([depth, as]) => nested(depth, null, as)),
  },
  { weight: 1, arbitrary: hugeArray },
  { weight: 1, arbitrary: wideObject },
  { weight: 1, arbitrary: fc.constant(long('x', 1_100_000)) },
);

type Mutation =
  | { op: 'replace'; at: number; value: unknown }
  | { op: 'add'; at: number; key: string; value: unknown }
  | { op: 'remove'; at: number }
  | { op: 'nest'; at: number; depth: number; as: 'array' | 'object' }
  | { op: 'body'; body: unknown };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('replace' as const),
      at: fc.nat(),
      value: hostileValue,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('add' as const),
      at: fc.nat(),
      key: hostileKey,
      value: fc.oneof(hostileValue, fc.jsonValue({ maxDepth: 1 })),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('remove' as const), at: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('nest' as const),
      at: fc.nat(),
      depth: fc.integer({ min: 30, max: 60 }),
      as: fc.constantFrom<'array' | 'object'>('array', 'object'),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('body' as const), body: hostileBody }) },
);

type Path = (string | number)[];

/** Every place in a body a value sits at (object fields and array items), outermost first. */
const placesOf = (value: unknown, path: Path = [], out: Path[] = []): Path[] => {
  if (typeof value !== 'object' || value === null || isSpecial(value)) return out;
  for (const [key, item] of Array.isArray(value) ? value.entries() : Object.entries(value)) {
    out.push([...path, key]);
    placesOf(item, [...path, key], out);
  }
  return out;
};

const valueAt = (root: unknown, path: Path): unknown =>
  path.reduce<unknown>((value, key) => (value as Record<string | number, unknown>)[key], root);

/** A copy of `root` with the value at `path` replaced (or removed, for `undefined`). */
const withValueAt = (root: unknown, path: Path, value: unknown): unknown => {
  if (path.length === 0) return value;
  const [key, ...rest] = path;
  if (Array.isArray(root)) {
    const copy = [...(root as unknown[])];
    const next = withValueAt(copy[key as number], rest, value);
    if (next === undefined) copy.splice(key as number, 1);
    else copy[key as number] = next;
    return copy;
  }
  const entries = Object.entries(root as Record<string, unknown>).flatMap(([k, v]) => {
    if (k !== key) return [[k, v] as const];
    const next = withValueAt(v, rest, value);
    return next === undefined ? [] : [[k, next] as const];
  });
  return objectOf(entries);
};

const applyMutation = (body: unknown, m: Mutation): unknown => {
  if (m.op === 'body') return m.body;
  const places = placesOf(body);
  const place = places.length === 0 ? [] : places[m.at % places.length]!;
  switch (m.op) {
    case 'replace':
      return withValueAt(body, place, m.value);
    case 'remove':
      return place.length === 0 ? undefined : withValueAt(body, place, undefined);
    case 'nest':
      return withValueAt(body, place, nested(m.depth, valueAt(body, place), m.as));
    case 'add': {
      const objects = [[], ...places].filter((p) => {
        const v = valueAt(body, p);
        return typeof v === 'object' && v !== null && !Array.isArray(v) && !isSpecial(v);
      });
      if (objects.length === 0) return objectOf([[m.key, m.value]]);
      const target = objects[m.at % objects.length]!;
      const object = valueAt(body, target) as Record<string, unknown>;
      return withValueAt(body, target, objectOf([...Object.entries(object), [m.key, m.value]]));
    }
  }
};

/** A path or query token: a string to percent-encode, or a Special (raw, long, known). */
type Token = string | Special;

const hostileQueryValues: Token[] = [
  ...['%00', 'a%00b', '%ED%A0%80', '%C0%AF', '%FF', '%', '%zz', '%uD800', '%2500', '%0A'].map(raw),
  '1e308',
  '-0',
  '18446744073709551616',
  'NaN',
  'Infinity',
  '-1',
  '0',
  '1.5',
  '+5',
  '0x10',
  '',
  ' ',
  '99999999999999999999.99999999999999999999',
  '18446744073709551615.9223372036854775807',
  '18446744073709551616.1',
  '1.9223372036854775808',
  '0.0',
  '999999999999999999',
  '0000-01-01T00:00:00Z',
  '+275760-09-13T00:00:00.000Z',
  '-271821-04-20T00:00:00Z',
  'pending,failed',
  '*',
  '__proto__',
  '\u202e',
  '🎉',
  long('9', 400),
  long('a', 5_000),
];

const queryValue: fc.Arbitrary<Token> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...hostileQueryValues) },
  { weight: 1, arbitrary: fc.stringMatching(/^\d{1,25}(\.\d{1,25})?$/) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }) },
  { weight: 1, arbitrary: fc.nat().map((pick) => known('position', pick)) },
  { weight: 1, arbitrary: fc.nat().map((pick) => known('cursor', pick)) },
);

const queryKey: fc.Arbitrary<Token> = fc.constantFrom<Token>(
  'unknown',
  '__proto__',
  'constructor',
  'prototype',
  'hasOwnProperty',
  'toString',
  raw('%00'),
  raw('a%00'),
  raw('%ED%A0%80'),
  '',
  'limit[]',
  'as_of',
  'after_position',
  'cursor',
  'limit',
  'LIMIT',
  long('k', 300),
);

const otherPrefixes = Object.values(idPrefixes);

/**
 * A period id of the form the API derives (the period's start in compact ISO-8601,
 * `20250303T000000.000Z`): the fuzz does not remember ended periods, so most name none.
 */
const periodToken: fc.Arbitrary<Token> = fc
  .date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
  .map((at) => at.toISOString().replace(/[-:]/g, ''));

const periodPathToken: fc.Arbitrary<Token> = fc.oneof(
  { weight: 6, arbitrary: periodToken },
  {
    weight: 3,
    arbitrary: fc.constantFrom<Token>(
      ...['%00', '%ED%A0%80', '%', '%zz', '%2F', '..', '.', ''].map(raw),
      '__proto__',
      '20250303T000000.000',
      '2025-03-03T00:00:00.000Z',
      '99999999T999999.999Z',
      '-1',
      long('9', 3_000),
    ),
  },
);

const pathToken = (kind: ParamKind): fc.Arbitrary<Token> =>
  kind === 'period' ? periodPathToken : idPathToken(kind);

const idPathToken = (kind: IdKind): fc.Arbitrary<Token> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.nat().map((pick) => known(kind, pick)) },
    {
      weight: 1,
      arbitrary: fc.stringMatching(/^[A-Za-z0-9]{1,64}$/).map((s) => `${idPrefixes[kind]}_${s}`),
    },
    { weight: 1, arbitrary: fc.constantFrom(...otherPrefixes).map((p) => `${p}_fuzz1`) },
    {
      weight: 2,
      arbitrary: fc.constantFrom<Token>(
        ...[
          '%00',
          `${idPrefixes[kind]}_a%00`,
          '%ED%A0%80',
          '%',
          '%zz',
          '%2F',
          '..',
          '%2e%2e',
          '.',
          '',
        ].map(raw),
        '__proto__',
        'constructor',
        'prototype',
        `${idPrefixes[kind]}_${'A'.repeat(65)}`,
        `${idPrefixes[kind]}_`,
        `${idPrefixes[kind]}_a b`,
        `${idPrefixes[kind]}_ä`,
        'null',
        '-1',
        long('a', 3_000),
      ),
    },
  );

/** One request, before the values it names are looked up. */
export type FuzzCase = {
  operation: string;
  method: string;
  params: Record<string, Token>;
  query: [Token, Token][];
  /** Absent: no body is sent. */
  body?: unknown;
  /** null: no Content-Type header although a body is sent. */
  contentType?: string | null;
  /** Content-Encoding; `compressed` says whether the body really is (gzip, deflate, br). */
  contentEncoding?: { name: string; compressed: boolean };
  idempotencyKey?: Token;
  /** An X-Request-Id the app refuses and replaces with one of its own. */
  requestId?: string;
};

const contentTypes = fc.constantFrom<string | null>(
  'text/plain',
  'application/json; charset=latin1',
  'application/json; charset=utf-16',
  'application/json; charset=UTF-8',
  'APPLICATION/JSON',
  'application/x-www-form-urlencoded',
  'application/json;;',
  'application/merge-patch+json',
  '*/*',
  '',
  null,
);

const idempotencyKeys = fc.oneof(
  { weight: 3, arbitrary: fc.stringMatching(/^[\x21-\x7e]{1,40}$/) },
  { weight: 2, arbitrary: fc.constantFrom('fuzz-1', 'fuzz-2', 'fuzz-3') },
  { weight: 1, arbitrary: fc.constantFrom<Token>('', ' ', 'é', 'a b', long('k', 256)) },
);

const queryOf = (route: FuzzRoute, schemas: Record<string, JsonSchema>) =>
  fc
    .tuple(
      ...Object.entries(route.query).map(([name, schema]) =>
        maybe(
          validValue(schema, schemas, name).map((value) => [name, value] as [Token, unknown]),
          50,
        ),
      ),
    )
    .map((pairs) =>
      pairs
        .filter((pair) => pair !== undefined)
        .map(([name, value]): [Token, Token] => [name, isSpecial(value) ? value : String(value)]),
    );

/**
 * Requests for one route: about a third as the schema describes them (with ids of things that
 * exist), the rest with one or more hostile changes to the path, the query, the body or headers.
 */
export const fuzzCase = (
  route: FuzzRoute,
  schemas: Record<string, JsonSchema>,
  options: { hostile?: boolean } = {},
): fc.Arbitrary<FuzzCase> => {
  const hasBody = route.method === 'POST' || route.method === 'PATCH';
  const validParams = fc.record(
    Object.fromEntries(
      route.params.map(({ name, kind }) => [
        name,
        kind === 'period' ? periodToken : fc.nat().map((pick): Token => known(kind, pick)),
      ]),
    ),
  );
  const validBody = route.body ? validValue(route.body, schemas) : fc.constant(objectOf([]));
  const valid = fc.record({
    operation: fc.constant(route.operation),
    method: fc.constant(route.method),
    params: validParams,
    query: queryOf(route, schemas),
    ...(hasBody && { body: validBody }),
    ...(route.method === 'POST' && {
      idempotencyKey: maybe(fc.stringMatching(/^[A-Za-z0-9]{8,20}$/), 20),
    }),
  });
  const mutated = fc
    .record({
      valid,
      params: fc.record(
        Object.fromEntries(
          route.params.map(({ name, kind }) => [name, maybe(pathToken(kind), 25)]),
        ),
      ),
      extraQuery: maybe(
        fc.array(
          fc.tuple(
            fc.oneof(queryKey, fc.constantFrom(...Object.keys(route.query), 'after_position')),
            queryValue,
          ),
          { minLength: 1, maxLength: 3 },
        ),
        30,
      ),
      replaceQuery: maybe(fc.tuple(fc.nat(), queryValue), 30),
      body: maybe(mutation, 60),
      noBody: maybe(fc.constant(true), 5),
      contentType: maybe(contentTypes, 8),
      idempotencyKey: maybe(idempotencyKeys, 15),
      contentEncoding: maybe(
        fc.record({
          name: fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'compress', 'gzip, gzip'),
          compressed: fc.boolean(),
        }),
        4,
      ),
      // Only ids the app refuses (and replaces with its own): the checks tell requests apart by the
      // id, so a valid one must stay the fuzzer's, unique to the request.
      requestId: maybe(fc.constantFrom('', 'a b', 'x'.repeat(101), 'é', '../x', 'a\tb'), 3),
      method: maybe(fc.constantFrom('PUT', 'GET', 'DELETE', 'POST', 'PATCH', 'HEAD', 'OPTIONS'), 3),
    })
    .map((m): FuzzCase => {
      const params = { ...m.valid.params };
      for (const [name, token] of Object.entries(m.params))
        if (token !== undefined) params[name] = token;
      const query = [...m.valid.query];
      if (m.replaceQuery && query.length > 0) {
        const at = m.replaceQuery[0] % query.length;
        query[at] = [query[at]![0], m.replaceQuery[1]];
      }
      query.push(...(m.extraQuery ?? []));
      const method = m.method ?? route.method;
      const sendsBody =
        method === 'POST' || method === 'PATCH' || method === 'PUT' || method === 'DELETE';
      const body =
        'body' in m.valid && m.body
          ? applyMutation(m.valid.body, m.body)
          : 'body' in m.valid
            ? m.valid.body
            : m.body?.op === 'body'
              ? m.body.body
              : undefined;
      return {
        operation: route.operation,
        method,
        params,
        query,
        ...(sendsBody && !m.noBody && body !== undefined && { body }),
        ...(m.contentType !== undefined && { contentType: m.contentType }),
        ...(m.idempotencyKey !== undefined && { idempotencyKey: m.idempotencyKey }),
        ...(m.contentEncoding !== undefined && { contentEncoding: m.contentEncoding }),
        ...(m.requestId !== undefined && { requestId: m.requestId }),
      };
    });
  if (options.hostile === false) return valid;
  return fc.oneof({ weight: 1, arbitrary: valid }, { weight: 2, arbitrary: mutated });
};

/**
 * A case for any route of the document. A route that reads a body or query parameters of its own
 * gets twice the cases of one that reads only its path (audit/verify, a GET by id): it has more
 * inputs to get wrong. `hostile: false` keeps to the schemas (a body is refused before the key is
 * checked, so a test of credentials wants valid ones).
 */
export const anyCase = (
  options: { hostile?: boolean } = {},
  fuzz: { routes: FuzzRoute[]; schemas: Record<string, JsonSchema> } = fuzzRoutes(),
): fc.Arbitrary<FuzzCase> =>
  fc.oneof(
    ...fuzz.routes.map((route) => ({
      weight: route.body || Object.keys(route.query).some((q) => q !== 'after_position') ? 2 : 1,
      arbitrary: fuzzCase(route, fuzz.schemas, options),
    })),
  );

/** Authorization headers that are not a valid key; null sends none. */
export const badAuthorization: fc.Arbitrary<string | null> = fc.oneof(
  fc.constantFrom<string | null>(
    null,
    '',
    'Bearer',
    'Bearer ',
    'Basic dXNlcjpwYXNzd29yZA==',
    'Token abcdefghijklmnopqrstuvwxyz',
    `Bearer ${'a'.repeat(513)}`,
    `Bearer ${'a'.repeat(15)}`,
    'Bearer key_admin.xxxxxxxxxxxxxxxx',
    'Bearer  aaaaaaaaaaaaaaaaaaaa',
    'Bearer éééééééééééééééééééé',
  ),
  fc.stringMatching(/^[\x21-\x7e]{16,64}$/).map((key) => `Bearer ${key}`),
  fc.stringMatching(/^[A-Za-z0-9]{1,20}$/).map((id) => `Bearer key_${id}.${'s'.repeat(43)}`),
  fc.stringMatching(/^[\x21-\x7e]{16,64}$/).map((key) => `bearer ${key}`),
);

/** The request a case stands for, ready to send. */
export type WireRequest = {
  operation: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
};

export type WireResponse = {
  status: number;
  contentType: string;
  text: string;
  requestId: string;
  /** The Retry-After header, empty when there is none. */
  retryAfter: string;
};

/** Why an answer breaks the contract; empty when it keeps it. */
export type Verdict = { response: WireResponse; problems: string[] };

export type FuzzStats = {
  cases: number;
  byStatus: Map<number, number>;
  byRoute: Map<string, Map<number, number>>;
  byCode: Map<string, number>;
  /** Milliseconds spent waiting for answers, by route. */
  msByRoute: Map<string, number>;
};

const bump = <K>(map: Map<K, number>, key: K) => map.set(key, (map.get(key) ?? 0) + 1);

const idPattern = new RegExp(`^(${Object.values(idPrefixes).join('|')})_[A-Za-z0-9]{1,64}$`);
const kindOfPrefix = new Map<string, IdKind>(
  Object.entries(idPrefixes).map(([kind, prefix]) => [prefix, kind as IdKind]),
);

const compressors: Record<string, (body: string | Buffer) => Buffer> = {
  gzip: (body) => gzipSync(body),
  deflate: (body) => deflateSync(body),
  br: (body) => brotliCompressSync(body),
};

const encode = (token: Token): string => {
  if (typeof token === 'string') return encodeURIComponent(token);
  switch (token.wire) {
    case 'raw':
      return token.text;
    case 'long':
      return encodeURIComponent(token.unit.repeat(token.count));
    case 'known':
    case 'many':
    case 'wide':
    case 'nested':
    case 'bytes':
      throw new Error(`a ${token.wire} cannot stand in a URL as it is`);
  }
};

/**
 * The events a request kept, per correlation id: all of them, except that a reservation given
 * back counts nothing. A member command reserves the email or external id before its decider
 * decides, and a refusal (the member deactivated meanwhile by a request sent at the same time)
 * releases it again (docs/architecture.md, "One member per email and external id"): the store
 * then holds a reserve and a release under the refused request, and no value stays held by it.
 */
const keptEvents = sql<number>`(count(*) filter (where type not in ('IdentifierReserved', 'IdentifierReleased'))
  + abs(count(*) filter (where type = 'IdentifierReserved') - count(*) filter (where type = 'IdentifierReleased')))::int`;

/**
 * Sends cases to a running app over keep-alive connections (`connections`, 1 unless told), a
 * batch at a time, and checks each answer. It remembers the ids, positions and cursors accepted
 * answers carry, so that later cases name things that exist. The checks hold for requests sent at
 * once: an event is told apart by the request id it carries, not by when it was counted. A class:
 * it owns the connections.
 */
export class Fuzzer {
  readonly stats: FuzzStats = {
    cases: 0,
    byStatus: new Map(),
    byRoute: new Map(),
    byCode: new Map(),
    msByRoute: new Map(),
  };
  /** Request ids answered 2xx: every recorded event must carry one of them. */
  readonly #accepted = new Set<string>();
  /** Request ids answered 4xx, with what was sent, to name a request that recorded an event. */
  readonly #refused = new Map<string, string>();
  readonly #pools = new Map<string, Map<PoolKind, string[]>>();
  /** The latest programs seen, at most 20. */
  readonly #programs: string[] = [];
  #primary: string | null = null;
  readonly #client: Pool;
  readonly #runtime: Runtime;
  readonly #key: string;
  #seq = 0;
  readonly #run = randomBytes(3).toString('hex');

  constructor(options: { runtime: Runtime; url: string; key: string; connections?: number }) {
    this.#runtime = options.runtime;
    this.#key = options.key;
    this.#client = new Pool(options.url, {
      connections: options.connections ?? 1,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
  }

  /**
   * Indexes the events by correlation id, so that each refused request can be looked up at once.
   * The database is the run's own; the index changes no answer.
   */
  async prepare(): Promise<void> {
    await sql`create index if not exists fuzz_events_by_correlation
      on incentable_events ((metadata->>'correlationId'))`.execute(this.#runtime.database.db);
  }

  /** Cases name this program most often: it holds the fixtures of the current round. */
  set primary(programId: string) {
    this.#primary = programId;
  }

  #pool(programId: string, kind: PoolKind): string[] {
    let pools = this.#pools.get(programId);
    if (!pools) this.#pools.set(programId, (pools = new Map<PoolKind, string[]>()));
    let pool = pools.get(kind);
    if (!pool) pools.set(kind, (pool = []));
    return pool;
  }

  #remember(programId: string, kind: PoolKind, value: string): void {
    if (kind === 'program') {
      if (this.#programs.includes(value)) return;
      this.#programs.push(value);
      if (this.#programs.length > 20) this.#programs.shift();
      return;
    }
    const pool = this.#pool(programId, kind);
    if (pool.includes(value)) return;
    pool.push(value);
    if (pool.length > 64) pool.shift();
  }

  #resolve(kind: PoolKind, pick: number, programId: string): string {
    if (kind === 'program') {
      const programs = this.#programs;
      if (programs.length === 0) return 'prg_none';
      return pick % 10 < 7 && this.#primary ? this.#primary : programs[pick % programs.length]!;
    }
    const own = this.#pool(programId, kind);
    const global = kind === 'position' || kind === 'cursor' ? this.#pool('', kind) : own;
    const pool = own.length > 0 ? own : global;
    if (pool.length > 0) return pool[pick % pool.length]!;
    return kind === 'position' ? '0.0' : kind === 'cursor' ? '' : `${idPrefixes[kind]}_none`;
  }

  /** JSON text for a body value, Specials written out. */
  #json(value: unknown, programId: string): string {
    if (isSpecial(value)) {
      switch (value.wire) {
        case 'raw':
          return value.text;
        case 'long':
          return JSON.stringify(value.unit.repeat(value.count));
        case 'many': {
          const item = this.#json(value.item, programId);
          return `[${Array<string>(value.count).fill(item).join(',')}]`;
        }
        case 'wide': {
          const item = this.#json(value.value, programId);
          return `{${Array.from({ length: value.count }, (_, i) => `"k${i}":${item}`).join(',')}}`;
        }
        case 'nested': {
          const [open, close] = value.as === 'array' ? ['[', ']'] : ['{"a":', '}'];
          return `${open.repeat(value.depth)}${this.#json(value.inner, programId)}${close.repeat(value.depth)}`;
        }
        case 'known':
          return JSON.stringify(this.#resolve(value.kind, value.pick, programId));
        case 'bytes':
          throw new Error('bytes stand only for a whole body');
      }
    }
    if (Array.isArray(value))
      return `[${value.map((item) => this.#json(item, programId)).join(',')}]`;
    if (typeof value === 'object' && value !== null)
      return `{${Object.entries(value)
        .map(([k, v]) => `${JSON.stringify(k)}:${this.#json(v, programId)}`)
        .join(',')}}`;
    return JSON.stringify(value);
  }

  #token(token: Token, programId: string): string {
    return isSpecial(token) && token.wire === 'known'
      ? encodeURIComponent(this.#resolve(token.kind, token.pick, programId))
      : encode(token);
  }

  /** The request a case stands for, with the values it names looked up now. */
  render(c: FuzzCase): WireRequest {
    const template = c.operation.slice(c.operation.indexOf(' ') + 1);
    const program = c.params.programId;
    const programId =
      program === undefined
        ? (this.#primary ?? '')
        : isSpecial(program) && program.wire === 'known'
          ? this.#resolve('program', program.pick, '')
          : typeof program === 'string'
            ? program
            : '';
    const path = template.replace(/\{(\w+)\}/g, (_, name: string) => {
      const token = c.params[name];
      if (token === undefined) throw new Error(`no value for {${name}}`);
      return name === 'programId' && isSpecial(token) && token.wire === 'known'
        ? encodeURIComponent(programId)
        : this.#token(token, programId);
    });
    const query = c.query
      .map(([k, v]) => `${this.#token(k, programId)}=${this.#token(v, programId)}`)
      .join('&');
    const headers: Record<string, string> = { authorization: `Bearer ${this.#key}` };
    let body: string | Buffer | undefined;
    if (c.body !== undefined) {
      body =
        isSpecial(c.body) && c.body.wire === 'bytes'
          ? Buffer.from(c.body.hex, 'hex')
          : this.#json(c.body, programId);
      if (c.contentType !== null) headers['content-type'] = c.contentType ?? 'application/json';
      if (c.contentEncoding) {
        headers['content-encoding'] = c.contentEncoding.name;
        const compress = compressors[c.contentEncoding.name];
        if (c.contentEncoding.compressed && compress) body = compress(body);
      }
    }
    if (c.requestId !== undefined) headers['x-request-id'] = c.requestId;
    if (c.idempotencyKey !== undefined) {
      const key = c.idempotencyKey;
      headers['idempotency-key'] =
        typeof key === 'string' ? key : key.wire === 'long' ? key.unit.repeat(key.count) : '';
    }
    return {
      operation: c.operation,
      method: c.method,
      path: query ? `${path}?${query}` : path,
      headers,
      ...(body !== undefined && { body }),
    };
  }

  /** Sends one request as it is (authorization and all) and reads the whole answer. */
  async send(request: WireRequest): Promise<WireResponse> {
    const requestId = `fz${this.#run}-${++this.#seq}`;
    const response = await this.#client.request({
      method: request.method,
      path: request.path,
      headers: { 'x-request-id': requestId, ...request.headers },
      ...(request.body !== undefined && { body: request.body }),
    });
    const header = (name: string) => {
      const value = response.headers[name];
      return Array.isArray(value) ? value.join(', ') : (value ?? '');
    };
    // A live stream (the webhook event stream) never ends: its status and first event are the
    // answer; the connection is closed after them.
    const text = header('content-type').startsWith('text/event-stream')
      ? await firstChunk(response.body)
      : await response.body.text();
    return {
      status: response.statusCode,
      contentType: header('content-type'),
      text,
      requestId: header('x-request-id'),
      retryAfter: header('retry-after'),
    };
  }

  /**
   * Sends requests at once, each on a connection of its own, and checks every answer: below 500;
   * a 4xx carries `{error: {code, message}}` (and `field` when it names one) and recorded no event
   * under its request id, looked up once the whole batch is answered. A 2xx is remembered: what it
   * names may be used by later cases.
   */
  async checkAll(requests: readonly WireRequest[]): Promise<Verdict[]> {
    const verdicts = await Promise.all(
      requests.map(async (request): Promise<Verdict> => {
        const startedMs = performance.now();
        const response = await this.send(request);
        const { msByRoute } = this.stats;
        msByRoute.set(
          request.operation,
          (msByRoute.get(request.operation) ?? 0) + performance.now() - startedMs,
        );
        return { response, problems: [] };
      }),
    );
    const refused: string[] = [];
    verdicts.forEach(({ response, problems }, i) => {
      const request = requests[i]!;
      const { status } = response;
      this.stats.cases++;
      bump(this.stats.byStatus, status);
      let perRoute = this.stats.byRoute.get(request.operation);
      if (!perRoute)
        this.stats.byRoute.set(request.operation, (perRoute = new Map<number, number>()));
      bump(perRoute, status);
      // A documented "retry shortly" (a close-period waiting on a lagging policy reactor, a pool
      // that does not keep up, a statement of events the audit tree has not reached) is not a
      // failure of input handling; any other 5xx is. An answer to HEAD carries no body to name
      // its code: a 503 with Retry-After and a JSON content type is the same wait.
      const retryLater =
        status === 503 &&
        response.retryAfter !== '' &&
        (request.method === 'HEAD'
          ? /^application\/json/.test(response.contentType)
          : /"code":"(scores_pending|overloaded|not_yet_in_tree)"/.test(response.text));
      if (retryLater) bump(this.stats.byCode, `503 retry later`);
      else if (status >= 500 || status < 200) problems.push(`answered ${status}`);
      if (status >= 200 && status < 300) {
        this.#accepted.add(response.requestId);
        this.#learn(request, response);
      }
      if (status >= 400 && status < 500) {
        this.#refused.set(
          response.requestId,
          `${request.method} ${request.path.slice(0, 300)} -> ${status}`,
        );
        bump(this.stats.byCode, `${status} ${this.#errorShape(request, response, problems)}`);
        refused.push(response.requestId);
      }
    });
    const recorded = await this.#eventsOf(refused);
    for (const { response, problems } of verdicts) {
      const n = recorded.get(response.requestId);
      if (n) problems.push(`a refused request recorded ${n} event(s)`);
    }
    return verdicts;
  }

  /** Sends and checks one request (see `checkAll`). */
  async check(request: WireRequest): Promise<Verdict> {
    return (await this.checkAll([request]))[0]!;
  }

  /** Renders, sends and checks cases at once (see `checkAll`). */
  async run(cases: readonly FuzzCase[]): Promise<(Verdict & { request: WireRequest })[]> {
    const requests = cases.map((c) => this.render(c));
    const verdicts = await this.checkAll(requests);
    return verdicts.map((verdict, i) => ({ request: requests[i]!, ...verdict }));
  }

  #errorShape(request: WireRequest, response: WireResponse, problems: string[]): string {
    if (!/^application\/json/.test(response.contentType)) {
      problems.push(`a ${response.status} came as ${response.contentType || 'no content type'}`);
      return '(not json)';
    }
    // An answer to HEAD has no body (RFC 9110 §9.3.2): its headers are all there is to check.
    if (request.method === 'HEAD') return '(head)';
    let body: unknown;
    try {
      body = JSON.parse(response.text);
    } catch {
      problems.push(`a ${response.status} body is not JSON`);
      return '(not json)';
    }
    const error = (body as { error?: unknown } | null)?.error as
      Record<string, unknown> | undefined;
    const keys = typeof body === 'object' && body !== null ? Object.keys(body) : [];
    if (
      keys.length !== 1 ||
      typeof error !== 'object' ||
      error === null ||
      typeof error.code !== 'string' ||
      error.code === '' ||
      typeof error.message !== 'string' ||
      (error.field !== undefined && typeof error.field !== 'string') ||
      Object.keys(error).some(
        (k) =>
          k !== 'code' &&
          k !== 'message' &&
          k !== 'field' &&
          // docs/api.md: member_exists names the member that has the email or external id.
          !(k === 'member_id' && error.code === 'member_exists' && typeof error[k] === 'string'),
      )
    ) {
      problems.push(`a ${response.status} body is not {error: {code, message, field?}}`);
      return '(bad shape)';
    }
    return error.code;
  }

  /** Events recorded under each of these request ids, for those that have any. */
  async #eventsOf(requestIds: readonly string[]): Promise<Map<string, number>> {
    if (requestIds.length === 0) return new Map();
    const result = await sql<{ id: string; n: number }>`
      select metadata->>'correlationId' as id, ${keptEvents} as n from incentable_events
      where metadata->>'correlationId' = any(${[...requestIds]}::text[]) group by 1`.execute(
      this.#runtime.database.db,
    );
    return new Map(result.rows.filter((row) => row.n > 0).map((row) => [row.id, row.n]));
  }

  #learn(request: WireRequest, response: WireResponse): void {
    if (!/^application\/json/.test(response.contentType)) return;
    const programId = /^\/v1\/programs\/(prg_[A-Za-z0-9]+)/.exec(request.path)?.[1] ?? '';
    const walk = (value: unknown, key: string, depth: number): void => {
      if (depth > 4) return;
      if (typeof value === 'string') {
        if (key === 'position' || key === 'next_position') this.#remember('', 'position', value);
        else if (key === 'next_cursor') this.#remember('', 'cursor', value);
        else if (idPattern.test(value)) {
          const kind = kindOfPrefix.get(value.slice(0, value.indexOf('_')))!;
          this.#remember(kind === 'program' ? value : programId, kind, value);
        }
      } else if (Array.isArray(value))
        value.slice(0, 20).forEach((item) => walk(item, key, depth + 1));
      else if (typeof value === 'object' && value !== null)
        for (const [k, v] of Object.entries(value)) walk(v, k, depth + 1);
    };
    try {
      walk(JSON.parse(response.text), '', 0);
    } catch {
      // A 2xx that is not JSON teaches nothing (audit/verify streams NDJSON).
    }
  }

  /**
   * Once the subscriptions have caught up: every event in the store carries the request id of a
   * request answered 2xx (events the policy reactor records keep the id of the request that caused
   * them). So no refused request recorded one, also later or under another id. Returns what is
   * wrong, naming the requests.
   */
  async unattributedEvents(): Promise<string[]> {
    await settle(this.#runtime);
    const result = await sql<{ id: string | null; n: number }>`
      select metadata->>'correlationId' as id, ${keptEvents} as n from incentable_events group by 1`.execute(
      this.#runtime.database.db,
    );
    return result.rows
      .filter((row) => row.n > 0 && (row.id === null || !this.#accepted.has(row.id)))
      .map(
        (row) =>
          `${row.n} event(s) under ${row.id}: ${this.#refused.get(row.id ?? '') ?? 'no request of this run'}`,
      );
  }

  /** Events in the store now. */
  async eventCount(): Promise<number> {
    const result = await sql<{
      n: number;
    }>`select count(*)::int as n from incentable_events`.execute(this.#runtime.database.db);
    return result.rows[0]!.n;
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}

/** A request of the fixtures, sent and checked like a case; throws unless it is accepted. */
const accept = async (fuzzer: Fuzzer, key: string, method: string, path: string, body?: object) => {
  const verdict = await fuzzer.check({
    operation: 'fixtures',
    method,
    path,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body && { 'content-type': 'application/json' }),
    },
    ...(body && { body: JSON.stringify(body) }),
  });
  const { status, text } = verdict.response;
  if (status < 200 || status >= 300)
    throw new Error(`fixture ${method} ${path}: ${status} ${text.slice(0, 300)}`);
  return JSON.parse(text || '{}') as { id?: string; delivery_id?: string };
};

/**
 * Two programs, the first with what every route names: members with points, rewards of both kinds,
 * orders (one shipped), a leaderboard, a webhook endpoint (loopback; nothing delivers) with a test
 * delivery, and a program key. Sent through the fuzzer, so it remembers every id; the first becomes
 * the program cases name most. A run seeds again every `roundCases` cases: the fuzz deactivates
 * members and cancels orders, and audit/verify and replay read the program's whole history, so a
 * program kept for the whole run would answer ever more 422s, ever more slowly.
 */
export const seedFixtures = async (fuzzer: Fuzzer, rootKey: string): Promise<void> => {
  const program = {
    name: 'Fuzz',
    tiers: [
      { name: 'Bronze', min_points: 0 },
      { name: 'Gold', min_points: 500 },
    ],
    notification_email: 'ops@example.com',
  };
  const a = (await accept(fuzzer, rootKey, 'POST', '/v1/programs', program)).id!;
  fuzzer.primary = a;
  await accept(fuzzer, rootKey, 'POST', '/v1/programs', { ...program, name: 'Other' });
  const p = (path: string) => `/v1/programs/${a}${path}`;
  const members: string[] = [];
  for (let i = 0; i < 3; i++) {
    const member = (
      await accept(fuzzer, rootKey, 'POST', p('/members'), {
        email: `m${i}@example.com`,
        name: `Member ${i}`,
      })
    ).id!;
    await accept(fuzzer, rootKey, 'POST', p(`/members/${member}/points/award`), {
      points: 100_000,
      reason: 'seed',
    });
    members.push(member);
  }
  const physical = (
    await accept(fuzzer, rootKey, 'POST', p('/rewards'), {
      name: 'Mug',
      points_cost: 10,
      stock: 1_000,
      kind: 'physical',
    })
  ).id!;
  await accept(fuzzer, rootKey, 'POST', p('/rewards'), {
    name: 'Code',
    points_cost: 5,
    kind: 'digital',
  });
  for (const member of members) {
    const order = (
      await accept(fuzzer, rootKey, 'POST', p(`/members/${member}/redemptions`), {
        reward_id: physical,
      })
    ).id!;
    if (member === members[0])
      await accept(fuzzer, rootKey, 'POST', p(`/orders/${order}/ship`), {
        carrier: 'DHL',
        tracking_number: '1',
      });
  }
  await accept(fuzzer, rootKey, 'POST', p('/leaderboards'), { name: 'Top', period: 'weekly' });
  const endpoint = (
    await accept(fuzzer, rootKey, 'POST', p('/webhook-endpoints'), {
      url: 'http://127.0.0.1:9/fuzz',
      events: ['*'],
    })
  ).id!;
  await accept(fuzzer, rootKey, 'POST', p(`/webhook-endpoints/${endpoint}/test`), {
    type: 'points.awarded',
  });
  await accept(fuzzer, rootKey, 'POST', p('/api-keys'), { label: 'fuzz' });
};

/** Cases between two seedings of fresh fixtures (see `seedFixtures`). */
export const roundCases = 2_000;

/** Configuration for the app under fuzz (see startTestApp's `env`). */
export const fuzzAppEnv = {
  // No delivery worker: nothing the fuzz creates is ever called. Read waits short, since a fuzzed
  // position may lie in the future and is waited for until this bound.
  ROLES: 'api,projector',
  READ_WAIT_TIMEOUT_MS: '100',
};

/** Counts by status and route, for the test's diagnostics and the bench. */
export const formatStats = (stats: FuzzStats): string[] => {
  const lines: string[] = [];
  const statuses = [...stats.byStatus.entries()].sort(([a], [b]) => a - b);
  lines.push(`cases: ${stats.cases}`);
  lines.push(`by status: ${statuses.map(([s, n]) => `${s}: ${n}`).join(', ')}`);
  lines.push(
    `by code: ${[...stats.byCode.entries()]
      .sort(([, a], [, b]) => b - a)
      .map(([c, n]) => `${c}: ${n}`)
      .join(', ')}`,
  );
  for (const [route, counts] of [...stats.byRoute.entries()].sort(([a], [b]) => a.localeCompare(b)))
    lines.push(
      `${route} (${Math.round(stats.msByRoute.get(route) ?? 0)} ms): ${[...counts.entries()]
        .sort(([a], [b]) => a - b)
        .map(([s, n]) => `${s}: ${n}`)
        .join(', ')}`,
    );
  return lines;
};

/** The first chunk of a body that does not end, as text; the body is destroyed after it. */
const firstChunk = async (body: AsyncIterable<Buffer> & { destroy: () => void }) => {
  let text = '';
  for await (const chunk of body) {
    text = chunk.toString('utf8');
    break;
  }
  body.destroy();
  return text;
};
