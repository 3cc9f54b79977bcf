import { sql, type Kysely, type Migration } from 'kysely';

/**
 * State the policy reactor keeps for itself, written in its own subscription transaction: it
 * must not read another subscription's read models, which may lag behind it.
 */
export const policyStateMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`create table policy_leaderboards (
      program_id text not null,
      leaderboard_id text not null,
      primary key (program_id, leaderboard_id)
    )`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop table policy_leaderboards`.execute(db);
  },
};
