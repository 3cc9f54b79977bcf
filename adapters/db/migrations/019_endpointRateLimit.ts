import { sql, type Kysely, type Migration } from 'kysely';

/**
 * A per-endpoint rate limit (docs/webhooks.md, "Rate limit"), enforced across every worker
 * process: `rate_limit_per_second` on the endpoint (null: none), and one token bucket per
 * limited endpoint that every claim locks, refills (`rate` tokens a second, at most `rate`
 * held) and spends from in its own transaction (adapters/webhooks/deliveryQueue.ts).
 */
export const endpointRateLimitMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`alter table webhook_endpoints add column rate_limit_per_second integer`.execute(db);
    await sql`create table webhook_rate_buckets (
      endpoint_id text collate "C" primary key
        references webhook_endpoints (endpoint_id) on delete cascade,
      tokens double precision not null,
      refreshed_at timestamptz not null
    )`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop table webhook_rate_buckets`.execute(db);
    await sql`alter table webhook_endpoints drop column rate_limit_per_second`.execute(db);
  },
};
