import { z } from 'zod';
import { endpointOrderings } from '../../../delivery/ordering.ts';
import { ledgerKinds } from '../../../projections/ledgerLine.ts';
import { errorCodes } from './errors.ts';

/**
 * Response schemas: what each route answers with, as /openapi.json documents it (components
 * `schemas`, generated with io `output`). The view builders and the routes type what they send
 * with `z.output<typeof …>` of these, so a field added to a view and not here (or the other way
 * round) fails to compile; test/adapters/http/openapiResponses.e2e.test.ts validates real answers
 * against the document. Objects are strict: a field the document does not name fails that test.
 */

/** What a route sends with a response schema: the compile-time half of the tie. */
export type Body<S extends z.ZodType> = z.output<S>;

/** A command's view: the response without `position`, which `reply` (request.ts) adds. */
export type CommandView<S extends z.ZodType> = Omit<z.output<S>, 'position'>;

/** The view of a command that recorded nothing to show (request.ts's `first` found no event). */
export type NothingToShow = Record<string, never>;

const ids = new Set<string>();
/** Registers a response schema's id (z.globalRegistry, through `.meta`) as a response's. */
const named = (id: string) => {
  ids.add(id);
  return { id };
};

const timestamp = z.iso.datetime({ offset: true });
const nullableTimestamp = timestamp.nullable();
/** A command's place in the log: pass it as ?after_position to read your write. */
const position = z
  .string()
  .meta({ description: 'Where the command wrote; pass it as ?after_position to read your write' });
/** A command's answer carries `position` when it recorded something (a no-op records nothing). */
const command = <S extends z.core.$ZodLooseShape>(shape: S) =>
  z.strictObject({ ...shape, position: position.optional() });
const nextCursor = z
  .string()
  .nullable()
  .meta({ description: 'The next page: pass it as ?cursor; null on the last page' });

export const errorSchema = z
  .strictObject({
    error: z.strictObject({
      code: z.enum(errorCodes),
      message: z.string(),
      field: z.string().optional().meta({ description: 'The input at fault, when there is one' }),
      member_id: z.string().optional().meta({
        description: 'With `member_exists`: the member that has the email or external_id',
      }),
    }),
  })
  .meta(named('Error'));

const tier = z.strictObject({ name: z.string(), min_points: z.number().int() });
const pointsExpiry = z
  .strictObject({ mode: z.enum(['inactivity', 'per_award']), days: z.number().int() })
  .nullable();

const programFields = {
  id: z.string(),
  name: z.string(),
  tiers: z.array(tier),
  tier_basis: z.enum(['lifetime', 'balance']),
  points_expiry: pointsExpiry,
  points_expiry_days: z.number().int().nullable(),
  timezone: z.string(),
  notification_email: z.string(),
};
export const programSchema = z.strictObject(programFields).meta(named('Program'));
export const programChangedSchema = command(programFields).meta(named('ProgramChanged'));
export const programCreatedSchema = command({ ...programFields, created_at: timestamp }).meta(
  named('ProgramCreated'),
);

export const apiKeyCreatedSchema = z
  .strictObject({
    id: z.string(),
    key: z.string().meta({ description: 'The secret: shown once' }),
    program_id: z.string(),
  })
  .meta(named('ApiKeyCreated'));
export const apiKeyListSchema = z
  .strictObject({
    data: z.array(
      z.strictObject({
        id: z.string(),
        label: z.string().nullable(),
        created_at: timestamp,
        last_used_at: nullableTimestamp,
        revoked_at: nullableTimestamp,
      }),
    ),
  })
  .meta(named('ApiKeyList'));

const attributes = z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]));
const memberStatus = z.enum(['active', 'deactivated']);
const memberFields = {
  id: z.string(),
  email: z.string(),
  name: z.string(),
  external_id: z.string().nullable(),
  attributes,
  tier: z.string().nullable(),
  balance: z.number().int(),
  lifetime_points: z.number().int(),
  status: memberStatus,
  tier_locked_until: nullableTimestamp,
  last_activity_at: nullableTimestamp,
  created_at: timestamp,
  updated_at: timestamp,
};
export const memberSummarySchema = z.strictObject(memberFields).meta(named('MemberSummary'));
export const memberSchema = z
  .strictObject({
    ...memberFields,
    next_expiry: z
      .strictObject({ at: timestamp, points: z.number().int() })
      .nullable()
      .meta({ description: 'When and how many points expire next; null when none do' }),
  })
  .meta(named('Member'));
export const memberAsOfSchema = z
  .strictObject({ ...memberFields, as_of: timestamp })
  .meta({ ...named('MemberAsOf'), description: 'The member as they were at as_of' });
export const memberReadSchema = z.union([memberSchema, memberAsOfSchema]).meta({
  ...named('MemberRead'),
  description: 'The member as they are (Member), or with ?as_of as they were then (MemberAsOf)',
});
export const memberListSchema = z
  .strictObject({ data: z.array(memberSummarySchema), next_cursor: nextCursor })
  .meta(named('MemberList'));
/** A new member: the member's fields but the tier lock, the activity and the update time. */
export const memberRegisteredSchema = command(
  z.strictObject(memberFields).omit({
    tier_locked_until: true,
    last_activity_at: true,
    updated_at: true,
  }).shape,
).meta(named('MemberRegistered'));
export const memberChangedSchema = command({
  id: z.string(),
  tier: z.string().nullable(),
  tier_locked_until: nullableTimestamp,
  status: memberStatus,
}).meta(named('MemberChanged'));
export const memberStatusSchema = command({ id: z.string(), status: memberStatus }).meta(
  named('MemberStatus'),
);

const ledgerKind = z.enum(Object.values(ledgerKinds));
export const ledgerPageSchema = z
  .strictObject({
    data: z.array(
      z.strictObject({
        transaction_id: z.string(),
        kind: ledgerKind,
        points: z.number().int(),
        reason: z.string(),
        reference: z.string().nullable(),
        balance: z.number().int(),
        created_at: timestamp,
      }),
    ),
    next_cursor: nextCursor,
  })
  .meta(named('LedgerPage'));
export const movementSchema = command({
  transaction_id: z.string(),
  member_id: z.string(),
  points: z.number().int(),
  reason: z.string(),
  reference: z.string().nullable(),
  new_balance: z.number().int(),
  created_at: timestamp,
}).meta(named('PointsMoved'));
export const reversalSchema = command({
  transaction_id: z.string(),
  reversal_of: z.string(),
  reversed: z.enum(['award', 'deduction']),
  member_id: z.string(),
  points: z.number().int(),
  reason: z.string(),
  new_balance: z.number().int(),
  lifetime_points: z.number().int(),
  created_at: timestamp,
}).meta(named('TransactionReversed'));

const rewardKind = z.enum(['physical', 'digital']);
const rewardFields = {
  id: z.string(),
  name: z.string(),
  points_cost: z.number().int(),
  stock: z.number().int().nullable(),
  kind: rewardKind,
  active: z.boolean(),
};
export const rewardSchema = z
  .strictObject({ ...rewardFields, created_at: timestamp, updated_at: timestamp })
  .meta(named('Reward'));
export const rewardListSchema = z
  .strictObject({ data: z.array(rewardSchema), next_cursor: nextCursor })
  .meta(named('RewardList'));
export const rewardCreatedSchema = command({ ...rewardFields, created_at: timestamp }).meta(
  named('RewardCreated'),
);
export const rewardChangedSchema = command(rewardFields).meta(named('RewardChanged'));

const orderStatus = z.enum(['redeemed', 'shipped', 'delivered', 'cancelled']);
export const orderSchema = z
  .strictObject({
    id: z.string(),
    member_id: z.string(),
    reward_id: z.string(),
    reward_name: z.string(),
    kind: rewardKind,
    points_spent: z.number().int(),
    status: orderStatus,
    carrier: z.string().nullable(),
    tracking_number: z.string().nullable(),
    history: z.array(z.strictObject({ status: z.string(), at: timestamp })),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .meta(named('Order'));
export const orderListSchema = z
  .strictObject({ data: z.array(orderSchema), next_cursor: nextCursor })
  .meta(named('OrderList'));
export const orderPlacedSchema = command({
  id: z.string(),
  member_id: z.string(),
  reward_id: z.string(),
  reward_name: z.string(),
  points_spent: z.number().int(),
  status: z.literal('redeemed'),
  transaction_id: z.string(),
  new_balance: z.number().int(),
}).meta(named('OrderPlaced'));
const orderStepFields = {
  id: z.string(),
  status: orderStatus,
  member_id: z.string(),
  reward_id: z.string(),
};
export const orderStepSchema = command(orderStepFields).meta(named('OrderStep'));
export const orderShippedSchema = command({
  ...orderStepFields,
  carrier: z.string(),
  tracking_number: z.string(),
}).meta(named('OrderShipped'));

const leaderboardFields = {
  id: z.string(),
  name: z.string(),
  period: z.enum(['weekly', 'monthly', 'quarterly']),
  timezone: z.string(),
  top_n: z.number().int(),
  period_start: timestamp,
  period_end: timestamp,
  created_at: timestamp,
};
export const leaderboardSchema = z.strictObject(leaderboardFields).meta(named('Leaderboard'));
export const leaderboardCreatedSchema = command(leaderboardFields).meta(
  named('LeaderboardCreated'),
);
export const leaderboardListSchema = z
  .strictObject({ data: z.array(leaderboardSchema) })
  .meta(named('LeaderboardList'));
const standing = z
  .strictObject({ position: z.number().int(), member_id: z.string(), points: z.number().int() })
  .meta(named('Standing'));
export const standingsSchema = z
  .strictObject({
    leaderboard_id: z.string(),
    period_start: timestamp,
    period_end: timestamp,
    standings: z.array(standing),
  })
  .meta(named('Standings'));
const endedPeriodFields = {
  period_id: z.string(),
  period_start: timestamp,
  period_end: timestamp,
};
export const endedPeriodSchema = z
  .strictObject({ ...endedPeriodFields, standings: z.array(standing) })
  .meta(named('EndedPeriod'));
export const periodListSchema = z
  .strictObject({
    leaderboard_id: z.string(),
    data: z.array(
      z.strictObject({
        ...endedPeriodFields,
        standings: z.array(standing).meta({ description: 'The top ten as published' }),
        corrections: z.array(
          z.strictObject({
            transaction_id: z.string(),
            reversal_of: z.string(),
            member_id: z.string(),
            points: z.number().int(),
            corrected_at: timestamp,
          }),
        ),
      }),
    ),
  })
  .meta(named('PeriodList'));
export const periodStandingsSchema = z
  .strictObject({
    leaderboard_id: z.string(),
    ...endedPeriodFields,
    data: z.array(standing),
    next_cursor: nextCursor,
  })
  .meta(named('PeriodStandings'));
export const periodClosedSchema = command({
  leaderboard_id: z.string(),
  ended: endedPeriodSchema.nullable(),
  current_period: z.strictObject({ period_start: timestamp, period_end: timestamp }).nullable(),
}).meta(named('PeriodClosed'));

const catalogueGroup = z.strictObject({
  name: z.string(),
  types: z.array(
    z.strictObject({
      type: z.string(),
      description: z.string(),
      schema: z.record(z.string(), z.unknown()).meta({ description: 'JSON Schema of `data`' }),
      sample: z.unknown(),
    }),
  ),
});
export const webhookEventTypesSchema = z
  .strictObject({ groups: z.array(catalogueGroup), opt_in_groups: z.array(catalogueGroup) })
  .meta(named('WebhookEventTypes'));

const endpointFields = {
  id: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  description: z.string(),
  enabled: z.boolean(),
  disabled_reason: z.string().nullable(),
  disabled_code: z.string().nullable(),
  failing_since: nullableTimestamp,
  rate_limit_per_second: z.number().int().nullable(),
  ordering: z.enum(endpointOrderings),
  previous_secret_expires_at: nullableTimestamp,
  created_at: timestamp,
  updated_at: timestamp,
};
export const webhookEndpointSchema = z.strictObject(endpointFields).meta(named('WebhookEndpoint'));
export const webhookEndpointCreatedSchema = z
  .strictObject({ ...endpointFields, secret: z.string() })
  .meta(named('WebhookEndpointCreated'));
export const webhookEndpointListSchema = z
  .strictObject({ data: z.array(webhookEndpointSchema) })
  .meta(named('WebhookEndpointList'));
export const webhookSecretSchema = z
  .strictObject({
    secret: z.string().nullable().meta({
      description: 'null only when the endpoint was deleted while the secret was read',
    }),
  })
  .meta(named('WebhookSecret'));
export const rotatedSecretSchema = z
  .strictObject({ secret: z.string(), previous_secret_expires_at: timestamp })
  .meta(named('RotatedWebhookSecret'));
export const testQueuedSchema = z
  .strictObject({ delivery_id: z.string(), event_id: z.string() })
  .meta(named('TestEventQueued'));
export const replayQueuedSchema = z
  .strictObject({ queued: z.number().int() })
  .meta(named('ReplayQueued'));
export const redeliveredSchema = z
  .strictObject({ delivery_id: z.string() })
  .meta(named('Redelivered'));

const deliveryFields = {
  id: z.string(),
  endpoint_id: z.string(),
  event_id: z.string(),
  type: z.string().meta({ description: 'The event type (GET /v1/webhook-event-types)' }),
  test: z.boolean(),
  series: z.number().int(),
  status: z.enum(['pending', 'delivering', 'delivered', 'failed', 'gone']),
  next_attempt_at: nullableTimestamp,
  last_status: z.number().int().nullable(),
  last_error: z.string().nullable(),
  created_at: timestamp,
  updated_at: timestamp,
};
export const webhookDeliverySchema = z
  .strictObject({ ...deliveryFields, attempts: z.number().int() })
  .meta(named('WebhookDelivery'));
export const webhookDeliveryListSchema = z
  .strictObject({ data: z.array(webhookDeliverySchema), next_cursor: nextCursor })
  .meta(named('WebhookDeliveryList'));
export const webhookDeliveryDetailSchema = z
  .strictObject({
    ...deliveryFields,
    payload: z.string().meta({ description: 'The envelope exactly as sent (its bytes, as text)' }),
    attempts: z.array(
      z.strictObject({
        attempt: z.number().int(),
        started_at: timestamp,
        duration_ms: z.number().int(),
        http_status: z.number().int().nullable(),
        response_body: z.string().nullable(),
        error_kind: z.string().nullable(),
        error_message: z.string().nullable(),
        retry_after_s: z.number().int().nullable(),
      }),
    ),
  })
  .meta(named('WebhookDeliveryDetail'));
export const webhookEventListSchema = z
  .strictObject({
    data: z.array(
      z.strictObject({
        id: z.string(),
        type: z.string(),
        test: z.boolean(),
        created_at: timestamp,
        payload: z.unknown().meta({ description: 'The envelope, parsed' }),
      }),
    ),
    next_cursor: nextCursor,
  })
  .meta(named('WebhookEventList'));

export const auditPublicKeySchema = z
  .strictObject({ origin: z.string(), verifier_key: z.string(), public_key_pem: z.string() })
  .meta(named('AuditPublicKey'));
const checkpoint = z
  .strictObject({
    size: z.number().int(),
    root_hash: z.string(),
    created_at: timestamp,
    note: z.string().meta({ description: 'The signed note, exact text' }),
  })
  .meta(named('Checkpoint'));
export const checkpointListSchema = z
  .strictObject({ data: z.array(checkpoint), next_before_size: z.number().int().nullable() })
  .meta(named('CheckpointList'));
export const consistencyProofSchema = z
  .strictObject({
    from: z.number().int(),
    to: z.number().int(),
    from_root: z.string(),
    to_root: z.string(),
    proof: z.array(z.string()),
  })
  .meta(named('ConsistencyProof'));
export const auditEventListSchema = z
  .strictObject({
    data: z.array(
      z.strictObject({
        position: z.string(),
        global_position: z.string(),
        stream: z.string(),
        revision: z.string(),
        id: z.string(),
        type: z.string(),
        time: timestamp,
        data: z.unknown(),
        metadata: z.unknown(),
        hash: z.string(),
      }),
    ),
    next_position: z.string().nullable(),
  })
  .meta(named('AuditEventList'));
export const statementSchema = z
  .strictObject({
    format: z.literal('incentable.statement/v1'),
    program_id: z.string(),
    member_id: z.string(),
    as_of: timestamp,
    balance: z.number().int(),
    member: memberAsOfSchema,
    ledger: z.array(
      z.strictObject({
        event_id: z.string(),
        transaction_id: z.string(),
        kind: ledgerKind,
        points: z.number().int(),
        reason: z.string(),
        reference: z.string().nullable(),
        balance_after: z.number().int(),
        occurred_at: timestamp,
        revision: z.string(),
      }),
    ),
    checkpoint,
    events: z.array(
      z.strictObject({
        event_id: z.string(),
        stream: z.string(),
        revision: z.string(),
        type: z.string(),
        canonical: z.string(),
        previous_hash: z.string(),
        hash: z.string(),
        leaf_index: z.number().int(),
        leaf_hash: z.string(),
        inclusion_proof: z.array(z.string()),
      }),
    ),
  })
  .meta(named('MemberStatement'));

/** One line of the audit verify stream (application/x-ndjson): a break, the summary, or an error. */
export const auditVerifyLineSchema = z
  .union([
    z.strictObject({
      break: z.strictObject({
        stream: z.string(),
        revision: z.string(),
        kind: z.enum([
          'hash_mismatch',
          'revision_gap',
          'missing_tail',
          'head_mismatch',
          'missing_head',
        ]),
        expectedHash: z.string().nullable(),
        foundHash: z.string().nullable(),
        expectedRevision: z.string(),
        foundRevision: z.string().nullable(),
        links: z.number().int(),
      }),
    }),
    z.strictObject({
      summary: z.strictObject({
        ok: z.boolean(),
        streams: z.number().int(),
        events: z.number().int(),
        breaks: z.number().int(),
        elapsedMs: z.number(),
        eventsPerSecond: z.number(),
      }),
    }),
    errorSchema,
  ])
  .meta(named('AuditVerifyLine'));

/** The ids of the response schemas: openapi.ts generates these with io `output`. */
export const responseSchemaIds: ReadonlySet<string> = ids;
