import type { ColumnType, Generated, Kysely } from 'kysely';
import type { RecordedEvent } from '../../domain/recordedEvent.ts';
import type { PolicyTables } from '../../application/policyTables.ts';
import type { TraceContext } from '../../application/tracing.ts';
import type { ReadModelTables } from '../../projections/readModelTables.ts';
import type { WebhookTables } from './webhookTables.ts';

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

/** The Merkle tree over the events and its checkpoints (migrations/022_auditTree.ts). */
export type AuditTables = {
  incentable_audit_leaves: { leaf_index: string; event_id: string; hash: Buffer };
  incentable_audit_nodes: { level: number; node_index: string; hash: Buffer };
  incentable_audit_checkpoints: {
    size: string;
    root_hash: Buffer;
    note: string;
    created_at: ColumnType<Date, Date, never>;
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

/** The whole schema, as the composition root sees it. */
export type Database = EventStoreTables &
  AuditTables &
  ReadModelTables &
  WebhookTables &
  HttpTables &
  PolicyTables;

/** What a subscription handler writes with: a transaction on the whole database. */
export type StoreTransaction = Kysely<Database>;

/**
 * The same database seen through a part of its schema, for code written against that part (the
 * read models, the application's tables). The one place the narrowing is spelled out, and it is
 * checked: `T` must be a part of `Database` (a table `Database` lacks, or a column of another
 * type, makes the result `never`).
 */
export const tablesOf = <T extends object>(
  db: StoreTransaction,
): Database extends T ? Kysely<T> : never => db as never;

/** A subscription handler written for a part of the schema, as the stores take it. */
export const onTables =
  <T extends object>(
    handler: (
      events: readonly RecordedEvent[],
      tx: Database extends T ? Kysely<T> : never,
      trace?: TraceContext,
    ) => Promise<void>,
  ) =>
  (events: readonly RecordedEvent[], tx: StoreTransaction, trace?: TraceContext): Promise<void> =>
    handler(events, tablesOf<T>(tx), trace);
