// Generated from delivery/catalogue.ts by `npm run webhook-types` (bin/webhookTypes.ts): do
// not edit. test/packages/webhooks/eventTypes.unit.test.ts fails when this file and the
// catalogue differ.

/**
 * The body of every webhook, byte for byte in this key order. `data` has every field its type
 * lists; webhooks sent before a field was added (and their redeliveries, which repeat the same
 * bytes) lack it (docs/webhooks.md names each).
 */
export type WebhookEnvelope<T extends string, D> = {
  /** The event id (`evt_…`): the same on every delivery, redelivery and replay of the event. */
  id: string;
  type: T;
  /** When the fact happened: ISO 8601, UTC, whole seconds, `Z`. */
  created_at: string;
  data: D;
};

/** `points.awarded` data: Points were added to a member's balance. */
export type PointsAwardedData = {
  transaction_id: string;
  member_id: string;
  /** minimum: 1 */
  points: number;
  reason: string;
  new_balance: number;
  kind: 'award' | 'refund' | 'reversal';
  reference: string | null;
  reversal_of?: string;
};
/** The `points.awarded` webhook. */
export type PointsAwardedEvent = WebhookEnvelope<'points.awarded', PointsAwardedData>;

/** `points.deducted` data: Points were removed from a member's balance. */
export type PointsDeductedData = {
  transaction_id: string;
  member_id: string;
  /** minimum: 1 */
  points: number;
  reason: string;
  new_balance: number;
  kind: 'correction' | 'redemption' | 'reversal';
  reference: string | null;
  reversal_of?: string;
};
/** The `points.deducted` webhook. */
export type PointsDeductedEvent = WebhookEnvelope<'points.deducted', PointsDeductedData>;

/** `points.expired` data: Points expired due to inactivity. */
export type PointsExpiredData = {
  transaction_id: string;
  member_id: string;
  /** minimum: 1 */
  points: number;
  reason: string;
  new_balance: number;
  kind: 'expiry';
  reference: string | null;
};
/** The `points.expired` webhook. */
export type PointsExpiredEvent = WebhookEnvelope<'points.expired', PointsExpiredData>;

/** `member.created` data: A new member was added. */
export type MemberCreatedData = {
  member_id: string;
  /** format: email; minLength: 3 */
  email: string;
  name: string;
  external_id: string | null;
  tier: string | null;
  attributes: Record<string, unknown>;
};
/** The `member.created` webhook. */
export type MemberCreatedEvent = WebhookEnvelope<'member.created', MemberCreatedData>;

/** `member.updated` data: Member details were changed. */
export type MemberUpdatedData = {
  member_id: string;
  /** minProperties: 1 */
  changes: Record<string, unknown>;
};
/** The `member.updated` webhook. */
export type MemberUpdatedEvent = WebhookEnvelope<'member.updated', MemberUpdatedData>;

/** `member.tier_changed` data: Member moved to a different tier. */
export type MemberTierChangedData = {
  member_id: string;
  previous_tier: string | null;
  new_tier: string | null;
  reason: string;
};
/** The `member.tier_changed` webhook. */
export type MemberTierChangedEvent = WebhookEnvelope<'member.tier_changed', MemberTierChangedData>;

/** `member.deactivated` data: A member was deactivated. */
export type MemberDeactivatedData = {
  member_id: string;
  reason: string | null;
};
/** The `member.deactivated` webhook. */
export type MemberDeactivatedEvent = WebhookEnvelope<'member.deactivated', MemberDeactivatedData>;

/** `member.reactivated` data: A deactivated member was reactivated. */
export type MemberReactivatedData = {
  member_id: string;
};
/** The `member.reactivated` webhook. */
export type MemberReactivatedEvent = WebhookEnvelope<'member.reactivated', MemberReactivatedData>;

/** `reward.redeemed` data: A member redeemed a reward. */
export type RewardRedeemedData = {
  order_id: string;
  member_id: string;
  reward_id: string;
  reward_name: string;
  /** minimum: 1 */
  points_spent: number;
};
/** The `reward.redeemed` webhook. */
export type RewardRedeemedEvent = WebhookEnvelope<'reward.redeemed', RewardRedeemedData>;

/** `order.shipped` data: A physical reward was shipped. */
export type OrderShippedData = {
  order_id: string;
  member_id: string;
  reward_id: string;
  carrier: string;
  tracking_number: string;
};
/** The `order.shipped` webhook. */
export type OrderShippedEvent = WebhookEnvelope<'order.shipped', OrderShippedData>;

/** `order.delivered` data: A reward was delivered. */
export type OrderDeliveredData = {
  order_id: string;
  member_id: string;
  reward_id: string;
  /** format: date-time */
  delivered_at: string;
};
/** The `order.delivered` webhook. */
export type OrderDeliveredEvent = WebhookEnvelope<'order.delivered', OrderDeliveredData>;

/** `order.cancelled` data: An order was cancelled and its points refunded. */
export type OrderCancelledData = {
  order_id: string;
  member_id: string;
  reward_id: string;
  reason: string;
  /** minimum: 1 */
  points_refunded: number;
};
/** The `order.cancelled` webhook. */
export type OrderCancelledEvent = WebhookEnvelope<'order.cancelled', OrderCancelledData>;

/** `leaderboard.position_changed` data: A member's ranking changed. */
export type LeaderboardPositionChangedData = {
  leaderboard_id: string;
  member_id: string;
  /** minimum: 1 */
  previous_position: number | null;
  /** minimum: 1 */
  new_position: number;
  points: number;
};
/** The `leaderboard.position_changed` webhook. */
export type LeaderboardPositionChangedEvent = WebhookEnvelope<
  'leaderboard.position_changed',
  LeaderboardPositionChangedData
>;

/** `leaderboard.period_ended` data: A competition period ended. */
export type LeaderboardPeriodEndedData = {
  leaderboard_id: string;
  /** format: date-time */
  period_start: string;
  /** format: date-time */
  period_end: string;
  /** maxItems: 10 */
  standings: Array<{
    /** minimum: 1 */
    position: number;
    member_id: string;
    points: number;
  }>;
  period_id: string;
};
/** The `leaderboard.period_ended` webhook. */
export type LeaderboardPeriodEndedEvent = WebhookEnvelope<
  'leaderboard.period_ended',
  LeaderboardPeriodEndedData
>;

/** `audit.checkpoint` data: A signed checkpoint of the event history was made (a C2SP signed note; docs/audit.md). Opt-in: only endpoints that list this type get it. */
export type AuditCheckpointData = {
  origin: string;
  /** minimum: 1 */
  size: number;
  /** pattern: ^[0-9a-f]{64}$ */
  root_hash: string;
  note: string;
  /** format: date-time */
  created_at: string;
};
/** The `audit.checkpoint` webhook. */
export type AuditCheckpointEvent = WebhookEnvelope<'audit.checkpoint', AuditCheckpointData>;

/** Every webhook we send, told apart by `type`: `switch (event.type)` narrows `data`. */
export type WebhookEvent =
  | PointsAwardedEvent
  | PointsDeductedEvent
  | PointsExpiredEvent
  | MemberCreatedEvent
  | MemberUpdatedEvent
  | MemberTierChangedEvent
  | MemberDeactivatedEvent
  | MemberReactivatedEvent
  | RewardRedeemedEvent
  | OrderShippedEvent
  | OrderDeliveredEvent
  | OrderCancelledEvent
  | LeaderboardPositionChangedEvent
  | LeaderboardPeriodEndedEvent
  | AuditCheckpointEvent;

/** Every event type, the opt-in ones included. */
export type WebhookEventType = WebhookEvent['type'];

/** The webhook of one type: `WebhookEventOf<'points.awarded'>['data']['new_balance']`. */
export type WebhookEventOf<T extends WebhookEventType> = Extract<WebhookEvent, { type: T }>;

/** The event types at run time, in the catalogue's order (the opt-in ones last). */
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
  'audit.checkpoint',
] as const satisfies readonly WebhookEventType[];
