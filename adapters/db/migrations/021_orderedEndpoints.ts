import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Ordered endpoints (delivery/ordering.ts, docs/webhooks.md):
 *
 * - `webhook_endpoints.ordering`: `unordered` (as before) or `ordered`.
 * - `webhook_deliveries.subject` / `sequence`: on a delivery to an ordered endpoint, whose
 *   events it keeps in order (`member:mem_…`) and its place among them, from 1 per endpoint and
 *   subject; null elsewhere (and on redeliveries and replays, which are sent when due).
 * - `webhook_subject_sequences`: the last sequence given per endpoint and subject, advanced by
 *   the (single-active) webhook projector in its batch's transaction.
 * - `webhook_deliveries_subject`: a claim takes a subject's delivery only when no earlier one of
 *   the same endpoint and subject is pending or under way; this index answers that.
 */
export const orderedEndpointsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`alter table webhook_endpoints
      add column ordering text not null default 'unordered'`.execute(db);
    await sql`alter table webhook_deliveries add column subject text collate "C",
      add column sequence bigint`.execute(db);
    await sql`create table webhook_subject_sequences (
      endpoint_id text collate "C" not null
        references webhook_endpoints (endpoint_id) on delete cascade,
      subject text collate "C" not null,
      last_sequence bigint not null,
      primary key (endpoint_id, subject)
    )`.execute(db);
    await sql`create index webhook_deliveries_subject
      on webhook_deliveries (endpoint_id, subject, sequence)
      where subject is not null and status in ('pending', 'delivering')`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop index webhook_deliveries_subject`.execute(db);
    await sql`drop table webhook_subject_sequences`.execute(db);
    await sql`alter table webhook_deliveries drop column subject, drop column sequence`.execute(db);
    await sql`alter table webhook_endpoints drop column ordering`.execute(db);
  },
};
