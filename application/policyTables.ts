import type { ColumnType, Kysely } from 'kysely';
import type { ReadModelTables } from '../projections/readModelTables.ts';

/** The policy reactor's own state (application/policyReactor.ts). */
export type PolicyTables = {
  policy_leaderboards: { program_id: string; leaderboard_id: string };
  /** Rule-change jobs: see adapters/db/migrations/014_tierReevaluation.ts. */
  policy_tier_reevaluations: {
    program_id: string;
    event_id: string;
    /** numeric(20, 0): read back as a decimal string. */
    commit_position: string;
    prepare_position: string;
    requested_at: Date;
    cursor: ColumnType<string, string | undefined, string>;
    handled: ColumnType<number, number | undefined, number>;
    moved: ColumnType<number, number | undefined, number>;
    total: ColumnType<number | null, number | null | undefined, number | null>;
    finished_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  };
};

/** The tables the application layer reads and writes: the read models and its own. */
export type ApplicationTables = ReadModelTables & PolicyTables;

export type ApplicationDb = Kysely<ApplicationTables>;
