import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The live stream of a program's webhooks (`GET …/webhook-events/stream`, `incentable listen`)
 * reads envelopes after a cursor, the envelope's `seq`: one walk of this index per poll.
 * Test events are not part of the stream.
 */
export const envelopeStreamMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`create index webhook_envelopes_stream on webhook_envelopes (program_id, seq)
      where not is_test`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop index webhook_envelopes_stream`.execute(db);
  },
};
