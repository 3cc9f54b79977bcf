import type { Request, Response } from 'express';
import type { z } from 'zod';
import type { Incentives, Outcome } from '../../../application/incentives.ts';
import type { Queries } from '../../../projections/queries.ts';
import type { CommandContext } from '../../../application/commandHandler.ts';
import { isId, type IdKind } from '../../../domain/ids.ts';
import { formatPosition, parsePosition, type Position } from '../../../domain/recordedEvent.ts';
import { principalOf } from './auth.ts';
import { rejectionStatus, sendError } from './errors.ts';
import { idempotencyOf } from './idempotency.ts';
import { traceOf } from '../../telemetry/httpSpans.ts';

/** Parses with a schema or answers 400 naming the first field at fault. */
export const parse = <T>(schema: z.ZodType<T>, value: unknown, res: Response): T | undefined => {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  // A failed parse carries at least one issue; the fallback only satisfies the type.
  const issue = result.error.issues[0] ?? { code: 'custom', path: [], message: 'is not valid' };
  const keys = 'keys' in issue && Array.isArray(issue.keys) ? issue.keys : [];
  const field = [...issue.path.map(String), ...keys.slice(0, 1)].join('.') || undefined;
  const message =
    issue.code === 'unrecognized_keys'
      ? `unknown field ${keys.join(', ')}`
      : `${field ?? 'body'}: ${issue.message}`;
  sendError(res, 400, { code: 'validation_error', message, field });
  return undefined;
};

/** Validates an id path parameter: malformed is a 400 naming it. */
export const idParam = (
  req: Request,
  res: Response,
  name: string,
  kind: IdKind,
): string | undefined => {
  const value = req.params[name];
  if (typeof value === 'string' && isId(kind, value)) return value;
  // The route names its parameter in camelCase; the wire (and so the error) in snake_case.
  const field = name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
  sendError(res, 400, {
    code: 'validation_error',
    message: `${field} is not a valid ${kind} id`,
    field,
  });
  return undefined;
};

/** The program the route runs under, as programGuard checked it. */
export const programOf = (res: Response): string => res.locals.programId as string;

/** Who asks, under which request and Idempotency-Key: what every command records. */
export const contextOf = (res: Response, programId: string | null): CommandContext => {
  const idempotency = idempotencyOf(res);
  return {
    programId,
    actor: principalOf(res).keyId,
    correlationId: (res.locals.requestId as string | undefined) ?? 'unknown',
    causationId: null,
    ...(idempotency && { idempotency }),
    trace: traceOf(res),
  };
};

/** Sends a command's outcome: the view on success (with the position it wrote), the refusal otherwise. */
export const reply = <T>(
  res: Response,
  outcome: Outcome<T>,
  status: number,
  view: (value: T) => object,
): void => {
  if (!outcome.ok) {
    // A 503 refusal is a wait, not a verdict: the same request succeeds in a moment.
    if (rejectionStatus[outcome.rejection] === 503) res.set('Retry-After', '1');
    return sendError(res, rejectionStatus[outcome.rejection], {
      code: outcome.rejection,
      message: outcome.message,
      field: outcome.field,
      memberId: outcome.memberId,
    });
  }
  const body = view(outcome.value);
  res
    .status(status)
    .json(outcome.position ? { ...body, position: formatPosition(outcome.position) } : body);
};

/**
 * Resolves true once every projection a read depends on has handled `position` (the read
 * models, and the policy reactor with the events it appended in answer), false on timeout.
 */
export type WaitForReadModels = (position: Position) => Promise<boolean>;

/**
 * Honours ?after_position: waits (bounded) until the projections have caught up, and says in
 * `Incentable-Position-Reached` whether they had (`false`: the answer may be stale; still 200).
 * False when it answered 400 itself.
 */
export const readAfter =
  (waitForReadModels: WaitForReadModels) =>
  async (req: Request, res: Response): Promise<boolean> => {
    const raw = req.query.after_position;
    if (raw === undefined) return true;
    const position = typeof raw === 'string' ? parsePosition(raw) : null;
    if (!position) {
      sendError(res, 400, {
        code: 'validation_error',
        message: 'after_position must be a position returned by a command',
        field: 'after_position',
      });
      return false;
    }
    const reached = await waitForReadModels(position);
    res.set('Incentable-Position-Reached', reached ? 'true' : 'false');
    return true;
  };

/** What the routers of a program's resources read and command with. */
export type ResourceRouteDeps = {
  incentives: Incentives;
  queries: Queries;
  waitForReadModels: WaitForReadModels;
};
