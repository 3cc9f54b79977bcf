import { Router, type Request, type Response } from 'express';
import type { Kysely } from 'kysely';
import type { z } from 'zod';
import { isId, type IdKind } from '../../../domain/ids.ts';
import { formatPosition, parsePosition, type Position } from '../../../domain/recordedEvent.ts';
import { defaultTopN } from '../../../domain/leaderboard.ts';
import type { Order } from '../../../domain/order.ts';
import { periodIdOf, periodStartOf } from '../../../domain/periods.ts';
import { memberAsOf, streamReader } from '../../audit/history.ts';
import type { Incentives, Outcome } from '../../../application/incentives.ts';
import { pointsExpiryView, type Queries } from '../../../projections/queries.ts';
import type { CommandContext } from '../../../application/commandHandler.ts';
import type { Database } from '../../db/schema.ts';
import { createApiKey, listApiKeys, revokeProgramKey } from '../../db/apiKeyStore.ts';
import { canAccessProgram, principalOf, type ApiKeyVerifier } from './auth.ts';
import { answerAtomically, idempotencyOf } from './idempotency.ts';
import { rejectionStatus, sendError } from './errors.ts';
import * as s from './schemas.ts';

export type RouteDeps = {
  db: Kysely<Database>;
  incentives: Incentives;
  queries: Queries;
  /**
   * Resolves true once every projection a read depends on has handled `position` (the read
   * models, and the policy reactor with the events it appended in answer), false on timeout.
   */
  waitForReadModels: (position: Position) => Promise<boolean>;
  /** This process's key check: a revoked key is forgotten here at once. */
  keys: ApiKeyVerifier;
};

/** Parses with a schema or answers 400 naming the first field at fault. */
const parse = <T>(schema: z.ZodType<T>, value: unknown, res: Response): T | undefined => {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const keys = 'keys' in issue && Array.isArray(issue.keys) ? issue.keys : [];
  const field = [...issue.path.map(String), ...keys.slice(0, 1)].join('.') || undefined;
  const message =
    issue.code === 'unrecognized_keys'
      ? `unknown field ${keys.join(', ')}`
      : `${field ?? 'body'}: ${issue.message}`;
  sendError(res, 400, 'validation_error', message, field);
  return undefined;
};

const contextOf = (req: Request, res: Response, programId: string | null): CommandContext => {
  const idempotency = idempotencyOf(res);
  return {
    programId,
    actor: principalOf(res).keyId,
    correlationId: (res.locals.requestId as string | undefined) ?? 'unknown',
    causationId: null,
    ...(idempotency && { idempotency }),
  };
};

export const programOf = (res: Response): string => res.locals.programId as string;

/** Validates an id path parameter: malformed is a 400 naming it. */
/**
 * An ISO-8601 date or date-time (`2026-12-01`, `2026-12-01T09:30:00Z`, with an offset or
 * fraction). Date.parse alone takes `1` or `tomorrow 12:00` in some form, and a caller who sent
 * those meant something else.
 */
const isoTimestamp =
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)?)?$/;

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
  sendError(res, 400, 'validation_error', `${field} is not a valid ${kind} id`, field);
  return undefined;
};

/** Parses with a schema or answers 400 naming the first field at fault. */
export const parseOr400 = <T>(schema: z.ZodType<T>, value: unknown, res: Response): T | undefined =>
  parse(schema, value, res);

/**
 * Runs before every route under a program: the id must be well formed, the key must reach the
 * program (403), and the program must exist (404). Sets res.locals.programId.
 */
export const programGuard = (incentives: Incentives): Router => {
  const router = Router();
  router.use('/programs/:programId', async (req, res, next) => {
    const programId = idParam(req, res, 'programId', 'program');
    if (!programId) return;
    if (!canAccessProgram(principalOf(res), programId))
      return sendError(res, 403, 'forbidden', 'this key belongs to another program');
    if (!(await incentives.programExists(programId)))
      return sendError(res, 404, 'program_not_found', `no program ${programId}`, 'program_id');
    res.locals.programId = programId;
    next();
  });
  return router;
};

/** Sends a command's outcome: the view on success (with the position it wrote), the refusal otherwise. */
const reply = <T>(
  res: Response,
  outcome: Outcome<T>,
  status: number,
  view: (value: T) => object,
): void => {
  if (!outcome.ok) {
    // A 503 refusal is a wait, not a verdict: the same request succeeds in a moment.
    if (rejectionStatus[outcome.rejection] === 503) res.set('Retry-After', '1');
    return sendError(
      res,
      rejectionStatus[outcome.rejection],
      outcome.rejection,
      outcome.message,
      outcome.field,
      outcome.memberId === undefined ? {} : { memberId: outcome.memberId },
    );
  }
  const body = view(outcome.value);
  res
    .status(status)
    .json(outcome.position ? { ...body, position: formatPosition(outcome.position) } : body);
};

const snakeTiers = (tiers: readonly { name: string; minPoints: number }[]) =>
  tiers.map((t) => ({ name: t.name, min_points: t.minPoints }));

export const routes = (deps: RouteDeps): Router => {
  const { incentives, queries, db } = deps;
  const reader = streamReader(db);
  const router = Router();

  /**
   * Honours ?after_position: waits (bounded) until the projections have caught up, and says in
   * `Incentable-Position-Reached` whether they had (`false`: the answer may be stale; still 200).
   */
  const readAfter = async (req: Request, res: Response): Promise<boolean> => {
    const raw = req.query.after_position;
    if (raw === undefined) return true;
    const position = typeof raw === 'string' ? parsePosition(raw) : null;
    if (!position) {
      sendError(
        res,
        400,
        'validation_error',
        'after_position must be a position returned by a command',
        'after_position',
      );
      return false;
    }
    const reached = await deps.waitForReadModels(position);
    res.set('Incentable-Position-Reached', reached ? 'true' : 'false');
    return true;
  };

  router.post('/programs', async (req, res) => {
    if (principalOf(res).kind !== 'root')
      return sendError(res, 403, 'forbidden', 'only the root key creates programs');
    const body = parse(s.createProgramSchema, req.body, res);
    if (!body) return;
    const outcome = await incentives.createProgram(
      {
        name: body.name,
        tiers: body.tiers.map((t) => ({ name: t.name, minPoints: t.min_points })),
        tierBasis: body.tier_basis,
        pointsExpiryDays: null,
        pointsExpiryMode: 'inactivity',
        ...s.pointsExpiryChanges(body),
        timezone: body.timezone,
        notificationEmail: body.notification_email,
      },
      contextOf(req, res, null),
    );
    reply(res, outcome, 201, ({ events }) => {
      const created = events[0]!;
      if (created.type !== 'ProgramCreated') return {};
      const d = created.data;
      return {
        id: d.programId,
        name: d.name,
        tiers: snakeTiers(d.tiers),
        tier_basis: d.tierBasis,
        ...pointsExpiryView(d.pointsExpiryDays, d.pointsExpiryMode),
        timezone: d.timezone,
        notification_email: d.notificationEmail,
        created_at: d.at,
      };
    });
  });

  router.get('/programs/:programId', async (req, res) => {
    if (!(await readAfter(req, res))) return;
    const { state } = await incentives.loadProgram(programOf(res));
    if (!state.exists) return sendError(res, 404, 'program_not_found', 'no such program');
    res.json({
      id: state.programId,
      name: state.name,
      tiers: snakeTiers(state.tiers),
      tier_basis: state.tierBasis,
      ...pointsExpiryView(state.pointsExpiryDays, state.pointsExpiryMode),
      timezone: state.timezone,
      notification_email: state.notificationEmail,
    });
  });

  router.patch('/programs/:programId', async (req, res) => {
    const body = parse(s.updateProgramSchema, req.body, res);
    if (!body) return;
    const programId = programOf(res);
    const outcome = await incentives.updateProgram(
      programId,
      {
        ...(body.name !== undefined && { name: body.name }),
        ...(body.tiers !== undefined && {
          tiers: body.tiers.map((t) => ({ name: t.name, minPoints: t.min_points })),
        }),
        ...(body.tier_basis !== undefined && { tierBasis: body.tier_basis }),
        ...s.pointsExpiryChanges(body),
        ...(body.timezone !== undefined && { timezone: body.timezone }),
        ...(body.notification_email !== undefined && {
          notificationEmail: body.notification_email,
        }),
      },
      contextOf(req, res, programId),
    );
    reply(res, outcome, 200, ({ state }) =>
      state.exists
        ? {
            id: state.programId,
            name: state.name,
            tiers: snakeTiers(state.tiers),
            tier_basis: state.tierBasis,
            ...pointsExpiryView(state.pointsExpiryDays, state.pointsExpiryMode),
            timezone: state.timezone,
            notification_email: state.notificationEmail,
          }
        : {},
    );
  });

  router.post('/programs/:programId/api-keys', async (req, res) => {
    if (principalOf(res).kind !== 'root')
      return sendError(res, 403, 'forbidden', 'only the root key creates program keys');
    const body = parse(s.createApiKeySchema, req.body, res);
    if (!body) return;
    await answerAtomically(db, res, async (tx) => {
      const key = await createApiKey(tx, { programId: programOf(res), label: body.label ?? null });
      return {
        status: 201,
        body: { id: key.id, key: key.key, program_id: programOf(res) },
        sensitive: true,
      };
    });
  });

  // A program key may list and revoke its own program's keys (itself included), as the root key
  // may any program's: revoking only takes access away. Creating one stays with the root key.
  router.get('/programs/:programId/api-keys', async (_req, res) => {
    const keys = await listApiKeys(db, programOf(res));
    res.json({
      data: keys.map((k) => ({
        id: k.id,
        label: k.label,
        created_at: k.createdAt,
        last_used_at: k.lastUsedAt,
        revoked_at: k.revokedAt,
      })),
    });
  });

  router.delete('/programs/:programId/api-keys/:keyId', async (req, res) => {
    const keyId = idParam(req, res, 'keyId', 'apiKey');
    if (!keyId) return;
    if ((await revokeProgramKey(db, programOf(res), keyId)) === 'not_found')
      return sendError(res, 404, 'api_key_not_found', `no key ${keyId} in this program`, 'key_id');
    deps.keys.forget(keyId);
    res.status(204).end();
  });

  // Members
  router.post('/programs/:programId/members', async (req, res) => {
    const body = parse(s.createMemberSchema, req.body, res);
    if (!body) return;
    const programId = programOf(res);
    const outcome = await incentives.registerMember(
      programId,
      {
        email: body.email,
        name: body.name,
        externalId: body.external_id ?? null,
        attributes: body.attributes ?? {},
      },
      contextOf(req, res, programId),
    );
    reply(res, outcome, 201, ({ events }) => {
      const e = events[0]!;
      if (e.type !== 'MemberRegistered') return {};
      const d = e.data;
      return {
        id: d.memberId,
        email: d.email,
        name: d.name,
        external_id: d.externalId,
        attributes: d.attributes,
        tier: d.tier,
        balance: 0,
        lifetime_points: 0,
        status: 'active',
        created_at: d.at,
      };
    });
  });

  router.get('/programs/:programId/members', async (req, res) => {
    const query = parse(s.listQuerySchema, req.query, res);
    if (!query || !(await readAfter(req, res))) return;
    res.json(
      await queries.members(programOf(res), {
        limit: query.limit,
        ...(query.cursor !== undefined && { cursor: query.cursor }),
        ...(query.tier !== undefined && { tier: query.tier }),
        ...(query.email !== undefined && { email: query.email }),
        ...(query.external_id !== undefined && { externalId: query.external_id }),
        ...(query.q !== undefined && { q: query.q }),
      }),
    );
  });

  router.get('/programs/:programId/members/:memberId', async (req, res) => {
    const memberId = idParam(req, res, 'memberId', 'member');
    if (!memberId) return;
    const query = parse(s.memberQuerySchema, req.query, res);
    if (!query || !(await readAfter(req, res))) return;
    if (query.as_of !== undefined) {
      const at = isoTimestamp.test(query.as_of) ? Date.parse(query.as_of) : Number.NaN;
      if (Number.isNaN(at))
        return sendError(
          res,
          400,
          'validation_error',
          'as_of must be an ISO-8601 timestamp',
          'as_of',
        );
      const past = await memberAsOf(reader, programOf(res), memberId, new Date(at));
      if (!past)
        return sendError(
          res,
          404,
          'member_not_found',
          `no member ${memberId} at ${query.as_of}`,
          'member_id',
        );
      return res.json(past);
    }
    const view = await queries.member(programOf(res), memberId);
    if (!view) return sendError(res, 404, 'member_not_found', `no member ${memberId}`, 'member_id');
    res.json(view);
  });

  router.patch('/programs/:programId/members/:memberId', async (req, res) => {
    const memberId = idParam(req, res, 'memberId', 'member');
    if (!memberId) return;
    const body = parse(s.updateMemberSchema, req.body, res);
    if (!body) return;
    const programId = programOf(res);
    const outcome = await incentives.updateMember(
      programId,
      memberId,
      {
        ...(body.email !== undefined && { email: body.email }),
        ...(body.name !== undefined && { name: body.name }),
        ...(body.external_id !== undefined && { externalId: body.external_id }),
        ...(body.attributes !== undefined && { attributes: body.attributes }),
      },
      contextOf(req, res, programId),
      body.tier !== undefined || body.tier_locked_until !== undefined
        ? {
            ...(body.tier !== undefined && { tier: body.tier }),
            ...(body.tier_locked_until !== undefined && {
              lockedUntil:
                body.tier_locked_until === null
                  ? null
                  : new Date(body.tier_locked_until).toISOString(),
            }),
          }
        : undefined,
    );
    reply(res, outcome, 200, ({ state }) => ({
      id: memberId,
      tier: state.tier,
      tier_locked_until: state.exists ? state.tierLockedUntil : null,
      status: state.active ? 'active' : 'deactivated',
    }));
  });

  router.post('/programs/:programId/members/:memberId/deactivate', async (req, res) => {
    const memberId = idParam(req, res, 'memberId', 'member');
    if (!memberId || !parse(s.emptySchema, req.body, res)) return;
    const programId = programOf(res);
    const outcome = await incentives.deactivateMember(
      programId,
      memberId,
      contextOf(req, res, programId),
    );
    reply(res, outcome, 200, () => ({ id: memberId, status: 'deactivated' }));
  });

  router.post('/programs/:programId/members/:memberId/reactivate', async (req, res) => {
    const memberId = idParam(req, res, 'memberId', 'member');
    if (!memberId || !parse(s.emptySchema, req.body, res)) return;
    const programId = programOf(res);
    const outcome = await incentives.reactivateMember(
      programId,
      memberId,
      contextOf(req, res, programId),
    );
    reply(res, outcome, 200, () => ({ id: memberId, status: 'active' }));
  });

  router.post('/programs/:programId/transactions/:transactionId/reverse', async (req, res) => {
    const transactionId = idParam(req, res, 'transactionId', 'transaction');
    if (!transactionId) return;
    const body = parse(s.reverseTransactionSchema, req.body, res);
    if (!body) return;
    const programId = programOf(res);
    const outcome = await incentives.reverseTransaction(
      programId,
      transactionId,
      { reason: body.reason, allowNegative: body.allow_negative },
      contextOf(req, res, programId),
    );
    reply(res, outcome, 201, (value) => {
      const e = value?.events[0];
      if (!e || e.type !== 'PointsReversed') return {};
      const d = e.data;
      return {
        transaction_id: d.transactionId,
        reversal_of: d.reversalOf,
        reversed: d.reversed,
        member_id: d.memberId,
        points: d.points,
        reason: d.reason,
        new_balance: d.newBalance,
        lifetime_points: d.lifetimePoints,
        created_at: d.at,
      };
    });
  });

  // Points
  for (const direction of ['award', 'deduct'] as const) {
    router.post(`/programs/:programId/members/:memberId/points/${direction}`, async (req, res) => {
      const memberId = idParam(req, res, 'memberId', 'member');
      if (!memberId) return;
      const body = parse(s.pointsSchema, req.body, res);
      if (!body) return;
      const programId = programOf(res);
      const outcome = await incentives.movePoints(
        programId,
        memberId,
        { direction, points: body.points, reason: body.reason, reference: body.reference ?? null },
        contextOf(req, res, programId),
      );
      reply(res, outcome, 201, (value) => {
        const e = value?.events[0];
        if (!e || (e.type !== 'PointsAwarded' && e.type !== 'PointsDeducted')) return {};
        const d = e.data;
        return {
          transaction_id: d.transactionId,
          member_id: d.memberId,
          points: d.points,
          reason: d.reason,
          reference: d.reference,
          new_balance: d.newBalance,
          created_at: d.at,
        };
      });
    });
  }

  router.get('/programs/:programId/members/:memberId/transactions', async (req, res) => {
    const memberId = idParam(req, res, 'memberId', 'member');
    if (!memberId) return;
    const query = parse(s.listQuerySchema, req.query, res);
    if (!query || !(await readAfter(req, res))) return;
    if (!(await queries.member(programOf(res), memberId)))
      return sendError(res, 404, 'member_not_found', `no member ${memberId}`, 'member_id');
    res.json(
      await queries.ledger(programOf(res), memberId, {
        limit: query.limit,
        ...(query.cursor !== undefined && { cursor: query.cursor }),
      }),
    );
  });

  // Rewards and orders
  router.post('/programs/:programId/rewards', async (req, res) => {
    const body = parse(s.createRewardSchema, req.body, res);
    if (!body) return;
    const programId = programOf(res);
    const outcome = await incentives.createReward(
      programId,
      { name: body.name, pointsCost: body.points_cost, stock: body.stock, kind: body.kind },
      contextOf(req, res, programId),
    );
    reply(res, outcome, 201, ({ events }) => {
      const e = events[0]!;
      if (e.type !== 'RewardCreated') return {};
      const d = e.data;
      return {
        id: d.rewardId,
        name: d.name,
        points_cost: d.pointsCost,
        stock: d.stock,
        kind: d.kind,
        active: true,
        created_at: d.at,
      };
    });
  });

  router.get('/programs/:programId/rewards', async (req, res) => {
    const query = parse(s.listQuerySchema, req.query, res);
    if (!query || !(await readAfter(req, res))) return;
    res.json(
      await queries.rewards(programOf(res), {
        limit: query.limit,
        ...(query.cursor !== undefined && { cursor: query.cursor }),
      }),
    );
  });

  router.get('/programs/:programId/rewards/:rewardId', async (req, res) => {
    const rewardId = idParam(req, res, 'rewardId', 'reward');
    if (!rewardId || !(await readAfter(req, res))) return;
    const view = await queries.reward(programOf(res), rewardId);
    if (!view) return sendError(res, 404, 'reward_not_found', `no reward ${rewardId}`, 'reward_id');
    res.json(view);
  });

  router.patch('/programs/:programId/rewards/:rewardId', async (req, res) => {
    const rewardId = idParam(req, res, 'rewardId', 'reward');
    if (!rewardId) return;
    const body = parse(s.updateRewardSchema, req.body, res);
    if (!body) return;
    const programId = programOf(res);
    const outcome = await incentives.changeReward(
      programId,
      rewardId,
      {
        ...(body.name !== undefined && { name: body.name }),
        ...(body.points_cost !== undefined && { pointsCost: body.points_cost }),
        ...(body.stock !== undefined && { stock: body.stock }),
        ...(body.active !== undefined && { active: body.active }),
      },
      contextOf(req, res, programId),
    );
    reply(res, outcome, 200, ({ state }) =>
      state.exists
        ? {
            id: rewardId,
            name: state.name,
            points_cost: state.pointsCost,
            stock: state.stock,
            kind: state.kind,
            active: state.active,
          }
        : {},
    );
  });

  router.post('/programs/:programId/members/:memberId/redemptions', async (req, res) => {
    const memberId = idParam(req, res, 'memberId', 'member');
    if (!memberId) return;
    const body = parse(s.redemptionSchema, req.body, res);
    if (!body) return;
    if (!isId('reward', body.reward_id))
      return sendError(
        res,
        400,
        'validation_error',
        'reward_id is not a valid reward id',
        'reward_id',
      );
    const programId = programOf(res);
    const outcome = await incentives.redeem(
      programId,
      memberId,
      body.reward_id,
      contextOf(req, res, programId),
    );
    reply(res, outcome, 201, (v) => ({
      id: v.orderId,
      member_id: v.memberId,
      reward_id: v.rewardId,
      reward_name: v.rewardName,
      points_spent: v.pointsSpent,
      status: 'redeemed',
      transaction_id: v.transactionId,
      new_balance: v.newBalance,
    }));
  });

  // Orders, oldest first: a fulfilment queue by status (docs/api.md, "Orders").
  router.get('/programs/:programId/orders', async (req, res) => {
    const query = parse(s.ordersQuerySchema, req.query, res);
    if (!query || !(await readAfter(req, res))) return;
    res.json(
      await queries.orders(programOf(res), {
        limit: query.limit,
        ...(query.cursor !== undefined && { cursor: query.cursor }),
        ...(query.status !== undefined && { status: query.status }),
        ...(query.member_id !== undefined && { memberId: query.member_id }),
      }),
    );
  });

  router.get('/programs/:programId/members/:memberId/orders', async (req, res) => {
    const memberId = idParam(req, res, 'memberId', 'member');
    if (!memberId) return;
    const query = parse(s.memberOrdersQuerySchema, req.query, res);
    if (!query || !(await readAfter(req, res))) return;
    if (!(await queries.member(programOf(res), memberId)))
      return sendError(res, 404, 'member_not_found', `no member ${memberId}`, 'member_id');
    res.json(
      await queries.orders(programOf(res), {
        limit: query.limit,
        memberId,
        ...(query.cursor !== undefined && { cursor: query.cursor }),
        ...(query.status !== undefined && { status: query.status }),
      }),
    );
  });

  router.get('/programs/:programId/orders/:orderId', async (req, res) => {
    const orderId = idParam(req, res, 'orderId', 'order');
    if (!orderId || !(await readAfter(req, res))) return;
    const view = await queries.order(programOf(res), orderId);
    if (!view) return sendError(res, 404, 'order_not_found', `no order ${orderId}`, 'order_id');
    res.json(view);
  });

  const orderState = (orderId: string) => (value: { state: Order }) =>
    value.state.exists
      ? {
          id: orderId,
          status: value.state.status,
          member_id: value.state.memberId,
          reward_id: value.state.rewardId,
        }
      : {};

  router.post('/programs/:programId/orders/:orderId/ship', async (req, res) => {
    const orderId = idParam(req, res, 'orderId', 'order');
    if (!orderId) return;
    const body = parse(s.shipSchema, req.body, res);
    if (!body) return;
    const programId = programOf(res);
    const outcome = await incentives.shipOrder(
      programId,
      orderId,
      { carrier: body.carrier, trackingNumber: body.tracking_number },
      contextOf(req, res, programId),
    );
    reply(res, outcome, 200, (v) => ({
      ...orderState(orderId)(v),
      carrier: body.carrier,
      tracking_number: body.tracking_number,
    }));
  });

  router.post('/programs/:programId/orders/:orderId/deliver', async (req, res) => {
    const orderId = idParam(req, res, 'orderId', 'order');
    if (!orderId || !parse(s.emptySchema, req.body, res)) return;
    const programId = programOf(res);
    reply(
      res,
      await incentives.deliverOrder(programId, orderId, contextOf(req, res, programId)),
      200,
      orderState(orderId),
    );
  });

  router.post('/programs/:programId/orders/:orderId/cancel', async (req, res) => {
    const orderId = idParam(req, res, 'orderId', 'order');
    if (!orderId) return;
    const body = parse(s.cancelSchema, req.body, res);
    if (!body) return;
    const programId = programOf(res);
    const outcome = await incentives.cancelOrder(
      programId,
      orderId,
      body.reason ?? 'Cancelled by the program',
      contextOf(req, res, programId),
    );
    reply(res, outcome, 200, orderState(orderId));
  });

  // Leaderboards
  router.post('/programs/:programId/leaderboards', async (req, res) => {
    const body = parse(s.createLeaderboardSchema, req.body, res);
    if (!body) return;
    const programId = programOf(res);
    const outcome = await incentives.createLeaderboard(
      programId,
      { name: body.name, period: body.period, topN: body.top_n },
      contextOf(req, res, programId),
    );
    reply(res, outcome, 201, ({ events }) => {
      const e = events[0]!;
      if (e.type !== 'LeaderboardCreated') return {};
      const d = e.data;
      return {
        id: d.leaderboardId,
        name: d.name,
        period: d.period,
        timezone: d.timezone,
        top_n: d.topN ?? defaultTopN,
        period_start: d.periodStart,
        period_end: d.periodEnd,
        created_at: d.at,
      };
    });
  });

  router.get('/programs/:programId/leaderboards', async (req, res) => {
    if (!(await readAfter(req, res))) return;
    res.json({ data: await queries.leaderboards(programOf(res)) });
  });

  const withLeaderboard = async (req: Request, res: Response) => {
    const leaderboardId = idParam(req, res, 'leaderboardId', 'leaderboard');
    if (!leaderboardId || !(await readAfter(req, res))) return undefined;
    const view = await queries.leaderboard(programOf(res), leaderboardId);
    if (!view)
      sendError(
        res,
        404,
        'leaderboard_not_found',
        `no leaderboard ${leaderboardId}`,
        'leaderboard_id',
      );
    return view ?? undefined;
  };

  router.get('/programs/:programId/leaderboards/:leaderboardId', async (req, res) => {
    const view = await withLeaderboard(req, res);
    if (view) res.json(view);
  });

  router.get('/programs/:programId/leaderboards/:leaderboardId/standings', async (req, res) => {
    const view = await withLeaderboard(req, res);
    if (view)
      res.json({
        leaderboard_id: view.id,
        period_start: view.period_start,
        period_end: view.period_end,
        standings: await queries.standings(view.id),
      });
  });

  router.get('/programs/:programId/leaderboards/:leaderboardId/periods', async (req, res) => {
    const view = await withLeaderboard(req, res);
    if (view) res.json({ leaderboard_id: view.id, data: await queries.periods(view.id) });
  });

  router.get(
    '/programs/:programId/leaderboards/:leaderboardId/periods/:periodId/standings',
    async (req, res) => {
      const query = parse(s.pageQuerySchema, req.query, res);
      if (!query) return;
      const view = await withLeaderboard(req, res);
      if (!view) return;
      const periodId = req.params.periodId ?? '';
      const periodStart = periodStartOf(periodId);
      if (!periodStart)
        return sendError(
          res,
          400,
          'validation_error',
          'period_id is the period_id of an ended period, e.g. 20250303T000000.000Z',
          'period_id',
        );
      const period = await queries.period(view.id, periodStart);
      if (!period)
        return sendError(
          res,
          404,
          'period_not_found',
          `no ended period ${periodId} on leaderboard ${view.id}`,
          'period_id',
        );
      const { standings: _topTen, ...ended } = period;
      res.json({
        leaderboard_id: view.id,
        ...ended,
        ...(await queries.periodStandings(view.id, periodStart, {
          limit: query.limit,
          ...(query.cursor !== undefined && { cursor: query.cursor }),
        })),
      });
    },
  );

  router.post('/programs/:programId/leaderboards/:leaderboardId/close-period', async (req, res) => {
    const leaderboardId = idParam(req, res, 'leaderboardId', 'leaderboard');
    if (!leaderboardId || !parse(s.emptySchema, req.body, res)) return;
    const programId = programOf(res);
    const outcome = await incentives.closePeriod(
      programId,
      leaderboardId,
      true,
      contextOf(req, res, programId),
    );
    reply(res, outcome, 200, ({ events, state }) => {
      const endedNow = events.find((e) => e.type === 'PeriodEnded');
      // Nothing ended: a repeat of the last close (within a minute, no score since) answers
      // with the period that close ended.
      const ended =
        endedNow?.type === 'PeriodEnded'
          ? endedNow.data
          : events.length === 0 && state.exists
            ? state.lastEnded
            : null;
      return {
        leaderboard_id: leaderboardId,
        ended: ended
          ? {
              period_id: periodIdOf(ended.periodStart),
              period_start: ended.periodStart,
              period_end: ended.periodEnd,
              standings: ended.standings.map((x) => ({
                position: x.position,
                member_id: x.memberId,
                points: x.points,
              })),
            }
          : null,
        current_period: state.exists
          ? { period_start: state.periodStart, period_end: state.periodEnd }
          : null,
      };
    });
  });

  return router;
};
