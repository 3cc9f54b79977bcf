import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.ts';

/**
 * The gauges' reads for /metrics, made at scrape time so any process reports the cluster's queue
 * and lag. Read-only.
 */
export const metricsQueries = (db: Kysely<Database>) => ({
  /** Deliveries due now and not yet sent. */
  async dueDeliveries(): Promise<number> {
    const row = await sql<{
      n: number;
    }>`select count(*)::int as n from webhook_deliveries where status = 'pending' and next_attempt_at <= now()`.execute(
      db,
    );
    return row.rows[0]?.n ?? 0;
  },

  /** Seconds since the oldest due delivery fell due; null when none is due. */
  async oldestDueSeconds(): Promise<number | null> {
    const row = await sql<{ s: number | null }>`
        select extract(epoch from now() - min(next_attempt_at))::float8 as s
        from webhook_deliveries where status = 'pending' and next_attempt_at <= now()`.execute(db);
    return row.rows[0]?.s ?? null;
  },

  /**
   * Events recorded but not yet handled by the subscription `name`, counted up to 100000: the
   * cap bounds what a scrape scans when a subscription is far behind.
   */
  async projectionLag(name: string): Promise<number> {
    const row = await sql<{ n: number }>`
          select count(*)::int as n from (
            select 1 from incentable_events e
            left join incentable_subscriptions s on s.name = ${name}
            where s.name is null or (e.transaction_id, e.global_position) > (s.commit_position, s.prepare_position)
            limit 100000) lagging`.execute(db);
    return row.rows[0]?.n ?? 0;
  },
});

export type MetricsQueries = ReturnType<typeof metricsQueries>;
