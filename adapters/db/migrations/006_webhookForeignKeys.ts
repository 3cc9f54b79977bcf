import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The delivery tables' foreign keys checked every inserted delivery and attempt row, one
 * FOR KEY SHARE lookup each: about a third of the projector's insert time. What they guarded is
 * now kept by the writers, once per batch: the projector reads its endpoints FOR KEY SHARE (a
 * delete waits for its commit), deleteEndpoint removes the endpoint's attempts and deliveries in
 * its own transaction, envelopes are never deleted, and attempts are recorded only for delivery
 * rows that exist.
 */
export const webhookForeignKeysMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`alter table webhook_deliveries
      drop constraint webhook_deliveries_endpoint_id_fkey,
      drop constraint webhook_deliveries_envelope_id_fkey`.execute(db);
    await sql`alter table webhook_attempts drop constraint webhook_attempts_delivery_id_fkey`.execute(
      db,
    );
  },
  async down(db: Kysely<unknown>) {
    await sql`alter table webhook_deliveries
      add constraint webhook_deliveries_endpoint_id_fkey foreign key (endpoint_id)
        references webhook_endpoints (endpoint_id) on delete cascade,
      add constraint webhook_deliveries_envelope_id_fkey foreign key (envelope_id)
        references webhook_envelopes (envelope_id)`.execute(db);
    await sql`alter table webhook_attempts add constraint webhook_attempts_delivery_id_fkey
      foreign key (delivery_id) references webhook_deliveries (delivery_id) on delete cascade`.execute(
      db,
    );
  },
};
