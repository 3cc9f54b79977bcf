import { sql, type Kysely } from 'kysely';
import { tierReevaluations } from '../../application/jobs.ts';
import type { ApplicationTables } from '../../application/policyTables.ts';
import { tablesOf, type Database } from './schema.ts';

/** Delivery statuses as the dashboard groups them (webhookTables' DeliveryStatus). */
export type DeliveryCounts = {
  delivered: number;
  pending: number;
  delivering: number;
  failed: number;
  gone: number;
};

/**
 * Aggregates for the admin dashboard that the API's queries do not answer: counts, sums over a
 * window, per-endpoint health. Read-only; every function is scoped to one program.
 */
export const dashboardQueries = (db: Kysely<Database>) => ({
  ...programActivityQueries(db),
  ...webhookHealthQueries(db),
  ...sessionQueries(db),
});

export type DashboardQueries = ReturnType<typeof dashboardQueries>;

/** The programs, their members and the points that moved. */
const programActivityQueries = (db: Kysely<Database>) => ({
  /** Every program, for the root key's program switcher. */
  async programs(): Promise<{ id: string; name: string }[]> {
    const rows = await db
      .selectFrom('rm_programs')
      .select(['program_id', 'name'])
      .orderBy('created_at')
      .orderBy('program_id')
      .execute();
    return rows.map((r) => ({ id: r.program_id, name: r.name }));
  },

  async memberCount(programId: string): Promise<number> {
    const row = await db
      .selectFrom('rm_members')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('program_id', '=', programId)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  },

  /**
   * Points awarded (ledger `awarded` rows, less reversed awards) and redeemed (orders placed, not cancelled: a
   * cancellation refunds them) since `since`.
   */
  async pointsSince(
    programId: string,
    since: Date,
  ): Promise<{ awarded: number; redeemed: number }> {
    const awarded = await db
      .selectFrom('rm_ledger')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('points'), sql<number>`0`).as('n'))
      .where('program_id', '=', programId)
      // A reversed award's line is negative: it takes its points back out of what was awarded.
      .where((eb) =>
        eb.or([
          eb('kind', '=', 'awarded'),
          eb.and([eb('kind', '=', 'reversed'), eb('points', '<', 0)]),
        ]),
      )
      .where('occurred_at', '>=', since)
      .executeTakeFirst();
    const redeemed = await db
      .selectFrom('rm_orders')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>('points_spent'), sql<number>`0`).as('n'))
      .where('program_id', '=', programId)
      .where('status', '!=', 'cancelled')
      .where('created_at', '>=', since)
      .executeTakeFirst();
    return { awarded: Number(awarded?.n ?? 0), redeemed: Number(redeemed?.n ?? 0) };
  },

  /** Points awarded per calendar day (in `timezone`) since `since`; days without awards are absent. */
  async awardedPerDay(
    programId: string,
    since: Date,
    timezone: string,
  ): Promise<{ day: string; points: number }[]> {
    const result = await sql<{ day: string; points: string | number }>`
      select to_char((occurred_at at time zone ${timezone})::date, 'YYYY-MM-DD') as day,
        sum(points) as points
      from rm_ledger
      where program_id = ${programId}
        and (kind = 'awarded' or (kind = 'reversed' and points < 0))
        and occurred_at >= ${since.toISOString()}
      group by 1 order by 1`.execute(db);
    return result.rows.map((r) => ({ day: r.day, points: Number(r.points) }));
  },

  /** The program's tier re-evaluation still running, if one is (a list of at most one). */
  runningTierReevaluations: (programId: string) =>
    tierReevaluations(tablesOf<ApplicationTables>(db), { programId, running: true }),
});

/** How the program's webhook deliveries fare. */
const webhookHealthQueries = (db: Kysely<Database>) => ({
  /** Deliveries created since `since`, counted by their current status. */
  async deliveriesSince(programId: string, since: Date): Promise<DeliveryCounts> {
    const rows = await db
      .selectFrom('webhook_deliveries')
      .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('program_id', '=', programId)
      .where('created_at', '>=', since)
      .groupBy('status')
      .execute();
    const counts: DeliveryCounts = { delivered: 0, pending: 0, delivering: 0, failed: 0, gone: 0 };
    for (const row of rows) counts[row.status] = Number(row.n);
    return counts;
  },

  /**
   * Health per endpoint over its last `window` deliveries: how many finished (delivered, failed,
   * gone) and how many of those were delivered. Deliveries still in flight do not count.
   */
  async endpointHealth(
    programId: string,
    window = 50,
  ): Promise<Map<string, { finished: number; delivered: number }>> {
    const result = await sql<{
      endpoint_id: string;
      finished: string | number;
      delivered: string | number;
    }>`
      select endpoint_id,
        count(*) filter (where status in ('delivered', 'failed', 'gone')) as finished,
        count(*) filter (where status = 'delivered') as delivered
      from (
        select endpoint_id, status,
          row_number() over (partition by endpoint_id order by seq desc) as n
        from webhook_deliveries where program_id = ${programId}
      ) recent
      where n <= ${window}
      group by endpoint_id`.execute(db);
    return new Map(
      result.rows.map((r) => [
        r.endpoint_id,
        { finished: Number(r.finished), delivered: Number(r.delivered) },
      ]),
    );
  },

  /** The e-mails sent (or attempted) for deliveries that gave up, newest first. */
  async failureNotifications(programId: string, limit = 20) {
    const rows = await db
      .selectFrom('webhook_notifications')
      .selectAll()
      .where('program_id', '=', programId)
      .orderBy('created_at', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      notificationId: r.notification_id,
      deliveryId: r.delivery_id,
      endpointId: r.endpoint_id,
      toAddress: r.to_address,
      subject: r.subject,
      sentAt: r.sent_at,
      error: r.error,
      createdAt: r.created_at,
    }));
  },
});

/** What a dashboard session checks of its key. */
const sessionQueries = (db: Kysely<Database>) => ({
  /**
   * Whether a stored API key still works. A dashboard session keeps only the key id, so this is
   * how a revoked key ends the sessions it opened.
   */
  async apiKeyActive(keyId: string): Promise<boolean> {
    const row = await db
      .selectFrom('api_keys')
      .select('key_id')
      .where('key_id', '=', keyId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return row !== undefined;
  },
});
