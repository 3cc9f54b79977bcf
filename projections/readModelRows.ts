import type { DomainEvent, DomainEventType } from '../domain/events.ts';
import { defaultTopN } from '../domain/leaderboard.ts';
import { isActivity, ledgerLineOf, type LedgerEvent } from './ledgerLine.ts';

/**
 * The read-model fold, once: what each event changes in which row, as data. The live projector
 * (readModels.ts) turns a change into SQL; a replay (adapters/audit/replayProjector.ts) applies it
 * to rows it holds in memory. Pure: no clock, no I/O; a recorded fact never throws here.
 */

/** What the fold reads of an event: of its metadata only the program id. */
export type FoldedEvent = {
  id: string;
  type: string;
  data: unknown;
  revision: bigint;
  programId: string | null;
};

/** A read-model row or part of one, by column; JSON columns hold values, not text. */
export type Row = Record<string, unknown>;

/** The tables whose rows events create and then change, each by one key column. */
export type EntityTable =
  'rm_programs' | 'rm_members' | 'rm_rewards' | 'rm_orders' | 'rm_leaderboards';

export const entityKeys = {
  rm_programs: 'program_id',
  rm_members: 'member_id',
  rm_rewards: 'reward_id',
  rm_orders: 'order_id',
  rm_leaderboards: 'leaderboard_id',
} as const satisfies Record<EntityTable, string>;

export type OrderStatus = 'shipped' | 'delivered' | 'cancelled';

/** A standing's leaderboard and member: its key. */
export type StandingKey = { leaderboardId: string; memberId: string };

export type RowChange =
  /** A new row, unless one with its key is there already (an event handled twice). */
  | { op: 'create'; table: EntityTable; key: string; row: Row }
  /** Columns of the row with this key, when there is one. */
  | { op: 'update'; table: Exclude<EntityTable, 'rm_orders'>; key: string; set: Row }
  /**
   * A ledger line (unless the event has one already) and its member's balance after it. The
   * member's expiry lots follow from every earlier points event, so each side folds them from
   * `event` (domain/pointsAccount.ts `lotsAfter`), once per new ledger line.
   */
  | { op: 'points'; event: LedgerEvent; ledger: Row; memberId: string; set: Row }
  /** The order's new status, appended to its history with `at`, unless it has that status. */
  | { op: 'orderStatus'; key: string; status: OrderStatus; at: string; set: Row }
  /** The member's score on the board: `row` when new, else its points and reached_seq. */
  | { op: 'score'; row: Row }
  /** Columns of a standing, when there is one. */
  | { op: 'standing'; key: StandingKey; set: Row }
  /**
   * The period's row, unless the period ended before; with it, the whole final ranking of the
   * board's standings (points down, equal points sharing a place, the lower reached_seq first,
   * withdrawn members left out). Then the board's standings go, the period's row new or not.
   */
  | { op: 'periodEnded'; leaderboardId: string; periodStart: string; row: Row }
  /**
   * A correction of an ended period, unless its transaction was applied; with it, the member's
   * final points lose `points` and the period is ranked again (readModels.ts
   * `correctPeriodStandings`).
   */
  | { op: 'periodCorrected'; row: Row; correction: PeriodCorrection };

export type PeriodCorrection = StandingKey & { periodStart: string; points: number };

type EventOf<T extends DomainEventType> = Extract<DomainEvent, { type: T }>;

type ChangeOf = {
  [T in DomainEventType]: (event: EventOf<T>, recorded: FoldedEvent) => RowChange | null;
};

/** Nothing a read model shows: the answer of the events in `noChange`. */
const none = (): null => null;

const update = (table: Exclude<EntityTable, 'rm_orders'>, key: string, set: Row): RowChange => ({
  op: 'update',
  table,
  key,
  set,
});

/** `changes`' defined fields under their column names. */
const columnsOf = (changes: Record<string, unknown>, columns: Record<string, string>): Row => {
  const set: Row = {};
  for (const [field, column] of Object.entries(columns))
    if (changes[field] !== undefined) set[column] = changes[field];
  return set;
};

const programChanges: Pick<ChangeOf, 'ProgramCreated' | 'ProgramUpdated'> = {
  ProgramCreated: ({ data: d }) => ({
    op: 'create',
    table: 'rm_programs',
    key: d.programId,
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
  }),
  ProgramUpdated: ({ data: d }) =>
    update('rm_programs', d.programId, {
      ...columnsOf(d.changes, {
        name: 'name',
        tiers: 'tiers',
        tierBasis: 'tier_basis',
        pointsExpiryDays: 'points_expiry_days',
        pointsExpiryMode: 'points_expiry_mode',
        timezone: 'timezone',
        notificationEmail: 'notification_email',
      }),
      updated_at: d.at,
    }),
};

const memberChanges: Pick<
  ChangeOf,
  | 'MemberRegistered'
  | 'MemberUpdated'
  | 'MemberTierChanged'
  | 'MemberTierLocked'
  | 'MemberDeactivated'
  | 'MemberReactivated'
> = {
  MemberRegistered: ({ data: d }) => ({
    op: 'create',
    table: 'rm_members',
    key: d.memberId,
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
  }),
  MemberUpdated: ({ data: d }) =>
    update('rm_members', d.memberId, {
      ...columnsOf(d.changes, {
        email: 'email',
        name: 'name',
        externalId: 'external_id',
        attributes: 'attributes',
      }),
      updated_at: d.at,
    }),
  MemberTierChanged: ({ data: d }) =>
    update('rm_members', d.memberId, { tier: d.newTier, updated_at: d.at }),
  MemberTierLocked: ({ data: d }) =>
    update('rm_members', d.memberId, { tier_locked_until: d.lockedUntil, updated_at: d.at }),
  MemberDeactivated: ({ data: d }) =>
    update('rm_members', d.memberId, { status: 'deactivated', updated_at: d.at }),
  MemberReactivated: ({ data: d }) =>
    update('rm_members', d.memberId, { status: 'active', updated_at: d.at }),
};

/** A points event's ledger line and its member's balance after it. */
const pointsChange = (event: LedgerEvent, recorded: FoldedEvent): RowChange => {
  const d = event.data;
  const set: Row = { balance: d.newBalance, lifetime_points: d.lifetimePoints, updated_at: d.at };
  if (isActivity(event)) set.last_activity_at = d.at;
  return {
    op: 'points',
    event,
    memberId: d.memberId,
    ledger: {
      event_id: recorded.id,
      program_id: recorded.programId ?? '',
      member_id: d.memberId,
      transaction_id: d.transactionId,
      ...ledgerLineOf(event),
      reason: d.reason,
      balance_after: d.newBalance,
      occurred_at: d.at,
    },
    set,
  };
};

const pointsChanges: Pick<
  ChangeOf,
  | 'PointsAwarded'
  | 'PointsDeducted'
  | 'PointsExpired'
  | 'PointsRefunded'
  | 'PointsReversed'
  | 'RewardRedeemed'
> = {
  PointsAwarded: pointsChange,
  PointsDeducted: pointsChange,
  PointsExpired: pointsChange,
  PointsRefunded: pointsChange,
  PointsReversed: pointsChange,
  // The balance moved with the PointsDeducted appended beside it; this fact names the order.
  RewardRedeemed: ({ data: d }) => update('rm_members', d.memberId, { last_activity_at: d.at }),
};

const rewardChanges: Pick<
  ChangeOf,
  'RewardCreated' | 'RewardChanged' | 'StockReserved' | 'StockReleased'
> = {
  RewardCreated: ({ data: d }, recorded) => ({
    op: 'create',
    table: 'rm_rewards',
    key: d.rewardId,
    row: {
      program_id: recorded.programId ?? '',
      reward_id: d.rewardId,
      name: d.name,
      points_cost: d.pointsCost,
      stock: d.stock,
      kind: d.kind,
      active: true,
      created_at: d.at,
      updated_at: d.at,
    },
  }),
  RewardChanged: ({ data: d }) =>
    update('rm_rewards', d.rewardId, {
      ...columnsOf(d.changes, {
        name: 'name',
        pointsCost: 'points_cost',
        stock: 'stock',
        active: 'active',
      }),
      updated_at: d.at,
    }),
  StockReserved: ({ data: d }) =>
    update('rm_rewards', d.rewardId, { stock: d.remaining, updated_at: d.at }),
  StockReleased: ({ data: d }) =>
    update('rm_rewards', d.rewardId, { stock: d.remaining, updated_at: d.at }),
};

const orderChanges: Pick<
  ChangeOf,
  'OrderPlaced' | 'OrderShipped' | 'OrderDelivered' | 'OrderCancelled'
> = {
  OrderPlaced: ({ data: d }, recorded) => ({
    op: 'create',
    table: 'rm_orders',
    key: d.orderId,
    row: {
      program_id: recorded.programId ?? '',
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
  }),
  OrderShipped: ({ data: d }) => ({
    op: 'orderStatus',
    key: d.orderId,
    status: 'shipped',
    at: d.at,
    set: { carrier: d.carrier, tracking_number: d.trackingNumber },
  }),
  OrderDelivered: ({ data: d }) => ({
    op: 'orderStatus',
    key: d.orderId,
    status: 'delivered',
    at: d.at,
    set: {},
  }),
  OrderCancelled: ({ data: d }) => ({
    op: 'orderStatus',
    key: d.orderId,
    status: 'cancelled',
    at: d.at,
    set: {},
  }),
};

const leaderboardChanges: Pick<
  ChangeOf,
  'LeaderboardCreated' | 'PeriodOpened' | 'LeaderboardTimezoneChanged'
> = {
  LeaderboardCreated: ({ data: d }, recorded) => ({
    op: 'create',
    table: 'rm_leaderboards',
    key: d.leaderboardId,
    row: {
      program_id: recorded.programId ?? '',
      leaderboard_id: d.leaderboardId,
      name: d.name,
      period: d.period,
      timezone: d.timezone,
      top_n: d.topN ?? defaultTopN,
      period_start: d.periodStart,
      period_end: d.periodEnd,
      created_at: d.at,
    },
  }),
  PeriodOpened: ({ data: d }) =>
    update('rm_leaderboards', d.leaderboardId, {
      period_start: d.periodStart,
      period_end: d.periodEnd,
    }),
  LeaderboardTimezoneChanged: ({ data: d }) =>
    update('rm_leaderboards', d.leaderboardId, { timezone: d.timezone }),
};

const standingChanges: Pick<
  ChangeOf,
  | 'ScoreRecorded'
  | 'ScoreReversed'
  | 'MemberWithdrawn'
  | 'MemberReinstated'
  | 'PeriodEnded'
  | 'PeriodCorrected'
> = {
  ScoreRecorded: ({ data: d }, recorded) => ({
    op: 'score',
    row: {
      leaderboard_id: d.leaderboardId,
      member_id: d.memberId,
      points: d.score,
      reached_seq: Number(recorded.revision),
      withdrawn: false,
    },
  }),
  ScoreReversed: ({ data: d }) => ({ op: 'standing', key: d, set: { points: d.score } }),
  MemberWithdrawn: ({ data: d }) => ({
    op: 'standing',
    key: d,
    set: { withdrawn: true, points: d.score },
  }),
  MemberReinstated: ({ data: d }) => ({
    op: 'standing',
    key: d,
    set: { withdrawn: false, points: d.score },
  }),
  PeriodEnded: ({ data: d }) => ({
    op: 'periodEnded',
    leaderboardId: d.leaderboardId,
    periodStart: d.periodStart,
    row: {
      leaderboard_id: d.leaderboardId,
      period_start: d.periodStart,
      period_end: d.periodEnd,
      standings: d.standings,
      ended_at: d.at,
    },
  }),
  PeriodCorrected: ({ data: d }) => ({
    op: 'periodCorrected',
    row: {
      transaction_id: d.transactionId,
      leaderboard_id: d.leaderboardId,
      period_start: d.periodStart,
      member_id: d.memberId,
      points: d.points,
      reversal_of: d.reversalOf,
      corrected_at: d.at,
    },
    correction: d,
  }),
};

const noChange: Pick<
  ChangeOf,
  | 'PositionChanged'
  | 'PointsFrozen'
  | 'PointsUnfrozen'
  | 'RefundDeferred'
  | 'MemberReservationRevoked'
  | 'IdentifierReserved'
  | 'IdentifierReleased'
> = {
  // Positions are ranked when read (projections/queries.ts): this event names only the members
  // told of a change, and old histories' many ones must fold the same way.
  PositionChanged: none,
  // Freezing moves no points; a deferred refund shows once it is paid (PointsRefunded).
  PointsFrozen: none,
  PointsUnfrozen: none,
  RefundDeferred: none,
  // Reservations of emails and external ids, and their revocation: no read model shows them.
  MemberReservationRevoked: none,
  IdentifierReserved: none,
  IdentifierReleased: none,
};

/** Every event type's change: a new event type that is not here fails to compile. */
const changeOf: ChangeOf = {
  ...programChanges,
  ...memberChanges,
  ...pointsChanges,
  ...rewardChanges,
  ...orderChanges,
  ...leaderboardChanges,
  ...standingChanges,
  ...noChange,
};

/** What `recorded` changes in the read models; null for nothing (or a type this code predates). */
export const rowChangeOf = (recorded: FoldedEvent): RowChange | null => {
  if (!Object.hasOwn(changeOf, recorded.type)) return null;
  const change = changeOf[recorded.type as DomainEventType] as (
    event: DomainEvent,
    recorded: FoldedEvent,
  ) => RowChange | null;
  return change({ type: recorded.type, data: recorded.data } as DomainEvent, recorded);
};
