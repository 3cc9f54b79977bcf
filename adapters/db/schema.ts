import type { ColumnType, Generated } from 'kysely';

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
  };
};

/** The whole schema, as the composition root sees it. */
export type Database = EventStoreTables;
