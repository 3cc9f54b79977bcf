import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The webhook tables' identifiers compare byte by byte (COLLATE "C"). Under the database's
 * locale (C.UTF-8, en_US.UTF-8…) every btree comparison of a text key went through strcoll:
 * a perf profile of the delivery pipeline had a sixth of PostgreSQL's CPU in text comparisons
 * while inserting and updating delivery rows. Identifiers are ASCII and only ever compared for
 * equality or keyset order, so nothing a user sees changes.
 *
 * Drops `webhook_deliveries_envelope`: every lookup by envelope also names the endpoint and
 * uses the unique (endpoint_id, envelope_id, series) index, so that index was written on every
 * insert and status change and read by nothing.
 *
 * The due index leads with the endpoint: a claim walks each endpoint's due rows in order and
 * stops at that endpoint's free room, instead of walking every endpoint's rows in one time order
 * (where a full or slow endpoint's old rows had to be stepped over to reach the others').
 */
const idColumns: Record<string, string[]> = {
  webhook_endpoints: ['endpoint_id', 'program_id'],
  webhook_envelopes: ['envelope_id', 'program_id'],
  webhook_deliveries: ['delivery_id', 'program_id', 'endpoint_id', 'envelope_id'],
  webhook_attempts: ['delivery_id'],
  webhook_notifications: ['notification_id', 'program_id', 'delivery_id', 'endpoint_id'],
};

const alterCollation = async (db: Kysely<unknown>, collation: 'C' | 'default') => {
  for (const [table, columns] of Object.entries(idColumns)) {
    const clauses = columns.map(
      (column) => sql`alter column ${sql.id(column)} type text collate ${sql.id(collation)}`,
    );
    await sql`alter table ${sql.id(table)} ${sql.join(clauses)}`.execute(db);
  }
};

export const webhookIndexesMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`drop index webhook_deliveries_envelope`.execute(db);
    await sql`drop index webhook_deliveries_due`.execute(db);
    await alterCollation(db, 'C');
    await sql`create index webhook_deliveries_due on webhook_deliveries (endpoint_id, next_attempt_at)
      where status = 'pending'`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop index webhook_deliveries_due`.execute(db);
    await alterCollation(db, 'default');
    await sql`create index webhook_deliveries_due on webhook_deliveries (next_attempt_at)
      where status = 'pending'`.execute(db);
    await sql`create index webhook_deliveries_envelope on webhook_deliveries (envelope_id)`.execute(
      db,
    );
  },
};
