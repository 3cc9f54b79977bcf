import type { ColumnType, Generated } from 'kysely';
import type { ReadModelTables } from '../../projections/readModelTables.ts';
import type { WebhookTables } from '../webhooks/webhookTables.ts';

/** Tables of the event store (adapters/eventstore/postgresEventStore.ts). */
export type EventStoreTables = {
  incentable_streams: { stream_name: string; revision: string; last_hash: string | null };
  incentable_events: {
    global_position: Generated<string>;
    transaction_id: Generated<string>;
    event_id: string;
    stream_name: string;
    stream_revision: string;
    type: string;
    data: unknown;
    metadata: unknown;
    hash: string;
  };
  incentable_subscriptions: {
    name: string;
    commit_position: string;
    prepare_position: string;
    updated_at: ColumnType<Date, Date | undefined, Date>;
    owner: ColumnType<string | null, string | null | undefined, string | null>;
    lease_until: ColumnType<Date | null, Date | null | undefined, Date | null>;
  };
};

/** API keys and idempotency records (adapters/http/). */
export type HttpTables = {
  api_keys: {
    key_id: string;
    program_id: string | null;
    secret_sha256: string;
    label: string | null;
    created_at: ColumnType<Date, string | undefined, never>;
    revoked_at: ColumnType<Date | null, string | null | undefined, string | null>;
    last_used_at: ColumnType<Date | null, string | null | undefined, string | null>;
  };
  idempotency_keys: {
    scope: string;
    key: string;
    request_sha256: string;
    status: 'pending' | 'done';
    response_status: number | null;
    response_body: unknown;
    created_at: ColumnType<Date, string | undefined, never>;
    owner: ColumnType<string | null, string | null | undefined, string | null>;
    lease_until: ColumnType<Date | null, Date | null | undefined, Date | null>;
  };
};

/** The policy reactor's own state (adapters/application/policyReactor.ts). */
export type PolicyTables = {
  policy_leaderboards: { program_id: string; leaderboard_id: string };
  /** Rule-change jobs: see migrations/014_tierReevaluation.ts. */
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

/** The whole schema, as the composition root sees it. */
export type Database = EventStoreTables &
  ReadModelTables &
  WebhookTables &
  HttpTables &
  PolicyTables;
