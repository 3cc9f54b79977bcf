import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Broker destinations (docs/webhooks.md, "Broker destinations"): an `amqp://` or `nats://`
 * endpoint URL may carry credentials. They are kept out of `url` (which the API, the dashboard
 * and the emails show) and stored here, AES-256-GCM encrypted with the endpoint secrets' key:
 * the URL's user-info part as the user wrote it (`user:pass`, or a NATS token). null: none.
 */
export const destinationCredentialsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`alter table webhook_endpoints add column url_userinfo_encrypted text`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`alter table webhook_endpoints drop column url_userinfo_encrypted`.execute(db);
  },
};
