import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Read models for reversals, tier overrides and deactivation (issue 14), as DDL on top of 010's,
 * unqualified like it: the replay (adapters/audit/replay.ts) runs it in its own schema too.
 *
 * - `rm_ledger_transaction`: a reversal finds the member of a transaction by its id.
 * - `rm_members.tier_locked_until`: an override's hold; the tier job re-evaluates lapsed ones.
 * - `rm_standings.withdrawn`: a deactivated member's standing is kept aside (not ranked) so a
 *   reactivation in the same period restores it.
 * - `rm_period_corrections`: reversals of awards counted in an ended period, one row per
 *   reversal; `rm_period_standings` holds the standings with them applied.
 */
export const reversalReadModelStatements: readonly string[] = [
  `create index rm_ledger_transaction on rm_ledger (transaction_id)`,
  `alter table rm_members add column tier_locked_until timestamptz`,
  `create index rm_members_tier_lock on rm_members (tier_locked_until) where tier_locked_until is not null`,
  `alter table rm_standings add column withdrawn boolean not null default false`,
  `create table rm_period_corrections (
    transaction_id text primary key,
    leaderboard_id text not null,
    period_start timestamptz not null,
    member_id text not null,
    points bigint not null,
    reversal_of text not null,
    corrected_at timestamptz not null
  )`,
  `create index rm_period_corrections_period on rm_period_corrections (leaderboard_id, period_start)`,
];

export const reversalReadModelsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    for (const statement of reversalReadModelStatements) await sql.raw(statement).execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop table rm_period_corrections`.execute(db);
    await sql`alter table rm_standings drop column withdrawn`.execute(db);
    await sql`alter table rm_members drop column tier_locked_until`.execute(db);
    await sql`drop index rm_ledger_transaction`.execute(db);
  },
};
