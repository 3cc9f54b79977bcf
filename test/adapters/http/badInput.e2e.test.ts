import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import {
  award,
  createMember,
  createProgram,
  createReward,
  eventCount,
  expectStatus,
  settle,
  startTestApp,
  type Api,
  type LedgerRow,
  type MemberView,
  type Movement,
  type Page,
  type Redemption,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';
import { dashboardClient } from '../dashboard/dashboardClient.ts';

/** The ids of the fixtures every endpoint's path is built from. */
type Ids = { program: string; member: string; reward: string; order: string; leaderboard: string };

type PathParam = {
  /** The key in Ids, and the route's parameter name (`${key}Id`). */
  key: keyof Ids;
  prefix: string;
  /** The refusal a well-formed id that names nothing gets. */
  notFound: string;
};

type Endpoint = {
  name: string;
  method: 'POST' | 'PATCH';
  path: (ids: Ids) => string;
  params: PathParam[];
  /** A body the endpoint accepts; every case changes one thing in it. */
  valid: (ids: Ids) => Record<string, unknown>;
  required: string[];
  /** Fields holding free text: length, control characters and blank checks apply. */
  text: string[];
  /** Numeric fields with values outside their range (besides the universal ones below). */
  numbers: { field: string; min: number }[];
  enums: string[];
};

const program: PathParam = { key: 'program', prefix: 'prg', notFound: 'program_not_found' };
const member: PathParam = { key: 'member', prefix: 'mem', notFound: 'member_not_found' };
const reward: PathParam = { key: 'reward', prefix: 'rwd', notFound: 'reward_not_found' };
const order: PathParam = { key: 'order', prefix: 'ord', notFound: 'order_not_found' };
const leaderboard: PathParam = {
  key: 'leaderboard',
  prefix: 'lb',
  notFound: 'leaderboard_not_found',
};

const endpoints: Endpoint[] = [
  {
    name: 'POST /programs',
    method: 'POST',
    path: () => '/v1/programs',
    params: [],
    valid: () => ({
      name: 'Program',
      tiers: [{ name: 'Gold', min_points: 100 }],
      tier_basis: 'lifetime',
      points_expiry_days: 30,
      timezone: 'UTC',
      notification_email: 'ops@example.com',
    }),
    required: ['name', 'notification_email'],
    text: ['name', 'timezone', 'notification_email'],
    numbers: [{ field: 'points_expiry_days', min: 1 }],
    enums: ['tier_basis'],
  },
  {
    name: 'PATCH /programs/:programId',
    method: 'PATCH',
    path: (ids) => `/v1/programs/${ids.program}`,
    params: [program],
    valid: () => ({
      name: 'Renamed',
      tiers: [{ name: 'Gold', min_points: 100 }],
      tier_basis: 'balance',
      points_expiry_days: 60,
      timezone: 'Europe/Berlin',
      notification_email: 'new@example.com',
    }),
    required: [],
    text: ['name', 'timezone', 'notification_email'],
    numbers: [{ field: 'points_expiry_days', min: 1 }],
    enums: ['tier_basis'],
  },
  {
    name: 'POST /programs/:programId/api-keys',
    method: 'POST',
    path: (ids) => `/v1/programs/${ids.program}/api-keys`,
    params: [program],
    valid: () => ({ label: 'backend' }),
    required: [],
    text: ['label'],
    numbers: [],
    enums: [],
  },
  {
    name: 'POST /members',
    method: 'POST',
    path: (ids) => `/v1/programs/${ids.program}/members`,
    params: [program],
    valid: () => ({
      email: 'new@example.com',
      name: 'New Member',
      external_id: 'crm-1',
      attributes: { plan: 'pro' },
    }),
    required: ['email', 'name'],
    text: ['email', 'name', 'external_id'],
    numbers: [],
    enums: [],
  },
  {
    name: 'PATCH /members/:memberId',
    method: 'PATCH',
    path: (ids) => `/v1/programs/${ids.program}/members/${ids.member}`,
    params: [program, member],
    valid: () => ({
      email: 'changed@example.com',
      name: 'Changed',
      external_id: 'crm-2',
      attributes: { plan: 'team' },
    }),
    required: [],
    text: ['email', 'name', 'external_id'],
    numbers: [],
    enums: [],
  },
  {
    name: 'POST /members/:memberId/deactivate',
    method: 'POST',
    path: (ids) => `/v1/programs/${ids.program}/members/${ids.member}/deactivate`,
    params: [program, member],
    valid: () => ({}),
    required: [],
    text: [],
    numbers: [],
    enums: [],
  },
  ...(['award', 'deduct'] as const).map((direction): Endpoint => ({
    name: `POST /members/:memberId/points/${direction}`,
    method: 'POST',
    path: (ids) => `/v1/programs/${ids.program}/members/${ids.member}/points/${direction}`,
    params: [program, member],
    valid: () => ({ points: 10, reason: 'Purchase', reference: 'order-1' }),
    required: ['points', 'reason'],
    text: ['reason', 'reference'],
    numbers: [{ field: 'points', min: 1 }],
    enums: [],
  })),
  {
    name: 'POST /rewards',
    method: 'POST',
    path: (ids) => `/v1/programs/${ids.program}/rewards`,
    params: [program],
    valid: () => ({ name: 'Mug', points_cost: 100, stock: 5, kind: 'physical' }),
    required: ['name', 'points_cost', 'kind'],
    text: ['name'],
    numbers: [
      { field: 'points_cost', min: 1 },
      { field: 'stock', min: 0 },
    ],
    enums: ['kind'],
  },
  {
    name: 'PATCH /rewards/:rewardId',
    method: 'PATCH',
    path: (ids) => `/v1/programs/${ids.program}/rewards/${ids.reward}`,
    params: [program, reward],
    valid: () => ({ name: 'Cup', points_cost: 50, stock: 3, active: true }),
    required: [],
    text: ['name'],
    numbers: [
      { field: 'points_cost', min: 1 },
      { field: 'stock', min: 0 },
    ],
    enums: [],
  },
  {
    name: 'POST /members/:memberId/redemptions',
    method: 'POST',
    path: (ids) => `/v1/programs/${ids.program}/members/${ids.member}/redemptions`,
    params: [program, member],
    valid: (ids) => ({ reward_id: ids.reward }),
    required: ['reward_id'],
    text: ['reward_id'],
    numbers: [],
    enums: [],
  },
  {
    name: 'POST /orders/:orderId/ship',
    method: 'POST',
    path: (ids) => `/v1/programs/${ids.program}/orders/${ids.order}/ship`,
    params: [program, order],
    valid: () => ({ carrier: 'DHL', tracking_number: 'JD01' }),
    required: ['carrier', 'tracking_number'],
    text: ['carrier', 'tracking_number'],
    numbers: [],
    enums: [],
  },
  {
    name: 'POST /orders/:orderId/deliver',
    method: 'POST',
    path: (ids) => `/v1/programs/${ids.program}/orders/${ids.order}/deliver`,
    params: [program, order],
    valid: () => ({}),
    required: [],
    text: [],
    numbers: [],
    enums: [],
  },
  {
    name: 'POST /orders/:orderId/cancel',
    method: 'POST',
    path: (ids) => `/v1/programs/${ids.program}/orders/${ids.order}/cancel`,
    params: [program, order],
    valid: () => ({ reason: 'Out of stock at the warehouse' }),
    required: [],
    text: ['reason'],
    numbers: [],
    enums: [],
  },
  {
    name: 'POST /leaderboards',
    method: 'POST',
    path: (ids) => `/v1/programs/${ids.program}/leaderboards`,
    params: [program],
    valid: () => ({ name: 'Top', period: 'weekly' }),
    required: ['name', 'period'],
    text: ['name'],
    numbers: [],
    enums: ['period'],
  },
  {
    name: 'POST /leaderboards/:leaderboardId/close-period',
    method: 'POST',
    path: (ids) => `/v1/programs/${ids.program}/leaderboards/${ids.leaderboard}/close-period`,
    params: [program, leaderboard],
    valid: () => ({}),
    required: [],
    text: [],
    numbers: [],
    enums: [],
  },
];

type Expected = { status: number; code: string | string[]; field?: string };
type Case = {
  name: string;
  /** The path to call; defaults to the endpoint's path with the fixture ids. */
  path?: (ids: Ids) => string;
  body?: (ids: Ids) => unknown;
  raw?: (ids: Ids) => string | Uint8Array;
  headers?: Record<string, string>;
  expect: Expected;
};

const invalid = (field: string): Expected => ({ status: 400, code: 'validation_error', field });
const withField = (base: Record<string, unknown>, field: string, value: unknown) => ({
  ...base,
  [field]: value,
});
const without = (base: Record<string, unknown>, field: string) =>
  Object.fromEntries(Object.entries(base).filter(([key]) => key !== field));
/** A JSON text with `literal` (not expressible in JSON.stringify) as the value of `field`. */
const rawWith = (base: Record<string, unknown>, field: string, literal: string) =>
  JSON.stringify(withField(base, field, '__LITERAL__')).replace('"__LITERAL__"', literal);

/** `rawWith`, then the marker `__BYTES__` inside the literal replaced by `bytes`. */
const bytesWith = (base: Record<string, unknown>, field: string, bytes: number[]): Uint8Array => {
  const [head = '', tail = ''] = rawWith(base, field, '"a__BYTES__b"').split('__BYTES__');
  return Buffer.concat([Buffer.from(head), Buffer.from(bytes), Buffer.from(tail)]);
};

/** The endpoint's name as Idempotency-Key text (visible ASCII, no spaces). */
const keyOf = (endpoint: Endpoint): string => endpoint.name.replace(/[^\w/:-]+/g, '-');

/** `depth` arrays inside one another around a number: `[[[1]]]` is 3. */
const nested = (depth: number): string => `${'['.repeat(depth)}1${']'.repeat(depth)}`;

const wrongTypesFor = (value: unknown): unknown[] => {
  if (typeof value === 'string') return [12345, true, {}, ['a']];
  if (typeof value === 'number') return ['12', true, [], {}];
  if (typeof value === 'boolean') return ['true', 1, null];
  if (Array.isArray(value)) return [{}, 'Gold', 1];
  return [[], 'x', 1];
};

const twoMegabytes = 'x'.repeat(2 * 1024 * 1024);

const casesFor = (endpoint: Endpoint): Case[] => {
  const cases: Case[] = [];
  const valid = endpoint.valid;

  cases.push(
    {
      name: 'malformed JSON',
      raw: () => '{"name": "x",',
      expect: { status: 400, code: 'malformed_json' },
    },
    { name: 'a truncated body', raw: () => '{', expect: { status: 400, code: 'malformed_json' } },
    {
      name: 'a JSON string as body',
      raw: () => '"hello"',
      expect: { status: 400, code: 'malformed_json' },
    },
    { name: 'null as body', raw: () => 'null', expect: { status: 400, code: 'malformed_json' } },
    {
      name: 'an array as body',
      body: () => [valid],
      expect: { status: 400, code: 'validation_error' },
    },
    {
      name: 'an unknown field',
      body: (ids) => withField(valid(ids), 'surprise', 1),
      expect: invalid('surprise'),
    },
    {
      name: 'a __proto__ field',
      raw: (ids) => {
        const rest = JSON.stringify(valid(ids)).slice(1);
        return `{"__proto__": {"admin": true}${rest === '}' ? '' : ','}${rest}`;
      },
      expect: { status: 400, code: 'validation_error' },
    },
    {
      name: 'a 2 MB body',
      body: (ids) => withField(valid(ids), 'padding', twoMegabytes),
      expect: { status: 413, code: 'payload_too_large' },
    },
    {
      name: 'a text/plain body',
      raw: (ids) => JSON.stringify(valid(ids)),
      headers: { 'content-type': 'text/plain' },
      expect: { status: 415, code: 'unsupported_media_type' },
    },
    {
      name: 'a form-encoded body',
      raw: () => 'name=x&points=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      expect: { status: 415, code: 'unsupported_media_type' },
    },
    {
      name: 'JSON in an unsupported charset',
      raw: (ids) => JSON.stringify(valid(ids)),
      headers: { 'content-type': 'application/json; charset=latin1' },
      expect: { status: 415, code: 'unsupported_media_type' },
    },
  );
  // Idempotency-Key applies to POST only; PATCH ignores the header.
  if (endpoint.method === 'POST') {
    cases.push({
      name: 'a malformed Idempotency-Key',
      body: valid,
      headers: { 'idempotency-key': 'has spaces in it' },
      expect: invalid('Idempotency-Key'),
    });
  }
  // Hashing the body for an Idempotency-Key once recursed through it (a RangeError, a 500).
  for (const depth of [33, 10_000, 400_000]) {
    cases.push({
      name: `JSON nested ${depth} deep with an Idempotency-Key`,
      raw: (ids) => rawWith(valid(ids), 'deep', nested(depth)),
      headers: { 'idempotency-key': `deep-${keyOf(endpoint)}-${depth}` },
      expect: { status: 400, code: 'validation_error', field: `deep${'.0'.repeat(31)}` },
    });
  }
  cases.push(
    {
      name: 'an unknown field whose name holds a lone surrogate',
      raw: (ids) => rawWith(valid(ids), 'x', '1').replace('"x"', '"x\\ud800"'),
      headers: { 'idempotency-key': `surrogate-key-${keyOf(endpoint)}` },
      expect: invalid('x\\ud800'),
    },
    {
      name: 'an unknown field whose name holds NUL',
      raw: (ids) => rawWith(valid(ids), 'x', '1').replace('"x"', '"x\\u0000"'),
      expect: invalid('x\\u0000'),
    },
    {
      name: 'an unknown field whose name holds invalid UTF-8',
      raw: (ids) => {
        const [head = '', tail = ''] = rawWith(valid(ids), 'x__BYTES__', '1').split('__BYTES__');
        return Buffer.concat([Buffer.from(head), Buffer.from([0xff]), Buffer.from(tail)]);
      },
      expect: invalid('x\ufffd'),
    },
    {
      name: 'a constructor field',
      raw: (ids) => rawWith(valid(ids), 'constructor', '{"admin": true}'),
      expect: invalid('constructor'),
    },
    {
      name: 'JSON in UTF-16',
      raw: (ids) => Buffer.from(JSON.stringify(valid(ids)), 'utf16le'),
      headers: { 'content-type': 'application/json; charset=utf-16le' },
      expect: { status: 415, code: 'unsupported_media_type' },
    },
  );

  for (const field of endpoint.required) {
    cases.push({
      name: `missing ${field}`,
      body: (ids) => without(valid(ids), field),
      expect: invalid(field),
    });
  }

  for (const [field, value] of Object.entries(valid(fakeIds))) {
    for (const wrong of wrongTypesFor(value)) {
      cases.push({
        name: `${field} as ${JSON.stringify(wrong)}`,
        body: (ids) => withField(valid(ids), field, wrong),
        expect: invalid(field),
      });
    }
  }

  for (const field of endpoint.enums) {
    cases.push({
      name: `${field} outside its values`,
      body: (ids) => withField(valid(ids), field, 'sometimes'),
      expect: invalid(field),
    });
  }

  for (const { field, min } of endpoint.numbers) {
    const outOfRange = [...new Set([min - 1, -1, -0.5, 0.5, 1.5, 1e10, 1e308, -1e308])];
    for (const number of outOfRange) {
      cases.push({
        name: `${field} = ${number}`,
        body: (ids) => withField(valid(ids), field, number),
        expect: invalid(field),
      });
    }
    cases.push({
      name: `${field} = 1e999 (Infinity once parsed)`,
      raw: (ids) => rawWith(valid(ids), field, '1e999'),
      expect: invalid(field),
    });
    cases.push({
      name: `${field} = 2^53 + 1`,
      raw: (ids) => rawWith(valid(ids), field, '9007199254740993'),
      expect: invalid(field),
    });
  }

  for (const field of endpoint.text) {
    const values: [string, string][] = [
      ['10 kB long', 'a'.repeat(10_240)],
      ['empty', ''],
      ['blank', '   '],
      ['holding NUL', 'bad\u0000value'],
      ['holding BEL', 'bad\u0007value'],
      ['holding a newline', 'two\nlines'],
      ['holding DEL', 'bad\u007fvalue'],
      // JSON.stringify writes these as \ud800 escapes; JSON.parse gives them back unpaired.
      ['holding a lone high surrogate', 'a\ud800b'],
      ['holding a lone low surrogate', 'a\udc00b'],
      ['holding a surrogate pair in the wrong order', '\udc00\ud800'],
    ];
    for (const [what, value] of values) {
      cases.push({
        name: `${field} ${what}`,
        body: (ids) => withField(valid(ids), field, value),
        expect: invalid(field),
      });
    }
    for (const [what, bytes] of [
      ['a byte that is never UTF-8 (0xFF)', [0xff]],
      ['a truncated sequence (0xE2 0x82)', [0xe2, 0x82]],
      ['an overlong NUL (0xC0 0x80)', [0xc0, 0x80]],
      ['an encoded surrogate (0xED 0xA0 0x80)', [0xed, 0xa0, 0x80]],
    ] as const) {
      cases.push({
        name: `${field} holding ${what}`,
        raw: (ids) => bytesWith(valid(ids), field, [...bytes]),
        expect: invalid(field),
      });
    }
  }

  if ('tiers' in valid(fakeIds)) {
    for (const [what, tiers, field] of [
      ['a negative tier threshold', [{ name: 'Gold', min_points: -1 }], 'tiers.0.min_points'],
      ['a fractional tier threshold', [{ name: 'Gold', min_points: 0.5 }], 'tiers.0.min_points'],
      ['a 1e308 tier threshold', [{ name: 'Gold', min_points: 1e308 }], 'tiers.0.min_points'],
      ['a tier without a name', [{ min_points: 1 }], 'tiers.0.name'],
      [
        'a tier with an unknown field',
        [{ name: 'Gold', min_points: 1, color: 'gold' }],
        'tiers.0.color',
      ],
      ['a tier name holding NUL', [{ name: 'Go\u0000ld', min_points: 1 }], 'tiers.0.name'],
      [
        'a tier name holding a lone surrogate',
        [{ name: 'Go\ud800ld', min_points: 1 }],
        'tiers.0.name',
      ],
    ] as const) {
      cases.push({
        name: what,
        body: (ids) => withField(valid(ids), 'tiers', tiers),
        expect: invalid(field),
      });
    }
    cases.push(
      {
        name: 'tiers whose thresholds do not increase',
        body: (ids) =>
          withField(valid(ids), 'tiers', [
            { name: 'Gold', min_points: 100 },
            { name: 'Silver', min_points: 50 },
          ]),
        expect: { status: 400, code: 'invalid_tiers', field: 'tiers' },
      },
      {
        name: 'tiers with a repeated name',
        body: (ids) =>
          withField(valid(ids), 'tiers', [
            { name: 'Gold', min_points: 1 },
            { name: 'Gold', min_points: 2 },
          ]),
        expect: { status: 400, code: 'invalid_tiers', field: 'tiers' },
      },
      {
        name: 'an unknown timezone',
        body: (ids) => withField(valid(ids), 'timezone', 'Mars/Olympus_Mons'),
        expect: { status: 400, code: 'invalid_timezone', field: 'timezone' },
      },
    );
  }

  if ('attributes' in valid(fakeIds)) {
    for (const [what, attributes, field] of [
      ['an attribute of 10 kB', { blob: 'a'.repeat(10_240) }, 'attributes.blob'],
      ['a nested attribute', { nested: { a: 1 } }, 'attributes.nested'],
      ['an attribute list', { list: [1, 2] }, 'attributes.list'],
      ['an attribute holding NUL', { note: 'a\u0000b' }, 'attributes.note'],
      ['an attribute with an empty key', { '': 1 }, 'attributes.'],
      ['an attribute holding a lone surrogate', { note: 'a\ud800' }, 'attributes.note'],
      ['an attribute key holding a lone surrogate', { 'k\udc00': 1 }, 'attributes.k\\udc00'],
      ['an attribute key holding NUL', { 'k\u0000': 1 }, 'attributes.k\\u0000'],
      // A computed key makes an own property, as JSON.parse does, instead of setting the prototype.
      ['an attribute named __proto__', { ['__proto__']: 'x' }, 'attributes.__proto__'],
      ['an attribute named constructor', { constructor: 'x' }, 'attributes.constructor'],
      ['an attribute named prototype', { prototype: 'x' }, 'attributes.prototype'],
      [
        '51 attributes',
        Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i])),
        'attributes',
      ],
    ] as const) {
      cases.push({
        name: what,
        body: (ids) => withField(valid(ids), 'attributes', attributes),
        expect: invalid(field),
      });
    }
  }

  if ('email' in valid(fakeIds) || 'notification_email' in valid(fakeIds)) {
    const field = 'email' in valid(fakeIds) ? 'email' : 'notification_email';
    for (const email of [
      'plainaddress',
      '@example.com',
      'a@',
      'a b@example.com',
      `${'a'.repeat(250)}@example.com`,
    ]) {
      cases.push({
        name: `${field} ${JSON.stringify(email.slice(0, 30))}`,
        body: (ids) => withField(valid(ids), field, email),
        expect: invalid(field),
      });
    }
  }

  if ('reward_id' in valid(fakeIds)) {
    cases.push(
      {
        name: 'a malformed reward_id',
        body: () => ({ reward_id: 'rwd_!!' }),
        expect: invalid('reward_id'),
      },
      {
        name: 'a reward_id of another kind',
        body: (ids) => ({ reward_id: ids.member }),
        expect: invalid('reward_id'),
      },
      {
        name: 'a well-formed reward_id that names nothing',
        body: () => ({ reward_id: `rwd_${'0'.repeat(20)}` }),
        expect: { status: 404, code: 'reward_not_found', field: 'reward_id' },
      },
    );
  }

  for (const param of endpoint.params) {
    const replaced = (ids: Ids, value: string) => endpoint.path({ ...ids, [param.key]: value });
    const name = `${param.key}Id`;
    cases.push({
      name: `a well-formed ${name} that names nothing`,
      path: (ids) => replaced(ids, `${param.prefix}_${'0'.repeat(20)}`),
      body: valid,
      expect: { status: 404, code: param.notFound },
    });
    for (const [what, value] of [
      ['"<prefix>_!!"', `${param.prefix}_!!`],
      ['"../x" (encoded)', encodeURIComponent('../x')],
      ['"<prefix>_" plus NUL', `${param.prefix}_%00`],
      ['an id of 65 characters', `${param.prefix}_${'a'.repeat(65)}`],
      ['an id with the wrong prefix', `xyz_${'0'.repeat(20)}`],
      ['a SQL fragment', encodeURIComponent(`${param.prefix}_1' or '1'='1`)],
    ] as const) {
      cases.push({
        name: `${name} ${what}`,
        path: (ids) => replaced(ids, value),
        body: valid,
        expect: invalid(`${param.key}_id`),
      });
    }
    cases.push({
      name: `${name} "../x" (unencoded, resolved away by the client)`,
      path: (ids) => replaced(ids, '../x'),
      body: valid,
      expect: { status: 404, code: 'not_found' },
    });
  }
  return cases;
};

/** Stand-ins used only to enumerate a valid body's fields. */
const fakeIds: Ids = {
  program: 'prg_x',
  member: 'mem_x',
  reward: 'rwd_x',
  order: 'ord_x',
  leaderboard: 'lb_x',
};

describe('bad input on every POST and PATCH endpoint', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let api: Api;
  let ids: Ids;
  let eventsBefore: number;
  let apiKeysBefore: number;
  const answers: { endpoint: string; name: string; status: number }[] = [];

  const apiKeyCount = async () =>
    Number(
      (
        await sql<{ n: string }>`select count(*)::text as n from api_keys`.execute(
          app.runtime.database.db,
        )
      ).rows[0]!.n,
    );

  before(async () => {
    app = await startTestApp();
    api = app.api;
    const programId = (await createProgram(api)).id;
    const memberId = (await createMember(api, programId)).id;
    await award(api, programId, memberId, 1000);
    const rewardId = (
      await createReward(api, programId, { points_cost: 10, stock: 50, kind: 'physical' })
    ).id;
    const orderId = expectStatus(
      await api.post<Redemption>(`/v1/programs/${programId}/members/${memberId}/redemptions`, {
        reward_id: rewardId,
      }),
      201,
    ).body.id;
    const leaderboardId = expectStatus(
      await api.post<{ id: string }>(`/v1/programs/${programId}/leaderboards`, {
        name: 'Top',
        period: 'weekly',
      }),
      201,
    ).body.id;
    ids = {
      program: programId,
      member: memberId,
      reward: rewardId,
      order: orderId,
      leaderboard: leaderboardId,
    };
    await settle(app.runtime);
    eventsBefore = await eventCount(app.runtime);
    apiKeysBefore = await apiKeyCount();
  });
  after(async () => {
    await app?.stop();
  });

  for (const endpoint of endpoints) {
    describe(endpoint.name, () => {
      for (const testCase of casesFor(endpoint)) {
        it(`answers ${testCase.name} with ${testCase.expect.status} ${String(testCase.expect.code)}`, async () => {
          const path = (testCase.path ?? endpoint.path)(ids);
          const response = await api.request(endpoint.method, path, {
            ...(testCase.raw
              ? { raw: testCase.raw(ids) }
              : { body: (testCase.body ?? endpoint.valid)(ids) }),
            ...(testCase.headers && { headers: testCase.headers }),
          });
          answers.push({ endpoint: endpoint.name, name: testCase.name, status: response.status });
          assert.notEqual(response.status, 500, response.text);
          assert.equal(response.status, testCase.expect.status, response.text.slice(0, 300));
          assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
          const codes = [testCase.expect.code].flat();
          assert.ok(
            codes.includes(response.body.error?.code ?? ''),
            `code ${response.body.error?.code} not in ${codes.join(', ')}`,
          );
          assert.equal(typeof response.body.error?.message, 'string');
          if (testCase.expect.field !== undefined)
            assert.equal(
              response.body.error?.field,
              testCase.expect.field,
              response.text.slice(0, 300),
            );
        });
      }
    });
  }

  describe('after the whole table', () => {
    it('never answered 5xx', () => {
      assert.deepEqual(
        answers.filter((a) => a.status >= 500),
        [],
      );
      assert.ok(answers.length > 300, `ran ${answers.length} bad requests`);
    });

    it('has left the event store and the key table unchanged', async () => {
      await settle(app.runtime);
      assert.equal(await eventCount(app.runtime), eventsBefore);
      assert.equal(await apiKeyCount(), apiKeysBefore);
    });
  });
});

describe('bad query parameters on every GET that takes one', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let p: (path: string) => string;
  let memberId: string;
  let eventsBefore: number;

  before(async () => {
    app = await startTestApp();
    const programId = (await createProgram(app.api)).id;
    memberId = (await createMember(app.api, programId)).id;
    p = (path) => `/v1/programs/${programId}${path}`;
    await settle(app.runtime);
    eventsBefore = await eventCount(app.runtime);
  });
  after(async () => {
    await app?.stop();
  });

  const queries: { route: string; path: () => string; params: string[] }[] = [
    {
      route: '/members',
      path: () => p('/members'),
      params: ['q', 'email', 'tier', 'external_id', 'after_position'],
    },
    {
      route: '/members/:memberId',
      path: () => p(`/members/${memberId}`),
      params: ['as_of', 'after_position'],
    },
    {
      route: '/members/:memberId/transactions',
      path: () => p(`/members/${memberId}/transactions`),
      params: ['cursor', 'after_position'],
    },
    { route: '/rewards', path: () => p('/rewards'), params: ['cursor', 'after_position'] },
    { route: '/leaderboards', path: () => p('/leaderboards'), params: ['after_position'] },
    {
      route: '/webhook-deliveries',
      path: () => p('/webhook-deliveries'),
      params: ['endpoint_id', 'cursor', 'status', 'type'],
    },
    { route: '/webhook-events', path: () => p('/webhook-events'), params: ['cursor', 'type'] },
    {
      route: '/audit/events',
      path: () => p('/audit/events'),
      params: ['stream', 'type', 'after_position'],
    },
  ];
  for (const { route, path, params } of queries) {
    for (const param of params) {
      for (const [what, value] of [
        ['NUL', '%00'],
        ['a value holding NUL', 'a%00b'],
        ['NUL after a valid-looking prefix', 'mem_%00'],
      ] as const) {
        it(`answers GET ${route}?${param}= ${what} with 400 naming ${param}`, async () => {
          const response = await app.api.get(`${path()}?${param}=${value}`);
          assert.equal(response.status, 400, response.text.slice(0, 300));
          assert.equal(response.body.error?.code, 'validation_error', response.text);
          assert.equal(response.body.error?.field, param, response.text);
        });
      }
    }
  }

  // Found by the fuzz (fuzz.e2e.test.ts): a prepare part past bigint reached the audit query and
  // PostgreSQL refused it, a 500.
  for (const [what, position] of [
    ['a prepare part past bigint', '0.9223372036854775808'],
    ['a commit part past xid8', '18446744073709551616.1'],
    ['twenty nines in each part', '99999999999999999999.99999999999999999999'],
  ] as const) {
    for (const route of ['/audit/events', '/members'])
      it(`answers GET ${route}?after_position= ${what} with 400 naming after_position`, async () => {
        const response = await app.api.get(`${p(route)}?after_position=${position}`);
        assert.equal(response.status, 400, response.text.slice(0, 300));
        assert.equal(response.body.error?.code, 'validation_error', response.text);
        assert.equal(response.body.error?.field, 'after_position', response.text);
      });
  }

  it('answers the dashboard member search with NUL with a 400 page', async () => {
    const key = expectStatus(
      await app.api.post<{ key: string }>(p('/api-keys'), { label: 'dashboard' }),
      201,
    ).body.key;
    const client = dashboardClient(app.url);
    assert.equal((await client.signIn(key)).status, 303);
    assert.equal((await client.get('/dashboard/members?q=Member')).status, 200);
    const response = await client.get('/dashboard/members?q=%00');
    assert.equal(response.status, 400, response.text.slice(0, 300));
    assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
  });

  it('has written no event', async () => {
    await settle(app.runtime);
    assert.equal(await eventCount(app.runtime), eventsBefore);
  });
});

describe('unusual but valid input', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let api: Api;
  let programId: string;
  const p = (path: string) => `/v1/programs/${programId}${path}`;

  before(async () => {
    app = await startTestApp();
    api = app.api;
    programId = (await createProgram(api)).id;
  });
  after(async () => {
    await app?.stop();
  });

  it('accepts emoji in a reason and keeps it intact', async () => {
    const member = await createMember(api, programId);
    const moved = expectStatus(
      await api.post<Movement>(p(`/members/${member.id}/points/award`), {
        points: 5,
        reason: '🎉 bonus',
      }),
      201,
    ).body;
    assert.equal(moved.reason, '🎉 bonus');
    const ledger = expectStatus(
      await api.get<Page<LedgerRow>>(
        p(`/members/${member.id}/transactions?after_position=${moved.position}`),
      ),
      200,
    ).body;
    assert.equal(ledger.data[0]?.reason, '🎉 bonus');
  });

  it('accepts non-Latin letters, emoji sequences and attribute values of every kind', async () => {
    const created = await createMember(api, programId, {
      name: 'Zoë Łukasiewicz-山田 👩🏽‍💻',
      attributes: { city: 'Zürich', emoji: '🚀', score: 1.5, flag: false },
    });
    const read = expectStatus(
      await api.get<MemberView>(p(`/members/${created.id}?after_position=${created.position}`)),
      200,
    ).body;
    assert.equal(read.name, 'Zoë Łukasiewicz-山田 👩🏽‍💻');
    assert.deepEqual(read.attributes, { city: 'Zürich', emoji: '🚀', score: 1.5, flag: false });
  });

  it('accepts the largest award, 1 000 000 000 points', async () => {
    const member = await createMember(api, programId);
    const moved = expectStatus(
      await api.post<Movement>(p(`/members/${member.id}/points/award`), {
        points: 1_000_000_000,
        reason: 'max',
      }),
      201,
    ).body;
    assert.equal(moved.new_balance, 1_000_000_000);
  });

  it('counts a 200-character name in characters, so 200 emoji are accepted', async () => {
    // The domain counts code points ("as a user would count it", domain/validation.ts); a
    // name the domain accepts must not be refused at the edge for its UTF-16 length.
    const name = '🎉'.repeat(200);
    const response = await api.post<MemberView>(p('/members'), {
      email: 'emoji@example.com',
      name,
    });
    assert.equal(response.status, 201, response.text.slice(0, 300));
    assert.equal(response.body.name, name);
  });
});

/** Sends a body in chunks, as streaming clients do: no Content-Length header. */
const postChunked = (
  url: string,
  key: string,
  contentType: string,
  chunks: string[],
): Promise<{ status: number; text: string }> =>
  new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${key}`,
          'content-type': contentType,
          'transfer-encoding': 'chunked',
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });

describe('bodies sent without a Content-Length', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let programId: string;

  before(async () => {
    app = await startTestApp();
    programId = (await createProgram(app.api)).id;
  });
  after(async () => {
    await app?.stop();
  });

  it('reads a chunked JSON body', async () => {
    const member = await createMember(app.api, programId);
    const response = await postChunked(
      `${app.url}/v1/programs/${programId}/members/${member.id}/points/award`,
      app.rootKey,
      'application/json',
      ['{"points": 3,', ' "reason": "chunked"}'],
    );
    assert.equal(response.status, 201, response.text);
  });

  it('answers a chunked text/plain body with 415 and changes nothing', async () => {
    const member = await createMember(app.api, programId);
    await settle(app.runtime);
    const before = await eventCount(app.runtime);
    const response = await postChunked(
      `${app.url}/v1/programs/${programId}/members/${member.id}/deactivate`,
      app.rootKey,
      'text/plain',
      ['please ', 'deactivate'],
    );
    assert.equal(response.status, 415, response.text);
    assert.match(response.text, /unsupported_media_type/);
    await settle(app.runtime);
    assert.equal(await eventCount(app.runtime), before);
  });
});
