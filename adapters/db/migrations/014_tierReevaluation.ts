import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Rule-change jobs (issue 14 item 5): one row per program whose tier table or tier basis changed,
 * recorded by the policy reactor in its own subscription transaction when it handles the
 * ProgramUpdated event, and worked through by the `tiers` job in pages of members.
 *
 * - `event_id` and the position (`commit_position`, `prepare_position`) name the change; a later
 *   change replaces them and starts the pass again (it supersedes: every member is evaluated
 *   against the program's latest rules anyway). A change handled again is recognised by its id.
 * - `cursor`: the last member id handled, in member id order; '' before the first page.
 * - `handled` / `moved`: members evaluated / moved so far in this pass; `total`: the program's
 *   members when the pass began (null until then).
 * - `finished_at`: null while the job runs.
 */
export const tierReevaluationMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`create table policy_tier_reevaluations (
      program_id text primary key,
      event_id text not null,
      commit_position numeric(20, 0) not null,
      prepare_position numeric(20, 0) not null,
      requested_at timestamptz not null,
      cursor text not null default '',
      handled integer not null default 0,
      moved integer not null default 0,
      total integer,
      finished_at timestamptz
    )`.execute(db);
    await sql`create index policy_tier_reevaluations_running on policy_tier_reevaluations
      (requested_at) where finished_at is null`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop table policy_tier_reevaluations`.execute(db);
  },
};
