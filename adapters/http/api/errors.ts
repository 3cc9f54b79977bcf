import type { ErrorRequestHandler, Response } from 'express';
import type { Rejection } from '../../../application/incentives.ts';
import { isDatabaseUnavailable } from '../../db/unavailable.ts';

/** Codes the HTTP layer itself answers with, beside the domain's refusals. */
export const httpErrorCodes = [
  'validation_error',
  'malformed_json',
  'unsupported_media_type',
  'payload_too_large',
  'unauthorized',
  'invalid_api_key',
  'api_key_not_found',
  'too_many_attempts',
  'forbidden',
  'not_found',
  'period_not_found',
  'idempotency_conflict',
  'idempotency_in_progress',
  'database_unavailable',
  'overloaded',
  'invalid_tree_size',
  'not_yet_in_tree',
  'internal_error',
] as const;

export type HttpErrorCode = (typeof httpErrorCodes)[number];

/** One exhaustive table: a new refusal in the domain fails to compile until it has a status. */
export const rejectionStatus: Record<Rejection, number> = {
  invalid_active: 400,
  invalid_attributes: 400,
  invalid_carrier: 400,
  invalid_email: 400,
  invalid_external_id: 400,
  invalid_kind: 400,
  invalid_name: 400,
  invalid_period: 400,
  invalid_top_n: 400,
  invalid_points: 400,
  invalid_points_cost: 400,
  invalid_points_expiry_days: 400,
  invalid_points_expiry_mode: 400,
  invalid_reason: 400,
  invalid_reference: 400,
  invalid_stock: 400,
  invalid_tier: 400,
  invalid_tier_locked_until: 400,
  invalid_tier_basis: 400,
  invalid_tiers: 400,
  invalid_timezone: 400,
  invalid_tracking_number: 400,
  program_not_found: 404,
  member_not_found: 404,
  reward_not_found: 404,
  order_not_found: 404,
  leaderboard_not_found: 404,
  transaction_not_found: 404,
  program_exists: 409,
  member_exists: 409,
  identifier_not_reserved: 409,
  reward_exists: 409,
  order_exists: 409,
  leaderboard_exists: 409,
  already_reversed: 409,
  scores_pending: 503,
  concurrency_conflict: 409,
  insufficient_points: 422,
  balance_overflow: 422,
  member_inactive: 422,
  reward_inactive: 422,
  out_of_stock: 422,
  digital_order_not_shippable: 422,
  order_not_shipped: 422,
  order_already_shipped: 422,
  order_already_delivered: 422,
  order_cancelled: 422,
  not_reversible: 422,
};

/** Every code an error body may carry: the HTTP layer's and the domain's refusals. */
export const errorCodes: readonly (HttpErrorCode | Rejection)[] = [
  ...httpErrorCodes,
  ...(Object.keys(rejectionStatus) as Rejection[]),
];

export type ErrorBody = {
  error: {
    code: string;
    message: string;
    field?: string;
    /** With `member_exists`: the member that has the email or external id. */
    member_id?: string;
  };
};

/** What an error answer says; it becomes the one ErrorBody. */
export type ErrorReply = {
  code: HttpErrorCode | Rejection;
  message: string;
  /** The input at fault (snake_case, as on the wire), when one is. */
  field?: string | undefined;
  /** With `member_exists`: the member that has the email or external id. */
  memberId?: string | undefined;
};

/** Answers `status` with the API's one error body. */
export const sendError = (res: Response, status: number, reply: ErrorReply): void => {
  const body: ErrorBody = {
    error: {
      code: reply.code,
      message: reply.message,
      ...(reply.field !== undefined && { field: reply.field }),
      ...(reply.memberId !== undefined && { member_id: reply.memberId }),
    },
  };
  res.status(status).json(body);
};

/** Too many bad credentials from the caller's address: nothing is checked for `retryAfterS`. */
export const sendTooManyAttempts = (res: Response, retryAfterS: number): void => {
  res.set('Retry-After', String(retryAfterS));
  sendError(res, 429, {
    code: 'too_many_attempts',
    message: `too many failed authentication attempts from this address; retry after ${retryAfterS} s`,
  });
};

/**
 * The database is out of reach (restarting, failing over, our connection cut): a 503 the client
 * should retry after Retry-After seconds, not a 500, which says "our bug".
 */
export const sendDatabaseUnavailable = (res: Response): void => {
  res.set('Retry-After', '1');
  sendError(res, 503, {
    code: 'database_unavailable',
    message: 'the database is unreachable right now; retry in a moment',
  });
};

/** More requests wait for the database than it can serve soon: refused at once, not queued. */
export const sendOverloaded = (res: Response): void => {
  res.set('Retry-After', '1');
  sendError(res, 503, {
    code: 'overloaded',
    message: 'the service is busy right now; retry in a moment',
  });
};

/**
 * Body-parser and unexpected errors: a client's mistake is a 4xx, a database out of reach a 503,
 * anything else a bare 500.
 */
export const errorHandler =
  (log: (error: unknown) => void): ErrorRequestHandler =>
  (error: unknown, _req, res, _next) => {
    const e = error as { type?: string; status?: number; message?: string };
    if (res.headersSent) return;
    if (e.type === 'entity.too.large')
      return sendError(res, 413, {
        code: 'payload_too_large',
        message: 'the request body is over the limit',
      });
    if (e.type === 'entity.parse.failed')
      return sendError(res, 400, {
        code: 'malformed_json',
        message: 'the request body is not valid JSON',
      });
    if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported') {
      return sendError(res, 415, {
        code: 'unsupported_media_type',
        message: 'send the body as UTF-8 JSON',
      });
    }
    // Refused by jsonBody.ts's verifyBody before the body was parsed.
    if (e.type === 'encoding.invalid_utf8' || e.type === 'entity.too_deep') {
      const { field } = error as { field?: string };
      return sendError(res, 400, {
        code: 'validation_error',
        message: e.message ?? 'the body is refused',
        field,
      });
    }
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      return sendError(res, e.status, {
        code: 'validation_error',
        message: 'the request could not be read',
      });
    }
    // Already reported where the connection failed (the pool's error hook); not a bug of ours.
    if (isDatabaseUnavailable(error)) return sendDatabaseUnavailable(res);
    log(error);
    sendError(res, 500, { code: 'internal_error', message: 'something went wrong on our side' });
  };
