import type { ReadModelTables } from './readModelTables.ts';

/**
 * The read-model tables as the fold writes them: each row's type, and each table's columns and
 * keys as data (what a replay inserts, a verify compares, and the live projector sends as json).
 * Plain data apart from the fold (projections/readModelRows.ts), so the CLI can check
 * `--projection` without loading kysely.
 */

export type ReadModelTable = keyof ReadModelTables;

type Written<S> = S extends Date ? string : S;
/** A column's value as the fold writes it: timestamps as ISO text, jsonb as its value. */
type Value<C> = C extends { readonly __select__: infer S } ? Written<S> : C;

/** A whole row of a table as written (every column but the generated `seq`). */
export type RowOf<T extends ReadModelTable> = {
  [C in Exclude<keyof ReadModelTables[T], 'seq'>]: Value<ReadModelTables[T][C]>;
};

type ColumnType = 'text' | 'uuid' | 'jsonb' | 'integer' | 'bigint' | 'boolean' | 'timestamptz';

/**
 * Every column a fold writes (all but the generated `seq`), with its SQL type: what a replay
 * inserts and a verify compares, and which values the live projector sends as json.
 */
export const tableColumns: {
  [T in ReadModelTable]: readonly (readonly [keyof RowOf<T> & string, ColumnType])[];
} = {
  rm_programs: [
    ['program_id', 'text'],
    ['name', 'text'],
    ['tiers', 'jsonb'],
    ['tier_basis', 'text'],
    ['points_expiry_days', 'integer'],
    ['points_expiry_mode', 'text'],
    ['timezone', 'text'],
    ['notification_email', 'text'],
    ['created_at', 'timestamptz'],
    ['updated_at', 'timestamptz'],
  ],
  rm_members: [
    ['program_id', 'text'],
    ['member_id', 'text'],
    ['email', 'text'],
    ['name', 'text'],
    ['external_id', 'text'],
    ['attributes', 'jsonb'],
    ['tier', 'text'],
    ['balance', 'bigint'],
    ['lifetime_points', 'bigint'],
    ['last_activity_at', 'timestamptz'],
    ['expiry_lots', 'jsonb'],
    ['oldest_lot_at', 'timestamptz'],
    ['status', 'text'],
    ['created_at', 'timestamptz'],
    ['updated_at', 'timestamptz'],
    ['tier_locked_until', 'timestamptz'],
  ],
  rm_ledger: [
    ['event_id', 'uuid'],
    ['program_id', 'text'],
    ['member_id', 'text'],
    ['transaction_id', 'text'],
    ['kind', 'text'],
    ['points', 'bigint'],
    ['reason', 'text'],
    ['reference', 'text'],
    ['balance_after', 'bigint'],
    ['occurred_at', 'timestamptz'],
  ],
  rm_rewards: [
    ['program_id', 'text'],
    ['reward_id', 'text'],
    ['name', 'text'],
    ['points_cost', 'integer'],
    ['stock', 'integer'],
    ['kind', 'text'],
    ['active', 'boolean'],
    ['created_at', 'timestamptz'],
    ['updated_at', 'timestamptz'],
  ],
  rm_orders: [
    ['program_id', 'text'],
    ['order_id', 'text'],
    ['member_id', 'text'],
    ['reward_id', 'text'],
    ['reward_name', 'text'],
    ['kind', 'text'],
    ['points_spent', 'integer'],
    ['status', 'text'],
    ['carrier', 'text'],
    ['tracking_number', 'text'],
    ['history', 'jsonb'],
    ['created_at', 'timestamptz'],
    ['updated_at', 'timestamptz'],
  ],
  rm_leaderboards: [
    ['program_id', 'text'],
    ['leaderboard_id', 'text'],
    ['name', 'text'],
    ['period', 'text'],
    ['timezone', 'text'],
    ['period_start', 'timestamptz'],
    ['period_end', 'timestamptz'],
    ['created_at', 'timestamptz'],
    ['top_n', 'integer'],
  ],
  rm_standings: [
    ['leaderboard_id', 'text'],
    ['member_id', 'text'],
    ['points', 'bigint'],
    ['reached_seq', 'bigint'],
    ['withdrawn', 'boolean'],
  ],
  rm_leaderboard_periods: [
    ['leaderboard_id', 'text'],
    ['period_start', 'timestamptz'],
    ['period_end', 'timestamptz'],
    ['standings', 'jsonb'],
    ['ended_at', 'timestamptz'],
  ],
  rm_period_standings: [
    ['leaderboard_id', 'text'],
    ['period_start', 'timestamptz'],
    ['ordinal', 'integer'],
    ['position', 'integer'],
    ['member_id', 'text'],
    ['points', 'bigint'],
  ],
  rm_period_corrections: [
    ['transaction_id', 'text'],
    ['leaderboard_id', 'text'],
    ['period_start', 'timestamptz'],
    ['member_id', 'text'],
    ['points', 'bigint'],
    ['reversal_of', 'text'],
    ['corrected_at', 'timestamptz'],
  ],
};

/** Primary keys: what an insert is skipped on, and what a verify pairs rows by. */
export const tableKeys: { [T in ReadModelTable]: readonly (keyof RowOf<T> & string)[] } = {
  rm_programs: ['program_id'],
  rm_members: ['member_id'],
  rm_ledger: ['event_id'],
  rm_rewards: ['reward_id'],
  rm_orders: ['order_id'],
  rm_leaderboards: ['leaderboard_id'],
  rm_standings: ['leaderboard_id', 'member_id'],
  rm_leaderboard_periods: ['leaderboard_id', 'period_start'],
  rm_period_standings: ['leaderboard_id', 'period_start', 'ordinal'],
  rm_period_corrections: ['transaction_id'],
};

export const readModelTableNames = Object.keys(tableColumns) as ReadModelTable[];
