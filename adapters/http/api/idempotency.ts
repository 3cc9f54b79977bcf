import { createHash, randomBytes } from 'node:crypto';
import type { NextFunction, RequestHandler, Response } from 'express';
import type { IdempotencyContext } from '../../../application/commandHandler.ts';
import { decryptSecret, encryptSecret } from '../../../delivery/signing.ts';
import type {
  IdempotencyStore,
  KeyHold,
  SharedTransaction,
  StoredKey,
} from '../../db/idempotencyStore.ts';
import { isDatabaseUnavailable } from '../../db/unavailable.ts';
import { jsonbText } from '../../eventstore/canonical.ts';
import { isId } from '../../../domain/ids.ts';
import type { Principal } from '../../db/apiKeyVerifier.ts';
import { canAccessProgram, principalOf } from './auth.ts';
import { sendError } from './errors.ts';

const keyPattern = /^[\x21-\x7e]{1,255}$/;

export type IdempotencyOptions = {
  /** How long a repeat waits for the first request to finish before a 409; default 10 s. */
  waitMs?: number;
  /**
   * How long a running request's claim on its key holds without renewal (it is renewed while the
   * request runs); a retry takes over a claim that ran out. Default 15 s.
   */
  leaseMs?: number;
  /**
   * The at-rest key (WEBHOOK_SECRET_KEY): a response that carries a secret or an API key is
   * stored encrypted with it, and decrypted for a replay.
   */
  secretKey?: Uint8Array;
};

/** What a route answers for its write: the key's record stores it (sealed when `sensitive`). */
type Answer = { status: number; body: unknown; sensitive: boolean };

/**
 * The key's record, for a route whose effect is a database write of its own (an API key, an
 * endpoint, a rotated secret): `settleIn` writes the response into the effect's transaction, so
 * the two commit together and a retry never repeats an effect it cannot see.
 */
export type IdempotencyRecord = {
  settleIn: (tx: SharedTransaction, response: Answer) => Promise<void>;
};

/**
 * Runs `effect` in a transaction that also settles the request's Idempotency-Key, then answers.
 * An effect that answered the request itself (a 404) returns null: nothing is settled with it.
 */
export const answerAtomically = async (
  keys: Pick<IdempotencyStore, 'withinTransaction'>,
  res: Response,
  effect: (tx: SharedTransaction) => Promise<Answer | null>,
): Promise<void> => {
  const record = res.locals.idempotencyRecord as IdempotencyRecord | undefined;
  const response = await keys.withinTransaction(async (tx) => {
    const answer = await effect(tx);
    if (answer) await record?.settleIn(tx, answer);
    return answer;
  });
  if (!response) return;
  if (response.sensitive) res.set('Cache-Control', 'no-store');
  // The record is settled already: the middleware's own settle finds no pending row.
  res.status(response.status).json(response.body);
};

/** How a response is kept: as it is, or sealed when it holds a secret. */
const stored = (body: unknown, sensitive: boolean, key: Uint8Array | undefined): string => {
  if (!sensitive) return JSON.stringify(body);
  if (!key) throw new Error('a sensitive idempotent response needs the at-rest key');
  return JSON.stringify({ sealed: encryptSecret(JSON.stringify(body), key) });
};

const unsealed = (body: unknown, key: Uint8Array | undefined): unknown => {
  const sealed = (body as { sealed?: unknown } | null)?.sealed;
  if (typeof sealed !== 'string' || !key) return body;
  return JSON.parse(decryptSecret(sealed, key)) as unknown;
};

/** The request's claim on its key, for the command layer (res.locals.idempotency). */
export const idempotencyOf = (res: Response): IdempotencyContext | undefined =>
  res.locals.idempotency as IdempotencyContext | undefined;

/**
 * Where a key is unique: the program of a /programs/{id}/… path (`program:<id>`), else the root
 * keys together (`root`: creating programs). Null for a program the caller may not touch, or an
 * id that names none.
 */
export const idempotencyScope = (path: string, principal: Principal): string | null => {
  const segment = /^\/programs\/([^/]+)/.exec(path)?.[1];
  if (segment === undefined) return principal.kind === 'root' ? 'root' : principal.keyId;
  // As the routes read it: `prg%5Fa` is the program prg_a.
  let programId: string;
  try {
    programId = decodeURIComponent(segment);
  } catch {
    return null;
  }
  // A malformed id gets its 400 from the routes; it names no program to scope a key to.
  if (!isId('program', programId)) return null;
  return canAccessProgram(principal, programId) ? `program:${programId}` : null;
};

/** One request that sent an Idempotency-Key, as the steps below share it. */
type KeyedRequest = {
  keys: IdempotencyStore;
  hold: KeyHold;
  /** What a repeat must match: the method, the path and the canonical body, hashed. */
  requestHash: string;
  /** The key's digest, recorded in the command's events (IdempotencyContext.key). */
  digest: string;
  secretKey: Uint8Array | undefined;
  res: Response;
  next: NextFunction;
};

/**
 * Writes the request's answer into its record, in `tx` when given one. A server fault or an
 * outage is not an answer worth replaying: the command may or may not have been applied, so the
 * key is left to the next retry at once, which recovers.
 */
const settle = async (
  request: KeyedRequest,
  answer: { status: number; body: unknown; sensitive?: boolean },
  tx?: SharedTransaction,
): Promise<void> => {
  if (answer.status >= 500) return request.keys.release(request.hold, tx);
  const bodyJson = stored(answer.body, answer.sensitive ?? false, request.secretKey);
  return request.keys.complete(request.hold, { status: answer.status, bodyJson }, tx);
};

/**
 * Sends `body` once the record is settled, so a retry that follows sees it. A connection that
 * broke under the settle (a restart, a failover) is retried for a moment; when the record still
 * cannot be written the answer is a 503, never an answer whose record stays pending: the client
 * retries, and the retry recovers the command's result from the log.
 */
const answerOnceSettled = (request: KeyedRequest, json: Response['json'], body: unknown): void => {
  const { res } = request;
  const status = res.statusCode;
  settleWithRetry(() => settle(request, { status, body })).then(
    () => json(body),
    (error: unknown) => {
      if (status >= 500 || !isDatabaseUnavailable(error)) {
        json(body);
        return;
      }
      res.set('Retry-After', '1');
      res.status(503);
      json({
        error: {
          code: 'database_unavailable',
          message: 'the database is unreachable right now; retry in a moment',
        },
      });
    },
  );
};

/**
 * Runs the request under its hold (`recover`: it took over a hold that ran out): the lease is
 * renewed while it runs, and its answer settles the record before it is sent.
 */
const run = (request: KeyedRequest, recover: boolean): void => {
  const { keys, hold, res } = request;
  res.locals.idempotency = { key: request.digest, recover } satisfies IdempotencyContext;
  res.locals.idempotencyRecord = {
    settleIn: (tx, response) => settle(request, response, tx),
  } satisfies IdempotencyRecord;
  const heartbeat = setInterval(() => {
    keys.renew(hold).catch(() => {});
  }, hold.leaseMs / 3);
  heartbeat.unref();
  let settled = false;
  res.once('close', () => clearInterval(heartbeat));
  // A response without a JSON body (a 204) is settled once it is sent.
  res.once('finish', () => {
    if (!settled) settle(request, { status: res.statusCode, body: null }).catch(() => {});
  });
  const json = res.json.bind(res);
  res.json = (body: unknown) => {
    settled = true;
    clearInterval(heartbeat);
    answerOnceSettled(request, json, body);
    return res;
  };
  request.next();
};

/** A repeat of a settled request gets the stored response, marked as replayed. */
const replay = (res: Response, existing: StoredKey, secretKey: Uint8Array | undefined): void => {
  res.set('Idempotent-Replayed', 'true');
  const body = unsealed(existing.responseBody, secretKey);
  if (body !== existing.responseBody) res.set('Cache-Control', 'no-store');
  res.status(existing.responseStatus ?? 200).json(body);
};

/**
 * Claims the key and runs the request, or answers for it: the stored response to a repeat, a 409
 * to another request with the key, or to a repeat that waited `waitMs` for the first in vain.
 */
const claim = async (request: KeyedRequest, waitMs: number): Promise<void> => {
  const { keys, hold, res } = request;
  const deadline = Date.now() + waitMs;
  for (let pause = 10; ; pause = Math.min(pause * 2, 100)) {
    if (await keys.claim(hold, request.requestHash)) return run(request, false);
    const existing = await keys.lookup(hold.scope, hold.key);
    if (!existing) continue;
    if (existing.requestSha256 !== request.requestHash) {
      return sendError(res, 409, {
        code: 'idempotency_conflict',
        message: 'this Idempotency-Key was used with another request',
        field: 'Idempotency-Key',
      });
    }
    if (existing.status === 'done') return replay(res, existing, request.secretKey);
    if (existing.expired) {
      // The request that held the key died or failed: take it over, and recover.
      if (await keys.takeOver(hold, existing.owner)) return run(request, true);
      continue;
    }
    if (Date.now() > deadline) {
      return sendError(res, 409, {
        code: 'idempotency_in_progress',
        message: 'a request with this Idempotency-Key is still running',
        field: 'Idempotency-Key',
      });
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
};

/**
 * `Idempotency-Key` on POST. The first request with a key claims it (a `pending` row with a lease)
 * and runs; its response is stored and a repeat with the same body gets it back; the same key with
 * another body is a 409. A repeat while the first still runs waits for it.
 *
 * Exactly once across crashes: every event a keyed command appends carries the key's digest in
 * its metadata, in the same append. When the request that holds a key dies (kill -9, a lost
 * database, a 5xx) its row stays `pending` and its lease runs out; the next retry takes the key
 * over and runs the command in recovery mode, where each step first looks for events recorded
 * under the key and, when the first attempt got that far, answers with them instead of deciding
 * again. So the retry either returns what the first attempt did or performs the command once.
 * Ids of new entities derive from the key, so a retry names the same order or member.
 *
 * Keys are scoped to the program the path names, whichever of its keys (or the root key) sends
 * them, and kept at least 24 hours (the store's `purge`).
 */
export const idempotency = (
  keys: IdempotencyStore,
  options: IdempotencyOptions = {},
): RequestHandler => {
  const waitMs = options.waitMs ?? 10_000;
  const leaseMs = options.leaseMs ?? 15_000;
  return (req, res, next) => {
    const key = req.get('idempotency-key');
    if (req.method !== 'POST' || key === undefined) return next();
    if (!keyPattern.test(key)) {
      return sendError(res, 400, {
        code: 'validation_error',
        message: 'Idempotency-Key must be 1-255 visible ASCII characters',
        field: 'Idempotency-Key',
      });
    }
    const scope = idempotencyScope(req.path, principalOf(res));
    // Another program's key gets 403 from the routes; it must not take a key in this program.
    if (scope === null) return next();
    // The parsed body in canonical form: the same request with its keys in another order is the
    // same request.
    const requestHash = createHash('sha256')
      .update(`${req.method} ${req.originalUrl.split('?')[0]}\n${jsonbText(req.body ?? null)}`)
      .digest('hex');
    const owner = randomBytes(12).toString('base64url');
    const digest = createHash('sha256').update(`${scope}\n${key}`).digest('base64url').slice(0, 27);
    const request: KeyedRequest = {
      keys,
      hold: { scope, key, owner, leaseMs },
      requestHash,
      digest,
      secretKey: options.secretKey,
      res,
      next,
    };
    claim(request, waitMs).catch(next);
  };
};

/** A settle that met a broken connection is tried again over about 3 s before giving up. */
const settleWithRetry = async (attempt: () => Promise<void>): Promise<void> => {
  for (let delayMs = 50; ; delayMs *= 2) {
    try {
      return await attempt();
    } catch (error) {
      if (delayMs > 1_600 || !isDatabaseUnavailable(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
};
