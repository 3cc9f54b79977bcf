import { randomBytes } from 'node:crypto';
import { replayReadModels, type RowDifference } from '../../adapters/audit/replay.ts';
import { sql } from 'kysely';
import { loadConfig } from '../../adapters/config.ts';
import { startRuntime, type Runtime } from '../../adapters/runtime.ts';
import { streams } from '../../application/incentives.ts';
import { comparePositions, type Position } from '../../domain/recordedEvent.ts';
import { createTestDatabase, waitFor, type TestDatabase } from './postgres.ts';

/** The API's one error body; present on every 4xx/5xx answer. */
export type ErrorBody = { error?: { code: string; message: string; field?: string } };

export type ApiResponse<T> = {
  status: number;
  /** The parsed JSON body (null when the body is not JSON), typed as the caller expects. */
  body: T & ErrorBody;
  headers: Headers;
  text: string;
};

export type RequestOptions = {
  /** Serialised with JSON.stringify unless `raw` is given. */
  body?: unknown;
  /** Sent as-is, for bodies that are not (valid) JSON, or bytes that are not (valid) UTF-8. */
  raw?: string | Uint8Array;
  /** Bearer key; `null` sends no Authorization header. Defaults to the client's key. */
  key?: string | null;
  headers?: Record<string, string>;
};

export type Api = {
  request: <T = unknown>(
    method: string,
    path: string,
    options?: RequestOptions,
  ) => Promise<ApiResponse<T>>;
  get: <T = unknown>(path: string, options?: RequestOptions) => Promise<ApiResponse<T>>;
  post: <T = unknown>(
    path: string,
    body?: unknown,
    options?: RequestOptions,
  ) => Promise<ApiResponse<T>>;
  patch: <T = unknown>(
    path: string,
    body?: unknown,
    options?: RequestOptions,
  ) => Promise<ApiResponse<T>>;
};

/** A fetch-based client for the HTTP API; never throws on a 4xx/5xx, it returns them. */
export const apiClient = (baseUrl: string, defaultKey: string | null): Api => {
  const request = async <T>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<ApiResponse<T>> => {
    const key = options.key === undefined ? defaultKey : options.key;
    const headers: Record<string, string> = {
      ...(key !== null && { authorization: `Bearer ${key}` }),
    };
    let body: string | Uint8Array | undefined;
    if (options.raw !== undefined) body = options.raw;
    else if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined) headers['content-type'] = 'application/json';
    Object.assign(headers, options.headers);
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      ...(body !== undefined && { body }),
    });
    const text = await response.text();
    let parsed: unknown = null;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    return {
      status: response.status,
      body: parsed as T & ErrorBody,
      headers: response.headers,
      text,
    };
  };
  return {
    request,
    get: (path, options) => request('GET', path, options),
    post: (path, body, options) => request('POST', path, { ...options, body }),
    patch: (path, body, options) => request('PATCH', path, { ...options, body }),
  };
};

/** The clock the runtime reads; tests move it. */
export type TestClock = { now: () => Date; set: (at: Date) => void; advance: (ms: number) => void };

export const testClock = (start: Date): TestClock => {
  let current = start.getTime();
  return {
    now: () => new Date(current),
    set: (at) => {
      current = at.getTime();
    },
    advance: (ms) => {
      current += ms;
    },
  };
};

export type TestApp = {
  runtime: Runtime;
  database: TestDatabase;
  clock: TestClock;
  rootKey: string;
  /** A client authenticated with the root key. */
  api: Api;
  url: string;
  stop: () => Promise<void>;
};

/**
 * A clock that runs with real time, shifted by an offset that `set` and `advance` move. For tests
 * whose retries must fall due on their own and whose signatures must pass a verifier that checks
 * the timestamp against the real time (standardwebhooks allows five minutes either way).
 */
export const runningClock = (): TestClock => {
  let offsetMs = 0;
  return {
    now: () => new Date(Date.now() + offsetMs),
    set: (at) => {
      offsetMs = at.getTime() - Date.now();
    },
    advance: (ms) => {
      offsetMs += ms;
    },
  };
};

/**
 * The whole app in-process on a fresh database, port 0, scheduler off, with an injected clock
 * (frozen at `now` unless `clock` is given). `env` adds or overrides configuration keys, e.g.
 * WEBHOOK_RETRY_SCHEDULE or SMTP_URL.
 */
export const startTestApp = async (
  options: { now?: Date; clock?: TestClock; env?: Record<string, string> } = {},
): Promise<TestApp> => {
  const database = await createTestDatabase();
  const clock = options.clock ?? testClock(options.now ?? new Date());
  const rootKey = randomBytes(24).toString('base64url').slice(0, 32);
  let runtime: Runtime;
  try {
    runtime = await startRuntime(
      loadConfig({
        DATABASE_URL: database.url,
        PORT: '0',
        ADMIN_API_KEY: rootKey,
        LOG_LEVEL: 'silent',
        NODE_ENV: 'test',
        ...options.env,
      }),
      { clock, scheduler: false },
    );
  } catch (error) {
    await database.drop();
    throw error;
  }
  const url = runtime.url!;
  return {
    runtime,
    database,
    clock,
    rootKey,
    api: apiClient(url, rootKey),
    url,
    stop: async () => {
      await runtime.stop();
      await database.drop();
    },
  };
};

/** Rows in the event log. */
export const eventCount = async (runtime: Runtime): Promise<number> => {
  const result = await sql<{
    n: string;
  }>`select count(*)::text as n from incentable_events`.execute(runtime.database.db);
  return Number(result.rows[0]!.n);
};

const lastPosition = async (runtime: Runtime): Promise<Position | null> => {
  const result = await sql<{ commit: string; prepare: string }>`
    select transaction_id::text as commit, global_position::text as prepare from incentable_events
    order by transaction_id desc, global_position desc limit 1`.execute(runtime.database.db);
  const row = result.rows[0];
  return row ? { commit: BigInt(row.commit), prepare: BigInt(row.prepare) } : null;
};

/**
 * Waits until both subscriptions (read models, policy reactor) have handled every event in the
 * log, including the ones the reactor appended itself: afterwards nothing more is in flight.
 */
export const settle = async (runtime: Runtime): Promise<void> => {
  for (;;) {
    const last = await lastPosition(runtime);
    if (!last) return;
    const reached = (checkpoint: Position | null | undefined) =>
      checkpoint !== null && checkpoint !== undefined && comparePositions(checkpoint, last) >= 0;
    await waitFor(
      'the subscriptions to catch up',
      () => reached(runtime.readModels?.checkpoint()) && reached(runtime.policies?.checkpoint()),
    );
    const again = await lastPosition(runtime);
    if (again && comparePositions(again, last) === 0) return;
  }
};

/** Points events (any type of the points stream) recorded for one member. */
export const pointsEventsOf = async (
  runtime: Runtime,
  programId: string,
  memberId: string,
): Promise<{ type: string }[]> => runtime.store.readStream(streams.points(programId, memberId));

/** Response shapes, as the routes and queries write them. */
export type Command = { position: string };
export type ProgramView = {
  id: string;
  name: string;
  tiers: { name: string; min_points: number }[];
  tier_basis: 'lifetime' | 'balance';
  points_expiry_days: number | null;
  timezone: string;
  notification_email: string;
};
export type MemberView = {
  id: string;
  email: string;
  name: string;
  external_id: string | null;
  attributes: Record<string, unknown>;
  tier: string | null;
  balance: number;
  lifetime_points: number;
  status: 'active' | 'deactivated';
  last_activity_at: string | null;
};
export type Page<T> = { data: T[]; next_cursor: string | null };
export type Movement = Command & {
  transaction_id: string;
  member_id: string;
  points: number;
  reason: string;
  reference: string | null;
  new_balance: number;
};
export type LedgerRow = {
  transaction_id: string;
  kind: 'awarded' | 'deducted' | 'expired' | 'refunded' | 'reversed';
  points: number;
  reason: string;
  reference: string | null;
  balance: number;
};
export type RewardView = {
  id: string;
  name: string;
  points_cost: number;
  stock: number | null;
  kind: 'physical' | 'digital';
  active: boolean;
};
export type Redemption = Command & {
  id: string;
  member_id: string;
  reward_id: string;
  reward_name: string;
  points_spent: number;
  status: string;
  transaction_id: string;
  new_balance: number;
};
export type OrderView = {
  id: string;
  member_id: string;
  reward_id: string;
  kind: string;
  points_spent: number;
  status: 'redeemed' | 'shipped' | 'delivered' | 'cancelled';
  carrier: string | null;
  tracking_number: string | null;
  history: { status: string; at: string }[];
};
export type LeaderboardView = {
  id: string;
  name: string;
  period: 'weekly' | 'monthly' | 'quarterly';
  timezone: string;
  top_n: number;
  period_start: string;
  period_end: string;
};
export type Standing = { position: number; member_id: string; points: number };
export type Standings = {
  leaderboard_id: string;
  period_start: string;
  period_end: string;
  standings: Standing[];
};
export type Periods = {
  leaderboard_id: string;
  data: {
    period_id: string;
    period_start: string;
    period_end: string;
    standings: Standing[];
    corrections?: unknown[];
  }[];
};

/** Asserts the status, with the body in the message so a failure says what came back. */
export const expectStatus = <T>(response: ApiResponse<T>, status: number): ApiResponse<T> => {
  if (response.status !== status)
    throw new Error(
      `expected HTTP ${status}, got ${response.status}: ${response.text.slice(0, 500)}`,
    );
  return response;
};

export const programBody = (overrides: Record<string, unknown> = {}) => ({
  name: 'Acme Rewards',
  tiers: [
    { name: 'Bronze', min_points: 0 },
    { name: 'Silver', min_points: 500 },
    { name: 'Gold', min_points: 1000 },
  ],
  tier_basis: 'lifetime',
  points_expiry_days: null,
  timezone: 'UTC',
  notification_email: 'ops@example.com',
  ...overrides,
});

/**
 * Sends a set-up request as a well-behaved client does: a 503 `overloaded` is shed before any
 * work is done (adapters/http/api/app.ts) and says to come back after Retry-After, so it is sent
 * again then. Under a loaded CI machine a service that has just started can shed its first
 * request while its subscriptions take their pool connections through a slow proxy.
 */
const whenNotOverloaded = async <T>(
  send: () => Promise<ApiResponse<T>>,
): Promise<ApiResponse<T>> => {
  for (let attempt = 1; ; attempt++) {
    const response = await send();
    if (response.status !== 503 || response.body?.error?.code !== 'overloaded' || attempt === 20)
      return response;
    const seconds = Number(response.headers.get('retry-after') ?? '1');
    await new Promise((resolve) => setTimeout(resolve, Math.min(seconds, 1) * 1000));
  }
};

/** Creates a program with the root client and returns its id. */
export const createProgram = async (
  api: Api,
  overrides: Record<string, unknown> = {},
): Promise<ProgramView & Command> =>
  expectStatus(
    await whenNotOverloaded(() =>
      api.post<ProgramView & Command>('/v1/programs', programBody(overrides)),
    ),
    201,
  ).body;

let memberSeq = 0;
export const createMember = async (
  api: Api,
  programId: string,
  overrides: Record<string, unknown> = {},
): Promise<MemberView & Command> => {
  memberSeq++;
  const body = {
    email: `member${memberSeq}-${randomBytes(4).toString('hex')}@example.com`,
    name: `Member ${memberSeq}`,
    ...overrides,
  };
  return expectStatus(
    await whenNotOverloaded(() =>
      api.post<MemberView & Command>(`/v1/programs/${programId}/members`, body),
    ),
    201,
  ).body;
};

export const award = async (
  api: Api,
  programId: string,
  memberId: string,
  points: number,
  reason = 'purchase',
): Promise<Movement> =>
  expectStatus(
    await whenNotOverloaded(() =>
      api.post<Movement>(`/v1/programs/${programId}/members/${memberId}/points/award`, {
        points,
        reason,
      }),
    ),
    201,
  ).body;

export const createReward = async (
  api: Api,
  programId: string,
  body: { name?: string; points_cost: number; stock?: number | null; kind: 'physical' | 'digital' },
): Promise<RewardView & Command> =>
  expectStatus(
    await whenNotOverloaded(() =>
      api.post<RewardView & Command>(`/v1/programs/${programId}/rewards`, {
        name: 'Mug',
        ...body,
      }),
    ),
    201,
  ).body;

/** Every webhook for the events so far delivered and recorded: nothing more will arrive. */
export const deliveriesSettled = async (app: TestApp): Promise<void> => {
  await settle(app.runtime);
  await app.runtime.webhookProjection!.caughtUp();
  await waitFor('every delivery to be delivered', async () => {
    const rows = await sql<{ n: number }>`
      select count(*)::int as n from webhook_deliveries where status <> 'delivered'`.execute(
      app.runtime.database.db,
    );
    return rows.rows[0]!.n === 0;
  });
};

/** What `replay --verify` finds between the live read models and a rebuild from the history. */
export const replayDifferences = async (
  app: TestApp,
): Promise<{ differences: RowDifference[]; total: number }> => {
  await settle(app.runtime);
  const differences: RowDifference[] = [];
  const report = await replayReadModels(app.runtime.database.db, {
    verify: true,
    onDifference: (d) => {
      differences.push(d);
    },
  });
  return { differences, total: report.totalDifferences };
};
