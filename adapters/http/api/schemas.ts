import { z } from 'zod';
import { isId } from '../../../domain/ids.ts';
import type { OrderStatus } from '../../../domain/order.ts';
import type { Incentives } from '../../../application/incentives.ts';
import type { ProgramChanges, ProgramSettings, Tier } from '../../../domain/program.ts';
import { maxStock, type RewardChanges } from '../../../domain/reward.ts';
import {
  hasControlCharacters,
  isWellFormedText,
  maxPointsPerCommand,
} from '../../../domain/validation.ts';

/**
 * Request schemas: the single source for validation and for /openapi.json. Objects are strict
 * (an unknown field is a 400 naming it); strings refuse control characters; numbers are integers
 * within the domain's bounds, so bad input never reaches a decider as the wrong type.
 *
 * Each `…Schema` is the wire shape /openapi.json documents; each `…Body` / `…Query` is the same
 * schema transformed into the input the application takes, typed by it, so a route passes the
 * parsed value on as it is and a change on either side fails to compile here.
 *
 * The limits are the domain's (`maxPointsPerCommand`, `maxStock`, `hasControlCharacters`). The
 * lengths here count UTF-16 code units where the domain counts code points: the edge is the
 * stricter of the two for text outside the BMP, and stays so, as the API has always answered.
 */

/**
 * Every string the API reads, in a body or a query, starts here: no NUL and no unpaired surrogate
 * (PostgreSQL can store neither, and a query that carries one fails), so such input is a 400
 * naming the field and never a 500.
 */
export const wireString = () =>
  z.string().refine(isWellFormedText, 'must not contain NUL or an unpaired surrogate');

const text = (max: number) =>
  wireString()
    .min(1)
    .max(max)
    .refine((value) => !hasControlCharacters(value), 'must not contain control characters')
    .refine((value) => value.trim().length > 0, 'must not be blank');
const points = z.number().int().min(1).max(maxPointsPerCommand);
const email = wireString().max(254).pipe(z.email());

export const tierSchema = z.strictObject({
  name: text(100),
  min_points: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});

const pointsExpiryDays = z.number().int().min(1).max(3650);

/** `points_expiry`; `points_expiry_days: N` is the older spelling of the inactivity mode. */
export const pointsExpirySchema = z
  .strictObject({ mode: z.enum(['inactivity', 'per_award']), days: pointsExpiryDays })
  .meta({
    id: 'PointsExpiry',
    description:
      'inactivity: the whole balance expires `days` after the last award, deduction or redemption; ' +
      'per_award: each award (and each refund) expires `days` after its own time, spending takes the oldest points first',
  });

/**
 * The two spellings of one setting: a body may carry both only when they agree (as GET program
 * returns them, so a read-modify-write round trip passes): `points_expiry_days` N with
 * `{"mode": "inactivity", "days": N}`, and null with null or with a `per_award` setting.
 */
const oneExpirySpelling = (
  body: {
    points_expiry?: { mode: 'inactivity' | 'per_award'; days: number } | null | undefined;
    points_expiry_days?: number | null | undefined;
  },
  context: z.RefinementCtx,
) => {
  if (body.points_expiry === undefined || body.points_expiry_days === undefined) return;
  const implied = body.points_expiry?.mode === 'inactivity' ? body.points_expiry.days : null;
  if (body.points_expiry_days !== implied)
    context.addIssue({
      code: 'custom',
      path: ['points_expiry'],
      message:
        'points_expiry and points_expiry_days (its older spelling of the inactivity mode) disagree; send one',
    });
};

export const createProgramSchema = z
  .strictObject({
    name: text(200),
    tiers: z.array(tierSchema).max(50).default([]),
    tier_basis: z.enum(['lifetime', 'balance']).default('lifetime'),
    points_expiry: pointsExpirySchema.nullable().optional(),
    points_expiry_days: pointsExpiryDays
      .nullable()
      .optional()
      .meta({ description: 'older spelling of points_expiry {"mode": "inactivity", "days": N}' }),
    timezone: text(64).default('UTC'),
    notification_email: email,
  })
  .superRefine(oneExpirySpelling)
  .meta({ id: 'CreateProgram' });

export const updateProgramSchema = z
  .strictObject({
    name: text(200),
    tiers: z.array(tierSchema).max(50),
    tier_basis: z.enum(['lifetime', 'balance']),
    points_expiry: pointsExpirySchema.nullable(),
    points_expiry_days: pointsExpiryDays
      .nullable()
      .meta({ description: 'older spelling of points_expiry {"mode": "inactivity", "days": N}' }),
    timezone: text(64),
    notification_email: email,
  })
  .partial()
  .superRefine(oneExpirySpelling)
  .meta({ id: 'UpdateProgram' });

/**
 * The program settings one of the two spellings asks for; nothing when the body has neither.
 * `points_expiry: null` and `points_expiry_days: null` both turn expiry off.
 */
export const pointsExpiryChanges = (body: {
  points_expiry?: z.infer<typeof pointsExpirySchema> | null;
  points_expiry_days?: number | null;
}): { pointsExpiryDays?: number | null; pointsExpiryMode?: 'inactivity' | 'per_award' } => {
  if (body.points_expiry !== undefined)
    return body.points_expiry === null
      ? { pointsExpiryDays: null }
      : { pointsExpiryDays: body.points_expiry.days, pointsExpiryMode: body.points_expiry.mode };
  if (body.points_expiry_days === null) return { pointsExpiryDays: null };
  if (body.points_expiry_days !== undefined)
    return { pointsExpiryDays: body.points_expiry_days, pointsExpiryMode: 'inactivity' };
  return {};
};

export const createApiKeySchema = z
  .strictObject({ label: text(200).optional() })
  .meta({ id: 'CreateApiKey' });

const attributeValue = z.union([wireString().max(1000), z.number(), z.boolean(), z.null()]);
const attributes = z
  .record(wireString().min(1).max(100), attributeValue)
  .refine((a) => Object.keys(a).length <= 50, 'at most 50 attributes');

export const createMemberSchema = z
  .strictObject({
    email,
    name: text(200),
    external_id: text(200).nullable().optional(),
    attributes: attributes.optional(),
  })
  .meta({ id: 'CreateMember' });

/** An instant with its offset (`2027-01-01T00:00:00Z`, `…+02:00`); its pattern admits no NUL. */
const dateTime = z.iso.datetime({ offset: true });

export const updateMemberSchema = z
  .strictObject({
    email,
    name: text(200),
    external_id: text(200).nullable(),
    attributes,
    /** A manual tier override: one of the program's tiers, or null. */
    tier: text(100).nullable(),
    /** Holds the tier against the rules until then; null lifts a hold. */
    tier_locked_until: dateTime.nullable(),
  })
  .partial()
  .meta({ id: 'UpdateMember' });

export const reverseTransactionSchema = z
  .strictObject({ reason: text(500), allow_negative: z.boolean().default(false) })
  .meta({ id: 'ReverseTransaction' });

export const pointsSchema = z
  .strictObject({ points, reason: text(500), reference: text(200).nullable().optional() })
  .meta({ id: 'PointsMovement' });

export const createRewardSchema = z
  .strictObject({
    name: text(200),
    points_cost: points,
    stock: z.number().int().min(0).max(maxStock).nullable().default(null),
    kind: z.enum(['physical', 'digital']),
  })
  .meta({ id: 'CreateReward' });

export const updateRewardSchema = z
  .strictObject({
    name: text(200),
    points_cost: points,
    stock: z.number().int().min(0).max(maxStock).nullable(),
    active: z.boolean(),
  })
  .partial()
  .meta({ id: 'UpdateReward' });

export const redemptionSchema = z.strictObject({ reward_id: text(100) }).meta({ id: 'Redemption' });
export const shipSchema = z
  .strictObject({ carrier: text(100), tracking_number: text(100) })
  .meta({ id: 'ShipOrder' });
export const cancelSchema = z
  .strictObject({ reason: text(500).optional() })
  .meta({ id: 'CancelOrder' });
export const emptySchema = z.strictObject({}).meta({ id: 'Empty' });

export const createLeaderboardSchema = z
  .strictObject({
    name: text(200),
    period: z.enum(['weekly', 'monthly', 'quarterly']),
    top_n: z.number().int().min(1).max(100).default(10),
  })
  .meta({ id: 'CreateLeaderboard' });

export const listQuerySchema = z.strictObject({
  cursor: wireString()
    .regex(/^\d{1,18}$/, 'must be a cursor from a previous page')
    .optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  after_position: wireString().optional(),
  tier: wireString().max(100).optional(),
  email: wireString().max(254).optional(),
  external_id: wireString().max(200).optional(),
  q: wireString().max(200).optional(),
});

/** A page of a list that takes no filters. */
export const pageQuerySchema = listQuerySchema.pick({
  cursor: true,
  limit: true,
  after_position: true,
});

export const readQuerySchema = z.strictObject({ after_position: wireString().optional() });

/** GET member: `as_of` (an ISO-8601 date or date-time) answers with the member as then. */
export const statementQuerySchema = z.strictObject({
  as_of: wireString()
    .max(40)
    .optional()
    .meta({ description: 'An ISO-8601 date or date-time; now when absent' }),
});

export const memberQuerySchema = z.strictObject({
  after_position: wireString().optional(),
  as_of: wireString()
    .max(40)
    .optional()
    .meta({ description: 'An ISO-8601 date or date-time: the member as they were then' }),
});

const orderStatuses = [
  'redeemed',
  'shipped',
  'delivered',
  'cancelled',
] as const satisfies readonly OrderStatus[];

/**
 * A page of a member's orders, oldest first (the order they were placed in), optionally of one
 * status: `redeemed` is the fulfilment queue of orders not yet shipped or delivered.
 */
export const memberOrdersQuerySchema = pageQuerySchema.extend({
  status: z.enum(orderStatuses).optional(),
});

/** A page of the program's orders, as the member's, optionally of one member. */
export const ordersQuerySchema = memberOrdersQuerySchema.extend({
  member_id: wireString()
    .refine((value) => isId('member', value), 'must be a member id (mem_…)')
    .optional(),
});

type Input<K extends keyof Incentives, N extends number> = Parameters<Incentives[K]>[N];

/**
 * The fields a partial update sent: an absent field is no key at all (not a key holding
 * undefined), so the recorded change names only what changed.
 */
const sent = <T extends object>(changes: T): T =>
  Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined)) as T;

const tiersOf = (tiers: readonly z.infer<typeof tierSchema>[]): Tier[] =>
  tiers.map((t) => ({ name: t.name, minPoints: t.min_points }));

export const createProgramBody = createProgramSchema.transform((body): ProgramSettings => ({
  name: body.name,
  tiers: tiersOf(body.tiers),
  tierBasis: body.tier_basis,
  pointsExpiryDays: null,
  pointsExpiryMode: 'inactivity',
  ...pointsExpiryChanges(body),
  timezone: body.timezone,
  notificationEmail: body.notification_email,
}));

export const updateProgramBody = updateProgramSchema.transform((body): ProgramChanges =>
  sent({
    name: body.name,
    tiers: body.tiers && tiersOf(body.tiers),
    tierBasis: body.tier_basis,
    ...pointsExpiryChanges(body),
    timezone: body.timezone,
    notificationEmail: body.notification_email,
  }),
);

export const createApiKeyBody = createApiKeySchema.transform((body) => ({
  label: body.label ?? null,
}));

export const createMemberBody = createMemberSchema.transform(
  (body): Input<'registerMember', 1> => ({
    email: body.email,
    name: body.name,
    externalId: body.external_id ?? null,
    attributes: body.attributes ?? {},
  }),
);

/** The profile changes, and the tier override when the body asks for one (absent otherwise). */
export const updateMemberBody = updateMemberSchema.transform((body): Input<'updateMember', 2> => ({
  ...sent({
    email: body.email,
    name: body.name,
    externalId: body.external_id,
    attributes: body.attributes,
  }),
  ...((body.tier !== undefined || body.tier_locked_until !== undefined) && {
    override: sent({
      tier: body.tier,
      lockedUntil:
        body.tier_locked_until === undefined || body.tier_locked_until === null
          ? body.tier_locked_until
          : new Date(body.tier_locked_until).toISOString(),
    }),
  }),
}));

export const reverseTransactionBody = reverseTransactionSchema.transform(
  (body): Input<'reverseTransaction', 2> => ({
    reason: body.reason,
    allowNegative: body.allow_negative,
  }),
);

/** A movement's amount and reason; the route adds the direction its path names. */
export const pointsBody = pointsSchema.transform(
  (body): Omit<Input<'movePoints', 2>, 'direction'> => ({
    points: body.points,
    reason: body.reason,
    reference: body.reference ?? null,
  }),
);

export const createRewardBody = createRewardSchema.transform((body): Input<'createReward', 1> => ({
  name: body.name,
  pointsCost: body.points_cost,
  stock: body.stock,
  kind: body.kind,
}));

export const updateRewardBody = updateRewardSchema.transform((body): RewardChanges =>
  sent({
    name: body.name,
    pointsCost: body.points_cost,
    stock: body.stock,
    active: body.active,
  }),
);

export const shipBody = shipSchema.transform((body): Input<'shipOrder', 2> => ({
  carrier: body.carrier,
  trackingNumber: body.tracking_number,
}));

/** The cancellation's reason: the program's default when the body gives none. */
export const cancelBody = cancelSchema.transform(
  (body): Input<'cancelOrder', 2> => body.reason ?? 'Cancelled by the program',
);

export const createLeaderboardBody = createLeaderboardSchema.transform(
  (body): Input<'createLeaderboard', 1> => ({
    name: body.name,
    period: body.period,
    topN: body.top_n,
  }),
);

/** A page: `limit`, and `cursor` when the caller sent one. */
const pageOf = (query: { limit: number; cursor?: string | undefined }) =>
  sent({ limit: query.limit, cursor: query.cursor });

/** The members list's page and filters. */
export const membersQuery = listQuerySchema.transform((query) =>
  sent({
    ...pageOf(query),
    tier: query.tier,
    email: query.email,
    externalId: query.external_id,
    q: query.q,
  }),
);

/** A page of a list that takes no filters, read through the list query (its filters ignored). */
export const listPageQuery = listQuerySchema.transform(pageOf);

export const pageQuery = pageQuerySchema.transform(pageOf);

export const memberOrdersQuery = memberOrdersQuerySchema.transform((query) =>
  sent({ ...pageOf(query), status: query.status }),
);

export const ordersQuery = ordersQuerySchema.transform((query) =>
  sent({ ...pageOf(query), status: query.status, memberId: query.member_id }),
);
