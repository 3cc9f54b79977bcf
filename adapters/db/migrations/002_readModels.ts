import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The read models' DDL, unqualified: run under `set local search_path` it builds the same tables in
 * another schema (adapters/audit/replay.ts rebuilds them there).
 */
export const readModelStatements: readonly string[] = [
  `create table rm_programs (
    program_id text primary key,
    name text not null,
    tiers jsonb not null,
    tier_basis text not null,
    points_expiry_days integer,
    timezone text not null,
    notification_email text not null,
    created_at timestamptz not null,
    updated_at timestamptz not null
  )`,
  `create table rm_members (
    seq bigint generated always as identity,
    program_id text not null,
    member_id text primary key,
    email text not null,
    name text not null,
    external_id text,
    attributes jsonb not null,
    tier text,
    balance bigint not null default 0,
    lifetime_points bigint not null default 0,
    last_activity_at timestamptz,
    status text not null,
    created_at timestamptz not null,
    updated_at timestamptz not null
  )`,
  `create index rm_members_program on rm_members (program_id, seq)`,
  `create index rm_members_email on rm_members (program_id, lower(email))`,
  `create index rm_members_external on rm_members (program_id, external_id)`,
  `create index rm_members_activity on rm_members (program_id, last_activity_at) where balance > 0`,
  `create table rm_ledger (
    seq bigint generated always as identity,
    event_id uuid primary key,
    program_id text not null,
    member_id text not null,
    transaction_id text not null,
    kind text not null,
    points bigint not null,
    reason text not null,
    reference text,
    balance_after bigint not null,
    occurred_at timestamptz not null
  )`,
  `create index rm_ledger_member on rm_ledger (member_id, seq desc)`,
  `create index rm_ledger_program_time on rm_ledger (program_id, occurred_at)`,
  `create table rm_rewards (
    seq bigint generated always as identity,
    program_id text not null,
    reward_id text primary key,
    name text not null,
    points_cost integer not null,
    stock integer,
    kind text not null,
    active boolean not null,
    created_at timestamptz not null,
    updated_at timestamptz not null
  )`,
  `create index rm_rewards_program on rm_rewards (program_id, seq)`,
  `create table rm_orders (
    program_id text not null,
    order_id text primary key,
    member_id text not null,
    reward_id text not null,
    reward_name text not null,
    kind text not null,
    points_spent integer not null,
    status text not null,
    carrier text,
    tracking_number text,
    history jsonb not null,
    created_at timestamptz not null,
    updated_at timestamptz not null
  )`,
  `create index rm_orders_member on rm_orders (member_id, created_at desc)`,
  `create table rm_leaderboards (
    seq bigint generated always as identity,
    program_id text not null,
    leaderboard_id text primary key,
    name text not null,
    period text not null,
    timezone text not null,
    period_start timestamptz not null,
    period_end timestamptz not null,
    created_at timestamptz not null
  )`,
  `create index rm_leaderboards_program on rm_leaderboards (program_id, seq)`,
  `create table rm_standings (
    leaderboard_id text not null,
    member_id text not null,
    points bigint not null,
    position integer not null,
    reached_seq bigint not null,
    primary key (leaderboard_id, member_id)
  )`,
  `create table rm_leaderboard_periods (
    leaderboard_id text not null,
    period_start timestamptz not null,
    period_end timestamptz not null,
    standings jsonb not null,
    ended_at timestamptz not null,
    primary key (leaderboard_id, period_start)
  )`,
];

/** Read models: rebuilt from the event history at any time, so they hold nothing of their own. */
export const readModelsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    for (const statement of readModelStatements) await sql.raw(statement).execute(db);
  },
  async down(db: Kysely<unknown>) {
    for (const table of [
      'rm_leaderboard_periods',
      'rm_standings',
      'rm_leaderboards',
      'rm_orders',
      'rm_rewards',
      'rm_ledger',
      'rm_members',
      'rm_programs',
    ]) {
      await sql.raw(`drop table ${table}`).execute(db);
    }
  },
};
