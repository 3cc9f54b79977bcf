/**
 * The webhook event catalogue: the one table of wire names (STYLE.md), grouped and described
 * exactly as the public docs' "Available Events" tables. Each type carries a JSON Schema
 * (draft 2020-12) of its `data` and the sample payload that "Send Test Event" sends; where the
 * docs show an example, the sample is that example's `data`, byte for byte, followed by the
 * fields we added after the docs (a points event's `kind` and `reference`): a sample has every
 * field a real webhook of its type has, so a receiver tested on it parses the real ones.
 * Types beyond the docs' eleven sit in the docs' groups after the documented ones.
 */

export const webhookEventTypes = [
  'points.awarded',
  'points.deducted',
  'points.expired',
  'member.created',
  'member.updated',
  'member.tier_changed',
  'member.deactivated',
  'member.reactivated',
  'reward.redeemed',
  'order.shipped',
  'order.delivered',
  'order.cancelled',
  'leaderboard.position_changed',
  'leaderboard.period_ended',
] as const;

export type WebhookEventType = (typeof webhookEventTypes)[number];

/** A JSON Schema document as a plain value; no validator ships with delivery/. */
export type JsonSchema = { readonly [keyword: string]: unknown };

export type CatalogueEntry = {
  type: WebhookEventType;
  description: string;
  schema: JsonSchema;
  sample: Readonly<Record<string, unknown>>;
};

export type CatalogueGroup = {
  name: 'Points events' | 'Member events' | 'Reward events' | 'Leaderboard events';
  entries: readonly CatalogueEntry[];
};

const draft = 'https://json-schema.org/draft/2020-12/schema';

const id = { type: 'string', minLength: 1 } as const;
const text = { type: 'string', minLength: 1 } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;

/** Every data schema is closed: a field we add later is a documented change, not a leak. */
const objectSchema = (
  type: WebhookEventType,
  properties: Record<string, JsonSchema>,
): JsonSchema => ({
  $schema: draft,
  $id: `https://incentable.dev/schemas/webhooks/${type}.json`,
  title: `${type} data`,
  type: 'object',
  properties,
  required: Object.keys(properties),
  additionalProperties: false,
});

/**
 * What moved the points of a points webhook, its `kind` (beyond the public docs' five fields):
 * an `award` or a `refund` of a cancelled order (points.awarded), a `redemption` or a manual
 * `correction` (points.deducted), an `expiry` (points.expired), and the `reversal` of a
 * transaction (points.awarded or points.deducted, issue 14 item 1).
 */
export const pointsKinds = [
  'award',
  'refund',
  'reversal',
  'redemption',
  'expiry',
  'correction',
] as const;

export type PointsKind = (typeof pointsKinds)[number];

/** The kinds each points type carries. */
export const pointsKindsOf = {
  'points.awarded': ['award', 'refund', 'reversal'],
  'points.deducted': ['correction', 'redemption', 'reversal'],
  'points.expired': ['expiry'],
} as const satisfies Record<string, readonly PointsKind[]>;

export type PointsEventType = keyof typeof pointsKindsOf;

/**
 * The three points events share one shape; `points` is the (positive) amount that moved. After
 * the documented five fields, in this order: `kind` and the caller's `reference` (null when none;
 * a redemption's and a refund's is the order id).
 */
const pointsMovement = (type: PointsEventType): JsonSchema => {
  const schema = objectSchema(type, {
    transaction_id: id,
    member_id: id,
    points: { type: 'integer', minimum: 1 },
    reason: text,
    // Below zero only after a reversal sent with allow_negative.
    new_balance: { type: 'integer' },
    kind: { type: 'string', enum: [...pointsKindsOf[type]] },
    reference: { type: ['string', 'null'] },
  });
  if (type === 'points.expired') return schema;
  // Present only with kind "reversal": the transaction it undoes.
  return {
    ...schema,
    properties: { ...(schema.properties as Record<string, JsonSchema>), reversal_of: id },
  };
};

const pointsEvents: CatalogueGroup = {
  name: 'Points events',
  entries: [
    {
      type: 'points.awarded',
      description: "Points were added to a member's balance",
      schema: pointsMovement('points.awarded'),
      sample: {
        transaction_id: 'txn_def456',
        member_id: 'mem_abc123',
        points: 500,
        reason: 'Q2 Sales Target',
        new_balance: 5500,
        kind: 'award',
        reference: null,
      },
    },
    {
      type: 'points.deducted',
      description: "Points were removed from a member's balance",
      schema: pointsMovement('points.deducted'),
      sample: {
        transaction_id: 'txn_ghi789',
        member_id: 'mem_abc123',
        points: 200,
        reason: 'Order correction',
        new_balance: 5300,
        kind: 'correction',
        reference: null,
      },
    },
    {
      type: 'points.expired',
      description: 'Points expired due to inactivity',
      schema: pointsMovement('points.expired'),
      sample: {
        transaction_id: 'txn_jkl012',
        member_id: 'mem_abc123',
        points: 300,
        reason: 'Inactive for 12 months',
        new_balance: 5000,
        kind: 'expiry',
        reference: null,
      },
    },
  ],
};

const memberEvents: CatalogueGroup = {
  name: 'Member events',
  entries: [
    {
      type: 'member.created',
      description: 'A new member was added',
      schema: objectSchema('member.created', {
        member_id: id,
        email: { type: 'string', format: 'email', minLength: 3 },
        name: text,
        external_id: { type: ['string', 'null'] },
        tier: { type: ['string', 'null'] },
        attributes: { type: 'object' },
      }),
      sample: {
        member_id: 'mem_abc123',
        email: 'jane.doe@example.com',
        name: 'Jane Doe',
        external_id: 'crm-10042',
        tier: 'Silver',
        attributes: { region: 'EMEA' },
      },
    },
    {
      type: 'member.updated',
      description: 'Member details were changed',
      schema: objectSchema('member.updated', {
        member_id: id,
        // Only the fields that changed, each with its new value.
        changes: { type: 'object', minProperties: 1 },
      }),
      sample: {
        member_id: 'mem_abc123',
        changes: { name: 'Jane Smith' },
      },
    },
    {
      type: 'member.tier_changed',
      description: 'Member moved to a different tier',
      schema: objectSchema('member.tier_changed', {
        member_id: id,
        previous_tier: { type: ['string', 'null'] },
        new_tier: { type: ['string', 'null'] },
        reason: text,
      }),
      sample: {
        member_id: 'mem_abc123',
        previous_tier: 'Silver',
        new_tier: 'Gold',
        reason: 'Points threshold reached',
      },
    },
    {
      type: 'member.deactivated',
      description: 'A member was deactivated',
      schema: objectSchema('member.deactivated', {
        member_id: id,
        // The caller's reason; null when none was given (the only case before reasons existed).
        reason: { type: ['string', 'null'] },
      }),
      sample: {
        member_id: 'mem_abc123',
        reason: 'Left the company',
      },
    },
    {
      type: 'member.reactivated',
      description: 'A deactivated member was reactivated',
      schema: objectSchema('member.reactivated', { member_id: id }),
      sample: { member_id: 'mem_abc123' },
    },
  ],
};

const rewardEvents: CatalogueGroup = {
  name: 'Reward events',
  entries: [
    {
      type: 'reward.redeemed',
      description: 'A member redeemed a reward',
      schema: objectSchema('reward.redeemed', {
        order_id: id,
        member_id: id,
        reward_id: id,
        reward_name: text,
        points_spent: { type: 'integer', minimum: 1 },
      }),
      sample: {
        order_id: 'ord_789xyz',
        member_id: 'mem_abc123',
        reward_id: 'rwd_001',
        reward_name: 'Amazon Gift Card $25',
        points_spent: 2500,
      },
    },
    {
      type: 'order.shipped',
      description: 'A physical reward was shipped',
      schema: objectSchema('order.shipped', {
        order_id: id,
        member_id: id,
        reward_id: id,
        carrier: text,
        tracking_number: text,
      }),
      sample: {
        order_id: 'ord_789xyz',
        member_id: 'mem_abc123',
        reward_id: 'rwd_001',
        carrier: 'UPS',
        tracking_number: '1Z999AA10123456784',
      },
    },
    {
      type: 'order.delivered',
      description: 'A reward was delivered',
      schema: objectSchema('order.delivered', {
        order_id: id,
        member_id: id,
        reward_id: id,
        delivered_at: dateTime,
      }),
      sample: {
        order_id: 'ord_789xyz',
        member_id: 'mem_abc123',
        reward_id: 'rwd_001',
        delivered_at: '2024-06-18T10:05:00Z',
      },
    },
    {
      type: 'order.cancelled',
      description: 'An order was cancelled and its points refunded',
      schema: objectSchema('order.cancelled', {
        order_id: id,
        member_id: id,
        reward_id: id,
        reason: text,
        // The order's points_spent, given back by the points.awarded (kind "refund") beside it.
        points_refunded: { type: 'integer', minimum: 1 },
      }),
      sample: {
        order_id: 'ord_789xyz',
        member_id: 'mem_abc123',
        reward_id: 'rwd_001',
        reason: 'Out of stock at the supplier',
        points_refunded: 2500,
      },
    },
  ],
};

const leaderboardEvents: CatalogueGroup = {
  name: 'Leaderboard events',
  entries: [
    {
      type: 'leaderboard.position_changed',
      description: "A member's ranking changed",
      schema: objectSchema('leaderboard.position_changed', {
        leaderboard_id: id,
        member_id: id,
        // null when the member enters the board for the first time.
        previous_position: { type: ['integer', 'null'], minimum: 1 },
        new_position: { type: 'integer', minimum: 1 },
        points: { type: 'integer' },
      }),
      sample: {
        leaderboard_id: 'lb_q2sales',
        member_id: 'mem_abc123',
        previous_position: 4,
        new_position: 2,
        points: 5500,
      },
    },
    {
      type: 'leaderboard.period_ended',
      description: 'A competition period ended',
      schema: objectSchema('leaderboard.period_ended', {
        leaderboard_id: id,
        period_start: dateTime,
        period_end: dateTime,
        // The top ten only: a webhook is a notification, the full board is an API read.
        standings: {
          type: 'array',
          maxItems: 10,
          items: {
            type: 'object',
            properties: {
              position: { type: 'integer', minimum: 1 },
              member_id: id,
              points: { type: 'integer' },
            },
            required: ['position', 'member_id', 'points'],
            additionalProperties: false,
          },
        },
        // Beyond the public docs' four fields: the period's id, for its complete standings.
        period_id: id,
      }),
      sample: {
        leaderboard_id: 'lb_q2sales',
        period_start: '2024-04-01T00:00:00Z',
        period_end: '2024-07-01T00:00:00Z',
        standings: [
          { position: 1, member_id: 'mem_def456', points: 7200 },
          { position: 2, member_id: 'mem_abc123', points: 5500 },
          { position: 3, member_id: 'mem_ghi789', points: 4100 },
        ],
        period_id: '20240401T000000.000Z',
      },
    },
  ],
};

export const catalogue: readonly CatalogueGroup[] = [
  pointsEvents,
  memberEvents,
  rewardEvents,
  leaderboardEvents,
];

/**
 * Types outside the public docs' catalogue that an endpoint gets only when it names them: `*`
 * never includes them (docs/audit.md). `audit.checkpoint` carries each signed checkpoint of the
 * event history, so every receiver that keeps them witnesses that the history only grows.
 */
export const optInEventTypes = ['audit.checkpoint'] as const;

export type OptInEventType = (typeof optInEventTypes)[number];

/** Every type an endpoint may list: the docs' catalogue, then the opt-in ones. */
export type SubscribableEventType = WebhookEventType | OptInEventType;

export const subscribableEventTypes: readonly SubscribableEventType[] = [
  ...webhookEventTypes,
  ...optInEventTypes,
];

export type OptInCatalogueEntry = {
  type: OptInEventType;
  description: string;
  schema: JsonSchema;
  sample: Readonly<Record<string, unknown>>;
};

const checkpointSample = {
  origin: 'loyalty.example.com/incentable',
  size: 1042,
  root_hash: 'c2d78c09035a772b4b4316d847ec35d892f19c4d206b1141d081d44e6639582d',
  note: 'loyalty.example.com/incentable\n1042\nwteMCQNadytLQxbYR+w12JLxnE0gaxFB0IHUTmY5WC0=\n\n\u2014 loyalty.example.com/incentable sj25Jg0lADsMXosUEsP4IezbCp/wwKivYXTl/xePdQkjfnEOjQYkSLGwfno4iBztzhaxpoWNbeeI9HoK4A4AxcERewc=\n',
  created_at: '2024-06-15T14:30:00.125Z',
};

/** The opt-in types, in their own group (GET /v1/webhook-event-types lists it with opt_in). */
export const optInCatalogue: readonly {
  name: 'Audit events';
  entries: readonly OptInCatalogueEntry[];
}[] = [
  {
    name: 'Audit events',
    entries: [
      {
        type: 'audit.checkpoint',
        description:
          'A signed checkpoint of the event history was made (a C2SP signed note; docs/audit.md). Opt-in: only endpoints that list this type get it.',
        schema: {
          $schema: draft,
          $id: 'https://incentable.dev/schemas/webhooks/audit.checkpoint.json',
          title: 'audit.checkpoint data',
          type: 'object',
          properties: {
            origin: text,
            size: { type: 'integer', minimum: 1 },
            root_hash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
            note: text,
            created_at: dateTime,
          },
          required: ['origin', 'size', 'root_hash', 'note', 'created_at'],
          additionalProperties: false,
        },
        sample: checkpointSample,
      },
    ],
  },
];

const knownTypes: ReadonlySet<string> = new Set(webhookEventTypes);
const subscribable: ReadonlySet<string> = new Set(subscribableEventTypes);

/** A type an endpoint may subscribe to: one of the catalogue's or an opt-in one. */
export const isSubscribableEventType = (value: string): value is SubscribableEventType =>
  subscribable.has(value);

/** The catalogue entry or opt-in entry of any subscribable type. */
export const anyEntryOf = (type: SubscribableEventType): CatalogueEntry | OptInCatalogueEntry => {
  for (const group of optInCatalogue) {
    const entry = group.entries.find((e) => e.type === type);
    if (entry) return entry;
  }
  return catalogueEntryOf(type as WebhookEventType);
};

export const isWebhookEventType = (value: string): value is WebhookEventType =>
  knownTypes.has(value);

/** The catalogue entry of one type; total because every type has exactly one entry. */
export const catalogueEntryOf = (type: WebhookEventType): CatalogueEntry => {
  for (const group of catalogue) {
    const entry = group.entries.find((e) => e.type === type);
    if (entry) return entry;
  }
  throw new Error(`catalogue has no entry for ${type}`);
};
