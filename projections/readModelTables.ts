import type { ColumnType, Generated } from 'kysely';
import type { LedgerKind } from './ledgerLine.ts';
import type { PointsLot } from '../domain/pointsAccount.ts';

/** timestamptz: read back as Date (pg and PGlite alike), written as an ISO string. */
type Timestamp = ColumnType<Date, string, string>;
/** bigint columns: both drivers hand back numbers (adapters/db/database.ts sets pg's parser). */
type BigCount = ColumnType<number, number, number>;

/** The read models' tables: written only by projections/readModels.ts. */
export type ReadModelTables = {
  rm_programs: {
    program_id: string;
    name: string;
    tiers: { name: string; minPoints: number }[];
    tier_basis: 'lifetime' | 'balance';
    points_expiry_days: number | null;
    /** How points_expiry_days counts; 'inactivity' for programs made before the mode existed. */
    points_expiry_mode: ColumnType<
      'inactivity' | 'per_award',
      'inactivity' | 'per_award' | undefined,
      'inactivity' | 'per_award'
    >;
    timezone: string;
    notification_email: string;
    created_at: Timestamp;
    updated_at: Timestamp;
  };
  rm_members: {
    seq: Generated<number>;
    program_id: string;
    member_id: string;
    email: string;
    name: string;
    external_id: string | null;
    attributes: Record<string, string | number | boolean | null>;
    tier: string | null;
    balance: BigCount;
    lifetime_points: BigCount;
    last_activity_at: ColumnType<Date | null, string | null, string | null>;
    /** The balance by arrival, oldest first (domain/pointsAccount.ts PointsLot, as JSON). */
    expiry_lots: ColumnType<PointsLot[], string | undefined, string>;
    /** expiry_lots[0].at: what the per-award expiry sweep looks members up by. */
    oldest_lot_at: ColumnType<Date | null, string | null | undefined, string | null>;
    status: 'active' | 'deactivated';
    /** Until when an operator's override holds the tier against the rules. */
    tier_locked_until: ColumnType<Date | null, string | null, string | null>;
    created_at: Timestamp;
    updated_at: Timestamp;
  };
  rm_ledger: {
    seq: Generated<number>;
    event_id: string;
    program_id: string;
    member_id: string;
    transaction_id: string;
    kind: LedgerKind;
    points: BigCount;
    reason: string;
    reference: string | null;
    balance_after: BigCount;
    occurred_at: Timestamp;
  };
  rm_rewards: {
    seq: Generated<number>;
    program_id: string;
    reward_id: string;
    name: string;
    points_cost: number;
    stock: number | null;
    kind: 'physical' | 'digital';
    active: boolean;
    created_at: Timestamp;
    updated_at: Timestamp;
  };
  rm_orders: {
    seq: Generated<number>;
    program_id: string;
    order_id: string;
    member_id: string;
    reward_id: string;
    reward_name: string;
    kind: 'physical' | 'digital';
    points_spent: number;
    status: 'redeemed' | 'shipped' | 'delivered' | 'cancelled';
    carrier: string | null;
    tracking_number: string | null;
    history: { status: string; at: string }[];
    created_at: Timestamp;
    updated_at: Timestamp;
  };
  rm_leaderboards: {
    seq: Generated<number>;
    program_id: string;
    leaderboard_id: string;
    name: string;
    period: 'weekly' | 'monthly' | 'quarterly';
    timezone: string;
    /** Places that count as the top: a member other than the scorer hears of crossing it. */
    top_n: number;
    period_start: Timestamp;
    period_end: Timestamp;
    created_at: Timestamp;
  };
  rm_standings: {
    leaderboard_id: string;
    member_id: string;
    points: number;
    /** The ScoreRecorded's stream revision: among equal points, the lower came first. */
    reached_seq: BigCount;
    /** The member was deactivated during the period: kept aside, not ranked. */
    withdrawn: ColumnType<boolean, boolean | undefined, boolean>;
  };
  rm_leaderboard_periods: {
    leaderboard_id: string;
    period_start: Timestamp;
    period_end: Timestamp;
    /** The top ten, as the PeriodEnded event (and its webhook) carries them. */
    standings: { position: number; memberId: string; points: number }[];
    ended_at: Timestamp;
  };
  /** Every member of an ended period's final ranking, in order. */
  rm_period_standings: {
    leaderboard_id: string;
    period_start: Timestamp;
    /** 1-based place in the ranking (ties ordered as ranked): the page cursor. */
    ordinal: number;
    position: number;
    member_id: string;
    points: BigCount;
  };
  /** Reversals of awards counted in an ended period: applied to `rm_period_standings`. */
  rm_period_corrections: {
    transaction_id: string;
    leaderboard_id: string;
    period_start: Timestamp;
    member_id: string;
    /** The points taken from the member's final score. */
    points: BigCount;
    reversal_of: string;
    corrected_at: Timestamp;
  };
};
