import type { DomainEvent } from '../domain/events.ts';
import { defaultTopN } from '../domain/leaderboard.ts';
import type { PointsAccountEvent, PointsMovementEvent } from '../domain/pointsAccount.ts';
import type { RecordedEvent } from '../domain/recordedEvent.ts';
import type { ReadModelTable, RowOf } from './readModelColumns.ts';

/**
 * What each event does to each read-model table, as data: the one statement of the fold. The live
 * projector (projections/readModels.ts) applies these mutations with kysely, the replay
 * (adapters/audit/replayProjector.ts) to rows it keeps in memory, the audit's history reads the
 * ledger line and the member's fields from them. Pure: no kysely, no I/O.
 */

type PerTable<M extends Record<ReadModelTable, unknown>> = M[ReadModelTable];

/**
 * One change to the read models. Every one is idempotent, so an event handled twice leaves the
 * same rows, and none fails on a row that is missing or already there (a recorded fact never
 * throws): an update of a missing row changes nothing, an insert of a row whose key is taken too.
 */
export type RowMutation =
  /** The row, unless its key is taken; `then` only when it was new (an event handled once). */
  | PerTable<{
      [T in ReadModelTable]: {
        kind: 'insert';
        table: T;
        row: RowOf<T>;
        then?: readonly RowMutation[];
      };
    }>
  /**
   * The row with `key`, if there is one, takes `set`, and the items of `append` are added to the
   * end of its (jsonb array) columns; not when it holds the values of `unless` already.
   */
  | PerTable<{
      [T in ReadModelTable]: {
        kind: 'update';
        table: T;
        key: Partial<RowOf<T>>;
        set: Partial<RowOf<T>>;
        unless?: Partial<RowOf<T>>;
        append?: Partial<RowOf<T>>;
      };
    }>
  /** The row, or when its key is taken, that row takes `set`. */
  | PerTable<{
      [T in ReadModelTable]: { kind: 'upsert'; table: T; row: RowOf<T>; set: Partial<RowOf<T>> };
    }>
  /** Every row whose columns hold the values of `where`. */
  | PerTable<{
      [T in ReadModelTable]: { kind: 'delete'; table: T; where: Partial<RowOf<T>> };
    }>
  /**
   * The member's expiry lots (and oldest_lot_at) after the event, as the points account folds
   * them (domain/pointsAccount.ts `lotsAfter`): they follow from every earlier event, not from
   * this one's data, so it comes only as the `then` of the event's ledger row.
   */
  | { kind: 'foldLots'; memberId: string; event: LedgerEvent }
  /**
   * The period's whole final ranking from its rm_standings rows into rm_period_standings, as the
   * domain ranks: withdrawn members aside, points descending, equal points sharing a position,
   * the first to reach a score (the lower reached_seq) first.
   */
  | { kind: 'rankPeriod'; leaderboardId: string; periodStart: string }
  /**
   * An ended period's standings after a reversal of an award it counted: the member's final
   * points lose `points` (not below zero), and the period is ranked again as at its end.
   */
  | {
      kind: 'correctPeriod';
      leaderboardId: string;
      periodStart: string;
      memberId: string;
      points: number;
    };

/** An event as the fold reads it: the domain event, its id, revision and program. */
export type ProjectedEvent = DomainEvent & {
  id: string;
  revision: bigint;
  programId: string | null;
};

/** The fold's view of a recorded event: its data and type, id, revision and program. */
export const projected = (recorded: RecordedEvent): ProjectedEvent =>
  ({
    type: recorded.type,
    data: recorded.data,
    id: recorded.id,
    revision: recorded.revision,
    programId: recorded.metadata.programId ?? null,
  }) as ProjectedEvent;

/** The points events that write a ledger line (RewardRedeemed repeats its deduction's). */
export type LedgerEvent = Exclude<PointsMovementEvent, { type: 'RewardRedeemed' }>;

export const ledgerKinds = {
  PointsAwarded: 'awarded',
  PointsDeducted: 'deducted',
  PointsExpired: 'expired',
  PointsRefunded: 'refunded',
  PointsReversed: 'reversed',
} as const satisfies Record<LedgerEvent['type'], string>;

export type LedgerKind = (typeof ledgerKinds)[LedgerEvent['type']];

export const isLedgerEvent = (type: string): type is LedgerEvent['type'] =>
  Object.hasOwn(ledgerKinds, type);

/**
 * What a ledger line says of a points event: its kind, its points signed as they moved the
 * balance, and its reference (a refund's order; a reversal's the transaction it undid).
 */
const ledgerLineOf = (
  event: LedgerEvent,
): { kind: LedgerKind; points: number; reference: string | null } => {
  const d = event.data;
  switch (event.type) {
    case 'PointsAwarded':
      return { kind: ledgerKinds[event.type], points: d.points, reference: event.data.reference };
    case 'PointsDeducted':
      return { kind: ledgerKinds[event.type], points: -d.points, reference: event.data.reference };
    case 'PointsExpired':
      return { kind: ledgerKinds[event.type], points: -d.points, reference: null };
    case 'PointsRefunded':
      return { kind: ledgerKinds[event.type], points: d.points, reference: event.data.orderId };
    case 'PointsReversed':
      return {
        kind: ledgerKinds[event.type],
        points: event.data.reversed === 'award' ? -d.points : d.points,
        reference: event.data.reversalOf,
      };
  }
};

/** A points event's rm_ledger row: the same in the live projector, the replay and the history. */
export const ledgerRow = (
  event: LedgerEvent,
  recorded: { id: string; programId: string | null },
): RowOf<'rm_ledger'> => {
  const d = event.data;
  return {
    event_id: recorded.id,
    program_id: recorded.programId ?? '',
    member_id: d.memberId,
    transaction_id: d.transactionId,
    ...ledgerLineOf(event),
    reason: d.reason,
    balance_after: d.newBalance,
    occurred_at: d.at,
  };
};

/** Awards and deductions (a redemption's too) are activity; expiry counts from the last one. */
export const isActivity = (event: PointsAccountEvent): boolean =>
  event.type === 'PointsAwarded' ||
  event.type === 'PointsDeducted' ||
  event.type === 'RewardRedeemed';

const updateMember = (memberId: string, set: Partial<RowOf<'rm_members'>>): RowMutation => ({
  kind: 'update',
  table: 'rm_members',
  key: { member_id: memberId },
  set,
});

const none: readonly RowMutation[] = [];

/**
 * What the event does to the read models, in order. A flat switch over every event type, with no
 * default so a new event fails to compile until it says what it writes: longer than a function
 * should be, but each case is the one statement of its event and reads on its own.
 */
// eslint-disable-next-line max-lines-per-function -- the flat switch above says why
export const readModelRows = (event: ProjectedEvent): readonly RowMutation[] => {
  const programId = event.programId ?? '';
  switch (event.type) {
    case 'ProgramCreated': {
      const d = event.data;
      return [
        {
          kind: 'insert',
          table: 'rm_programs',
          row: {
            program_id: d.programId,
            name: d.name,
            tiers: d.tiers,
            tier_basis: d.tierBasis,
            points_expiry_days: d.pointsExpiryDays,
            points_expiry_mode: d.pointsExpiryMode ?? 'inactivity',
            timezone: d.timezone,
            notification_email: d.notificationEmail,
            created_at: d.at,
            updated_at: d.at,
          },
        },
      ];
    }
    case 'ProgramUpdated': {
      const c = event.data.changes;
      return [
        {
          kind: 'update',
          table: 'rm_programs',
          key: { program_id: event.data.programId },
          set: {
            ...(c.name !== undefined && { name: c.name }),
            ...(c.tiers !== undefined && { tiers: c.tiers }),
            ...(c.tierBasis !== undefined && { tier_basis: c.tierBasis }),
            ...(c.pointsExpiryDays !== undefined && { points_expiry_days: c.pointsExpiryDays }),
            ...(c.pointsExpiryMode !== undefined && { points_expiry_mode: c.pointsExpiryMode }),
            ...(c.timezone !== undefined && { timezone: c.timezone }),
            ...(c.notificationEmail !== undefined && { notification_email: c.notificationEmail }),
            updated_at: event.data.at,
          },
        },
      ];
    }
    case 'MemberRegistered': {
      const d = event.data;
      return [
        {
          kind: 'insert',
          table: 'rm_members',
          row: {
            program_id: d.programId,
            member_id: d.memberId,
            email: d.email,
            name: d.name,
            external_id: d.externalId,
            attributes: d.attributes,
            tier: d.tier,
            balance: 0,
            lifetime_points: 0,
            last_activity_at: null,
            expiry_lots: [],
            oldest_lot_at: null,
            status: 'active',
            created_at: d.at,
            updated_at: d.at,
            tier_locked_until: null,
          },
        },
      ];
    }
    case 'MemberUpdated': {
      const c = event.data.changes;
      return [
        updateMember(event.data.memberId, {
          ...(c.email !== undefined && { email: c.email }),
          ...(c.name !== undefined && { name: c.name }),
          ...(c.externalId !== undefined && { external_id: c.externalId }),
          ...(c.attributes !== undefined && { attributes: c.attributes }),
          updated_at: event.data.at,
        }),
      ];
    }
    case 'MemberTierChanged':
      return [
        updateMember(event.data.memberId, { tier: event.data.newTier, updated_at: event.data.at }),
      ];
    case 'MemberTierLocked':
      return [
        updateMember(event.data.memberId, {
          tier_locked_until: event.data.lockedUntil,
          updated_at: event.data.at,
        }),
      ];
    case 'MemberDeactivated':
    case 'MemberReactivated':
      return [
        updateMember(event.data.memberId, {
          status: event.type === 'MemberDeactivated' ? 'deactivated' : 'active',
          updated_at: event.data.at,
        }),
      ];
    case 'PointsAwarded':
    case 'PointsDeducted':
    case 'PointsExpired':
    case 'PointsRefunded':
    case 'PointsReversed': {
      const d = event.data;
      return [
        {
          kind: 'insert',
          table: 'rm_ledger',
          row: ledgerRow(event, event),
          then: [{ kind: 'foldLots', memberId: d.memberId, event }],
        },
        updateMember(
          d.memberId,
          isActivity(event)
            ? {
                balance: d.newBalance,
                lifetime_points: d.lifetimePoints,
                last_activity_at: d.at,
                updated_at: d.at,
              }
            : { balance: d.newBalance, lifetime_points: d.lifetimePoints, updated_at: d.at },
        ),
      ];
    }
    case 'RewardRedeemed':
      // The balance moved with the PointsDeducted appended beside it; this fact names the order.
      return [updateMember(event.data.memberId, { last_activity_at: event.data.at })];
    case 'RewardCreated': {
      const d = event.data;
      return [
        {
          kind: 'insert',
          table: 'rm_rewards',
          row: {
            program_id: programId,
            reward_id: d.rewardId,
            name: d.name,
            points_cost: d.pointsCost,
            stock: d.stock,
            kind: d.kind,
            active: true,
            created_at: d.at,
            updated_at: d.at,
          },
        },
      ];
    }
    case 'RewardChanged': {
      const c = event.data.changes;
      return [
        {
          kind: 'update',
          table: 'rm_rewards',
          key: { reward_id: event.data.rewardId },
          set: {
            ...(c.name !== undefined && { name: c.name }),
            ...(c.pointsCost !== undefined && { points_cost: c.pointsCost }),
            ...(c.stock !== undefined && { stock: c.stock }),
            ...(c.active !== undefined && { active: c.active }),
            updated_at: event.data.at,
          },
        },
      ];
    }
    case 'StockReserved':
    case 'StockReleased':
      return [
        {
          kind: 'update',
          table: 'rm_rewards',
          key: { reward_id: event.data.rewardId },
          set: { stock: event.data.remaining, updated_at: event.data.at },
        },
      ];
    case 'OrderPlaced': {
      const d = event.data;
      return [
        {
          kind: 'insert',
          table: 'rm_orders',
          row: {
            program_id: programId,
            order_id: d.orderId,
            member_id: d.memberId,
            reward_id: d.rewardId,
            reward_name: d.rewardName,
            kind: d.kind,
            points_spent: d.pointsSpent,
            status: 'redeemed',
            carrier: null,
            tracking_number: null,
            history: [{ status: 'redeemed', at: d.at }],
            created_at: d.at,
            updated_at: d.at,
          },
        },
      ];
    }
    case 'OrderShipped':
      return [
        orderStatus(event.data.orderId, 'shipped', event.data.at, {
          carrier: event.data.carrier,
          tracking_number: event.data.trackingNumber,
        }),
      ];
    case 'OrderDelivered':
      return [orderStatus(event.data.orderId, 'delivered', event.data.at, {})];
    case 'OrderCancelled':
      return [orderStatus(event.data.orderId, 'cancelled', event.data.at, {})];
    case 'LeaderboardCreated': {
      const d = event.data;
      return [
        {
          kind: 'insert',
          table: 'rm_leaderboards',
          row: {
            program_id: programId,
            leaderboard_id: d.leaderboardId,
            name: d.name,
            period: d.period,
            timezone: d.timezone,
            period_start: d.periodStart,
            period_end: d.periodEnd,
            created_at: d.at,
            top_n: d.topN ?? defaultTopN,
          },
        },
      ];
    }
    case 'ScoreRecorded': {
      const d = event.data;
      const reached = Number(event.revision);
      return [
        {
          kind: 'upsert',
          table: 'rm_standings',
          row: {
            leaderboard_id: d.leaderboardId,
            member_id: d.memberId,
            points: d.score,
            reached_seq: reached,
            withdrawn: false,
          },
          set: { points: d.score, reached_seq: reached },
        },
      ];
    }
    case 'ScoreReversed':
      return [
        {
          kind: 'update',
          table: 'rm_standings',
          key: { leaderboard_id: event.data.leaderboardId, member_id: event.data.memberId },
          set: { points: event.data.score },
        },
      ];
    case 'MemberWithdrawn':
    case 'MemberReinstated':
      return [
        {
          kind: 'update',
          table: 'rm_standings',
          key: { leaderboard_id: event.data.leaderboardId, member_id: event.data.memberId },
          set: { withdrawn: event.type === 'MemberWithdrawn', points: event.data.score },
        },
      ];
    case 'PeriodCorrected': {
      const d = event.data;
      return [
        {
          kind: 'insert',
          table: 'rm_period_corrections',
          row: {
            transaction_id: d.transactionId,
            leaderboard_id: d.leaderboardId,
            period_start: d.periodStart,
            member_id: d.memberId,
            points: d.points,
            reversal_of: d.reversalOf,
            corrected_at: d.at,
          },
          then: [
            {
              kind: 'correctPeriod',
              leaderboardId: d.leaderboardId,
              periodStart: d.periodStart,
              memberId: d.memberId,
              points: d.points,
            },
          ],
        },
      ];
    }
    case 'PositionChanged':
      // Positions are ranked when read (projections/queries.ts): this event names only
      // the members told of a change, and old histories' many ones must fold the same way.
      return none;
    case 'PeriodEnded': {
      const d = event.data;
      return [
        {
          kind: 'insert',
          table: 'rm_leaderboard_periods',
          row: {
            leaderboard_id: d.leaderboardId,
            period_start: d.periodStart,
            period_end: d.periodEnd,
            standings: d.standings,
            ended_at: d.at,
          },
          // The event carries the top ten; the whole final ranking is the period's scores, which
          // rm_standings holds until now. Only with the period's own row, so a period recorded
          // twice keeps its first ranking whole.
          then: [
            { kind: 'rankPeriod', leaderboardId: d.leaderboardId, periodStart: d.periodStart },
          ],
        },
        { kind: 'delete', table: 'rm_standings', where: { leaderboard_id: d.leaderboardId } },
      ];
    }
    case 'PeriodOpened':
      return [
        {
          kind: 'update',
          table: 'rm_leaderboards',
          key: { leaderboard_id: event.data.leaderboardId },
          set: { period_start: event.data.periodStart, period_end: event.data.periodEnd },
        },
      ];
    case 'LeaderboardTimezoneChanged':
      return [
        {
          kind: 'update',
          table: 'rm_leaderboards',
          key: { leaderboard_id: event.data.leaderboardId },
          set: { timezone: event.data.timezone },
        },
      ];
    // Freezing moves no points; a deferred refund shows once it is paid (PointsRefunded).
    case 'PointsFrozen':
    case 'PointsUnfrozen':
    case 'RefundDeferred':
      return none;
    // Reservations of emails and external ids, and their revocation: no read model shows them.
    case 'MemberReservationRevoked':
    case 'IdentifierReserved':
    case 'IdentifierReleased':
      return none;
  }
};

/** An order's new status, once: a repeated one (an event handled twice) leaves the history. */
const orderStatus = (
  orderId: string,
  status: 'shipped' | 'delivered' | 'cancelled',
  at: string,
  extra: { carrier?: string; tracking_number?: string },
): RowMutation => ({
  kind: 'update',
  table: 'rm_orders',
  key: { order_id: orderId },
  set: { ...extra, status, updated_at: at },
  unless: { status },
  append: { history: [{ status, at }] },
});
