import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Backpressure from receivers (docs/webhooks.md, "Retries"): the delay a 429 or 503 asked for
 * with Retry-After, in seconds as parsed (an HTTP-date becomes the seconds until it), kept with
 * the attempt so the delivery log shows why the next attempt waits longer than the schedule.
 * null: the answer had no usable Retry-After.
 */
export const attemptRetryAfterMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`alter table webhook_attempts add column retry_after_s bigint`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`alter table webhook_attempts drop column retry_after_s`.execute(db);
  },
};
