import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The W3C traceparent of the command whose event an envelope was made from (docs/telemetry.md):
 * each delivery attempt's span links to it, in whichever process and however much later the
 * attempt runs. Null while tracing is off, for test events and for envelopes made before.
 * A column rather than a read of the event's metadata: a claim reads the envelope row already.
 */
export const envelopeTraceparentMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`alter table webhook_envelopes add column traceparent text`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`alter table webhook_envelopes drop column traceparent`.execute(db);
  },
};
