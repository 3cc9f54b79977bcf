import type { DomainEvent } from '../domain/events.ts';
import type { MemberChanges } from '../domain/member.ts';
import { periodIdOf } from '../domain/periods.ts';
import { deductionKindOf } from '../domain/pointsAccount.ts';
import type { PointsEventType, pointsKindsOf, WebhookEventType } from './catalogue.ts';
import { formatCreatedAt } from './envelope.ts';

/** What a domain event looks like on the wire, before it gets an envelope id. */
export type WebhookEvent = {
  type: WebhookEventType;
  data: Readonly<Record<string, unknown>>;
  /** The moment of the fact (the event's `at`), which becomes the envelope's `created_at`. */
  createdAt: Date;
};

/** Timestamps inside `data` in the docs' form (`2024-06-18T10:05:00Z`), like `created_at`. */
const wireTime = (iso: string): string => formatCreatedAt(new Date(iso));

/** `changes` with the wire's snake_case keys; only the fields that changed appear. */
const wireChanges = (changes: MemberChanges): Record<string, unknown> => ({
  ...(changes.email !== undefined && { email: changes.email }),
  ...(changes.name !== undefined && { name: changes.name }),
  ...(changes.externalId !== undefined && { external_id: changes.externalId }),
  ...(changes.attributes !== undefined && { attributes: changes.attributes }),
});

const webhook = (
  type: WebhookEventType,
  at: string,
  data: Record<string, unknown>,
): WebhookEvent => ({
  type,
  data,
  createdAt: new Date(at),
});

type PointsFacts = {
  transactionId: string;
  memberId: string;
  points: number;
  reason: string;
  newBalance: number;
  at: string;
};

/**
 * A points webhook: the docs' five fields, then what moved the points and the caller's reference.
 * The kind must be one its type carries (the catalogue's `pointsKindsOf`), or this fails to
 * compile. A new points event is one more call: PointsReversed's, with kind `reversal`, passes
 * `{ reversal_of }` as `extra` (fields after `reference`, which its catalogue schema must list).
 */
const pointsWebhook = <T extends PointsEventType>(
  type: T,
  kind: (typeof pointsKindsOf)[T][number],
  d: PointsFacts,
  reference: string | null,
  extra: Readonly<Record<string, unknown>> = {},
): WebhookEvent =>
  webhook(type, d.at, {
    transaction_id: d.transactionId,
    member_id: d.memberId,
    points: d.points,
    reason: d.reason,
    new_balance: d.newBalance,
    kind,
    reference,
    ...extra,
  });

/**
 * The webhook a domain event becomes, or null for events customers are not told about (the
 * catalogue is the docs' table). No default branch: a new domain event fails to compile until it
 * is mapped or explicitly ignored here.
 */
export const toWebhookEvent = (event: DomainEvent): WebhookEvent | null => {
  switch (event.type) {
    case 'PointsAwarded':
    case 'PointsDeducted':
    case 'PointsExpired':
    case 'PointsRefunded':
    case 'PointsReversed':
      return pointsMovedWebhook(event);
    case 'MemberRegistered':
    case 'MemberUpdated':
    case 'MemberTierChanged':
    case 'MemberDeactivated':
    case 'MemberReactivated':
      return memberWebhook(event);
    case 'RewardRedeemed':
    case 'OrderShipped':
    case 'OrderCancelled':
    case 'OrderDelivered':
      return orderWebhook(event);
    case 'PositionChanged':
    case 'PeriodEnded':
      return leaderboardWebhook(event);
    case 'ProgramCreated':
    case 'ProgramUpdated':
    case 'PointsFrozen':
    case 'PointsUnfrozen':
    case 'RefundDeferred':
    case 'MemberTierLocked':
    case 'MemberReservationRevoked':
    case 'IdentifierReserved':
    case 'IdentifierReleased':
    case 'RewardCreated':
    case 'RewardChanged':
    case 'StockReserved':
    case 'StockReleased':
    case 'OrderPlaced':
    case 'LeaderboardCreated':
    case 'ScoreRecorded':
    case 'ScoreReversed':
    case 'PeriodCorrected':
    case 'MemberWithdrawn':
    case 'MemberReinstated':
    case 'PeriodOpened':
    case 'LeaderboardTimezoneChanged':
      // Reservations (keeping emails and external ids unique) are no fact a receiver acts on.
      // A leaderboard's change of zone shows in its next period's bounds (period_ended, the API).
      return null;
  }
};

/** The domain events of the given types: what each subject's mapping below switches over. */
type EventOf<T extends DomainEvent['type']> = Extract<DomainEvent, { type: T }>;

const pointsMovedWebhook = (
  event: EventOf<
    'PointsAwarded' | 'PointsDeducted' | 'PointsExpired' | 'PointsRefunded' | 'PointsReversed'
  >,
): WebhookEvent => {
  switch (event.type) {
    case 'PointsAwarded':
      return pointsWebhook('points.awarded', 'award', event.data, event.data.reference);
    case 'PointsDeducted':
      return pointsWebhook(
        'points.deducted',
        deductionKindOf(event.data),
        event.data,
        event.data.reference,
      );
    case 'PointsExpired':
      return pointsWebhook('points.expired', 'expiry', event.data, null);
    case 'PointsRefunded':
      // A refund gives points back: a points.awarded, told apart from an award by its kind and
      // naming the order it refunds, as the redemption's points.deducted does.
      return pointsWebhook('points.awarded', 'refund', event.data, event.data.orderId);
    case 'PointsReversed':
      // Undoing an award takes points away, undoing a deduction gives them back: to a receiver
      // that sums the documented events, each is the movement it is, naming what it undoes.
      return event.data.reversed === 'award'
        ? pointsWebhook('points.deducted', 'reversal', event.data, event.data.reference, {
            reversal_of: event.data.reversalOf,
          })
        : pointsWebhook('points.awarded', 'reversal', event.data, event.data.reference, {
            reversal_of: event.data.reversalOf,
          });
  }
};

const memberWebhook = (
  event: EventOf<
    | 'MemberRegistered'
    | 'MemberUpdated'
    | 'MemberTierChanged'
    | 'MemberDeactivated'
    | 'MemberReactivated'
  >,
): WebhookEvent => {
  switch (event.type) {
    case 'MemberRegistered': {
      const d = event.data;
      return webhook('member.created', d.at, {
        member_id: d.memberId,
        email: d.email,
        name: d.name,
        external_id: d.externalId,
        tier: d.tier,
        attributes: d.attributes,
      });
    }
    case 'MemberUpdated':
      return webhook('member.updated', event.data.at, {
        member_id: event.data.memberId,
        changes: wireChanges(event.data.changes),
      });
    case 'MemberTierChanged': {
      const d = event.data;
      return webhook('member.tier_changed', d.at, {
        member_id: d.memberId,
        previous_tier: d.previousTier,
        new_tier: d.newTier,
        reason: d.reason,
      });
    }
    case 'MemberDeactivated':
      // The event carries no reason yet; null is the schema's "none given".
      return webhook('member.deactivated', event.data.at, {
        member_id: event.data.memberId,
        reason: null,
      });
    case 'MemberReactivated':
      return webhook('member.reactivated', event.data.at, { member_id: event.data.memberId });
  }
};

const orderWebhook = (
  event: EventOf<'RewardRedeemed' | 'OrderShipped' | 'OrderCancelled' | 'OrderDelivered'>,
): WebhookEvent => {
  switch (event.type) {
    case 'RewardRedeemed': {
      const d = event.data;
      return webhook('reward.redeemed', d.at, {
        order_id: d.orderId,
        member_id: d.memberId,
        reward_id: d.rewardId,
        reward_name: d.rewardName,
        points_spent: d.pointsSpent,
      });
    }
    case 'OrderShipped': {
      const d = event.data;
      return webhook('order.shipped', d.at, {
        order_id: d.orderId,
        member_id: d.memberId,
        reward_id: d.rewardId,
        carrier: d.carrier,
        tracking_number: d.trackingNumber,
      });
    }
    case 'OrderCancelled': {
      const d = event.data;
      return webhook('order.cancelled', d.at, {
        order_id: d.orderId,
        member_id: d.memberId,
        reward_id: d.rewardId,
        reason: d.reason,
        points_refunded: d.pointsSpent,
      });
    }
    case 'OrderDelivered': {
      const d = event.data;
      return webhook('order.delivered', d.at, {
        order_id: d.orderId,
        member_id: d.memberId,
        reward_id: d.rewardId,
        delivered_at: wireTime(d.at),
      });
    }
  }
};

const leaderboardWebhook = (event: EventOf<'PositionChanged' | 'PeriodEnded'>): WebhookEvent => {
  switch (event.type) {
    case 'PositionChanged': {
      const d = event.data;
      return webhook('leaderboard.position_changed', d.at, {
        leaderboard_id: d.leaderboardId,
        member_id: d.memberId,
        previous_position: d.previousPosition,
        new_position: d.newPosition,
        points: d.points,
      });
    }
    case 'PeriodEnded': {
      const d = event.data;
      return webhook('leaderboard.period_ended', d.at, {
        leaderboard_id: d.leaderboardId,
        period_start: wireTime(d.periodStart),
        period_end: wireTime(d.periodEnd),
        standings: d.standings.map((s) => ({
          position: s.position,
          member_id: s.memberId,
          points: s.points,
        })),
        // Not in the public docs' fields: names the period whose complete standings are at
        // GET …/leaderboards/{leaderboard_id}/periods/{period_id}/standings.
        period_id: periodIdOf(d.periodStart),
      });
    }
  }
};
