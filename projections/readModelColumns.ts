import type { ReadModelTables } from './readModelTables.ts';

/**
 * The read-model tables a replay rebuilds, their columns and keys: plain data, apart from the
 * replay's code, so the CLI can check `--projection` without loading kysely.
 */
export type ReadModelTable = keyof ReadModelTables;

type ColumnType = 'text' | 'uuid' | 'jsonb' | 'integer' | 'bigint' | 'boolean' | 'timestamptz';

/** Columns a replay writes (every column but the generated `seq`), with their SQL types. */
export const tableColumns: Record<ReadModelTable, readonly (readonly [string, ColumnType])[]> = {
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

/** Primary keys: what a verify pairs rows by. */
export const tableKeys: Record<ReadModelTable, readonly string[]> = {
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
