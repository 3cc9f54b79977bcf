import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Leaderboard read models after issue 14, as DDL on top of 002's, unqualified like it: the
 * replay (adapters/audit/replay.ts) runs both lists under `set local search_path` to build the
 * same tables in its own schema.
 *
 * - `rm_leaderboards.top_n`: how many places count as the board's top, for which members other
 *   than the scorer get `leaderboard.position_changed`. Boards made before it existed have 10.
 * - `rm_standings.position` goes: the domain no longer records a PositionChanged for every
 *   member an award displaces, so a stored position would go stale; positions are ranked when
 *   read (points descending, equal points sharing a place, earlier arrival first).
 * - `rm_period_standings`: the complete final ranking of every ended period, one row per member
 *   in ranking order (`ordinal`, the page cursor), copied from `rm_standings` when the period
 *   ends; `rm_leaderboard_periods.standings` keeps the top ten the event carries. Periods that
 *   ended before this migration have no rows here until the read models are rebuilt from the
 *   history (`npx incentable replay --swap`), which restores them.
 */
export const leaderboardReadModelStatements: readonly string[] = [
  `alter table rm_leaderboards add column top_n integer not null default 10`,
  `alter table rm_standings drop column position`,
  `create table rm_period_standings (
    leaderboard_id text not null,
    period_start timestamptz not null,
    ordinal integer not null,
    position integer not null,
    member_id text not null,
    points bigint not null,
    primary key (leaderboard_id, period_start, ordinal)
  )`,
];

export const leaderboardReadModelsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    for (const statement of leaderboardReadModelStatements) await sql.raw(statement).execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop table rm_period_standings`.execute(db);
    await sql`alter table rm_standings add column position integer not null default 0`.execute(db);
    await sql`alter table rm_leaderboards drop column top_n`.execute(db);
  },
};
