import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Sustained failure (delivery/endpointHealth.ts, docs/webhooks.md): each endpoint's failure
 * clock, kept by the record transaction.
 *
 * - `failing_since`: the first failed attempt since the last delivered one; null while healthy.
 * - `failed_deliveries`: deliveries failed for good since then.
 * - `failure_warned_at`: when the half-time warning was stored (once per failing spell).
 * - `disabled_code`: why the endpoint is disabled, for machines: `gone` (410), `sustained_failure`,
 *   or null (by hand, or enabled). `disabled_reason` keeps the sentence for people.
 *
 * Notifications may now be about an endpoint rather than one delivery: `delivery_id` becomes
 * optional and `kind` says which (`delivery_failed`, `endpoint_failing`, `endpoint_disabled`).
 * Existing 410 disablings get their code from their reason's wording.
 */
export const endpointHealthMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`alter table webhook_endpoints
      add column failing_since timestamptz,
      add column failed_deliveries integer not null default 0,
      add column failure_warned_at timestamptz,
      add column disabled_code text`.execute(db);
    await sql`update webhook_endpoints set disabled_code = 'gone'
      where not enabled and disabled_reason like '%410 Gone%'`.execute(db);
    await sql`alter table webhook_notifications
      alter column delivery_id drop not null,
      add column kind text not null default 'delivery_failed'`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`delete from webhook_notifications where delivery_id is null`.execute(db);
    await sql`alter table webhook_notifications drop column kind,
      alter column delivery_id set not null`.execute(db);
    await sql`alter table webhook_endpoints drop column failing_since,
      drop column failed_deliveries, drop column failure_warned_at,
      drop column disabled_code`.execute(db);
  },
};
