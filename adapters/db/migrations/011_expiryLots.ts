import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Read-model columns for points expiry by award (issue 14, item 8), as DDL on top of 002's and
 * 010's, unqualified like them: the replay (adapters/audit/replay.ts) runs every list under
 * `set local search_path` to build the same tables in its own schema.
 *
 * - `rm_programs.points_expiry_mode`: `inactivity` (what `points_expiry_days` always meant, and
 *   what every program made before this migration has) or `per_award`.
 * - `rm_members.expiry_lots`: the balance split by arrival, oldest first, as the points account
 *   folds it (domain/pointsAccount.ts `PointsLot`); `oldest_lot_at` is the first lot's arrival,
 *   indexed per program so the expiry sweep finds the members whose oldest lot is past the
 *   program's days without reading any other row. Members with points before this migration have
 *   no lots here (and `replay --verify` reports them) until the read models are rebuilt from the
 *   history (`npx incentable replay --swap`); the points accounts themselves fold their lots from
 *   their own streams, so expiry by award is exact for them either way once found.
 */
export const expiryLotsStatements: readonly string[] = [
  `alter table rm_programs add column points_expiry_mode text not null default 'inactivity'`,
  `alter table rm_members add column expiry_lots jsonb not null default '[]'`,
  `alter table rm_members add column oldest_lot_at timestamptz`,
  `create index rm_members_oldest_lot on rm_members (program_id, oldest_lot_at)
    where oldest_lot_at is not null`,
];

export const expiryLotsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    for (const statement of expiryLotsStatements) await sql.raw(statement).execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop index rm_members_oldest_lot`.execute(db);
    await sql`alter table rm_members drop column oldest_lot_at`.execute(db);
    await sql`alter table rm_members drop column expiry_lots`.execute(db);
    await sql`alter table rm_programs drop column points_expiry_mode`.execute(db);
  },
};
