import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { principalOf } from './auth.ts';
import { sendError } from './errors.ts';

const keyPattern = /^[\x21-\x7e]{1,255}$/;

/**
 * `Idempotency-Key` on POST: the first request with a key runs and its response is stored; a
 * repeat with the same body gets that response back and appends nothing; the same key with
 * another body is a 409. Concurrent repeats wait for the first to finish. Keys are scoped to the
 * caller's key and kept at least 24 hours (see `purgeIdempotencyKeys`).
 */
export const idempotency = (
  db: Kysely<Database>,
  options: { waitMs?: number } = {},
): RequestHandler => {
  const waitMs = options.waitMs ?? 10_000;
  return (req, res, next) => {
    const key = req.get('idempotency-key');
    if (req.method !== 'POST' || key === undefined) return next();
    if (!keyPattern.test(key)) {
      return sendError(
        res,
        400,
        'validation_error',
        'Idempotency-Key must be 1-255 visible ASCII characters',
        'Idempotency-Key',
      );
    }
    const scope = principalOf(res).keyId;
    const requestHash = createHash('sha256')
      .update(`${req.method} ${req.originalUrl.split('?')[0]}\n${JSON.stringify(req.body ?? null)}`)
      .digest('hex');

    const replay = async (): Promise<void> => {
      const deadline = Date.now() + waitMs;
      for (;;) {
        const row = await db
          .selectFrom('idempotency_keys')
          .select(['request_sha256', 'status', 'response_status', 'response_body'])
          .where('scope', '=', scope)
          .where('key', '=', key)
          .executeTakeFirst();
        if (!row) return claim();
        if (row.request_sha256 !== requestHash) {
          return sendError(
            res,
            409,
            'idempotency_conflict',
            'this Idempotency-Key was used with another request',
            'Idempotency-Key',
          );
        }
        if (row.status === 'done') {
          res.set('Idempotent-Replayed', 'true');
          res.status(row.response_status ?? 200).json(row.response_body);
          return;
        }
        if (Date.now() > deadline) {
          return sendError(
            res,
            409,
            'idempotency_in_progress',
            'a request with this Idempotency-Key is still running',
            'Idempotency-Key',
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };

    const claim = async (): Promise<void> => {
      const inserted = await db
        .insertInto('idempotency_keys')
        .values({
          scope,
          key,
          request_sha256: requestHash,
          status: 'pending',
          response_status: null,
          response_body: null,
        })
        .onConflict((oc) => oc.columns(['scope', 'key']).doNothing())
        .returning('key')
        .executeTakeFirst();
      if (!inserted) return replay();
      const json = res.json.bind(res);
      res.json = (body: unknown) => {
        const status = res.statusCode;
        // A server fault is not an answer worth replaying: free the key so the client can retry.
        const settle =
          status >= 500
            ? db
                .deleteFrom('idempotency_keys')
                .where('scope', '=', scope)
                .where('key', '=', key)
                .execute()
            : db
                .updateTable('idempotency_keys')
                .set({
                  status: 'done',
                  response_status: status,
                  response_body: sql`${JSON.stringify(body)}::jsonb`,
                })
                .where('scope', '=', scope)
                .where('key', '=', key)
                .execute();
        settle.then(
          () => json(body),
          () => json(body),
        );
        return res;
      };
      next();
    };

    replay().catch(next);
  };
};

/** Deletes records older than `olderThanHours` (the scheduler runs this; default keeps 48 h). */
export const purgeIdempotencyKeys = async (
  db: Kysely<Database>,
  olderThanHours = 48,
): Promise<number> => {
  const result = await db
    .deleteFrom('idempotency_keys')
    .where('created_at', '<', sql<Date>`now() - make_interval(hours => ${olderThanHours})`)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
};
