/**
 * Where the delivery worker's time goes: fills a fresh database with N events x E endpoints of
 * pending deliveries (through the product's projector), then EXPLAIN ANALYZEs the worker's claim
 * statement (copied from adapters/webhooks/deliveryQueue.ts claim, run inside a rolled-back
 * transaction) at a few backlog sizes, and times the record transaction's statements.
 *
 *   BENCH_EVENTS=20000 BENCH_ENDPOINTS=10 npx tsx bench/webhooks/diagnose.ts
 *   BENCH_QUICK=1 npx tsx bench/webhooks/diagnose.ts   (smoke run: 1,000 events)
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../adapters/db/schema.ts';
import { streams } from '../../application/incentives.ts';
import { newId } from '../../adapters/ids.ts';
import { cpuPressure, quantile, sleep } from '../eventstore/support.ts';
import { databases, printMachine, startBenchRuntime } from './harness.ts';

const quick = process.env.BENCH_QUICK === '1';
const events = Number(process.env.BENCH_EVENTS ?? (quick ? 1_000 : 20_000));
const endpointCount = Number(process.env.BENCH_ENDPOINTS ?? 10);
const room = Number(process.env.BENCH_ROOM ?? 256);
const perEndpoint = Number(process.env.BENCH_PER_ENDPOINT ?? 32);

const claimSql = (db: Kysely<Database>, limit: number, explain: boolean) => {
  const now = new Date();
  const body = sql`
      with held as (
        select * from unnest(${[] as string[]}::text[], ${[] as number[]}::int[]) as h(endpoint_id, n)
      ),
      due as (
        select d.delivery_id, d.endpoint_id, d.next_attempt_at
        from webhook_deliveries d
        join webhook_endpoints e on e.endpoint_id = d.endpoint_id and e.enabled
        where d.status = 'pending' and d.next_attempt_at <= ${now}
          and d.endpoint_id <> all(${[] as string[]}::text[])
        order by d.next_attempt_at
        limit ${limit}
        for update of d skip locked
      ),
      expired as (
        select d.delivery_id, d.endpoint_id, d.next_attempt_at
        from webhook_deliveries d
        join webhook_endpoints e on e.endpoint_id = d.endpoint_id and e.enabled
        where d.status = 'delivering' and d.lease_expires_at <= ${now}
          and d.endpoint_id <> all(${[] as string[]}::text[])
        order by d.lease_expires_at
        limit ${limit}
        for update of d skip locked
      ),
      candidates as (
        select * from (select * from expired union all select * from due) both_kinds limit ${limit}
      ),
      ranked as (
        select c.delivery_id,
          row_number() over (partition by c.endpoint_id order by c.next_attempt_at) as rn,
          ${perEndpoint}::int - coalesce(h.n, 0) as free
        from candidates c left join held h on h.endpoint_id = c.endpoint_id
      )
      update webhook_deliveries d
      set status = 'delivering', lease_expires_at = ${new Date(now.getTime() + 60_000)},
        lease_owner = 'diagnose', updated_at = ${now}
      from ranked r, webhook_envelopes v, webhook_endpoints e
      where d.delivery_id = r.delivery_id and r.rn <= r.free
        and v.envelope_id = d.envelope_id and e.endpoint_id = d.endpoint_id
      returning d.delivery_id, v.body`;
  return explain
    ? sql<{ 'QUERY PLAN': string }>`explain (analyze, buffers, timing off) ${body}`.execute(db)
    : sql`${body}`.execute(db);
};

const timeClaims = async (db: Kysely<Database>, label: string) => {
  const ms: number[] = [];
  let rows = 0;
  for (let i = 0; i < 10; i++) {
    await db
      .transaction()
      .execute(async (tx) => {
        const t = performance.now();
        const r = await claimSql(tx, room, false);
        ms.push(performance.now() - t);
        rows = r.rows.length;
        throw new Rollback();
      })
      .catch((e: unknown) => {
        if (!(e instanceof Rollback)) throw e;
      });
  }
  ms.sort((a, b) => a - b);
  console.log(
    `${label}: claim of ${room} (returned ${rows}) p50 ${quantile(ms, 0.5).toFixed(1)} ms, max ${ms.at(-1)!.toFixed(1)} ms (psi ${cpuPressure()}%)`,
  );
  await db
    .transaction()
    .execute(async (tx) => {
      const plan = await claimSql(tx, room, true);
      for (const row of plan.rows)
        console.log(`  ${(row as { 'QUERY PLAN': string })['QUERY PLAN']}`);
      throw new Rollback();
    })
    .catch((e: unknown) => {
      if (!(e instanceof Rollback)) throw e;
    });
};

class Rollback extends Error {}

const main = async () => {
  await printMachine('Webhook worker diagnosis');
  const dbs = databases();
  try {
    const db = await dbs.create();
    const rt = await startBenchRuntime(db.url, { ROLES: 'projector' });
    try {
      const p = await rt.incentives.createProgram(
        {
          name: 'd',
          tiers: [],
          tierBasis: 'lifetime',
          pointsExpiryDays: null,
          timezone: 'UTC',
          notificationEmail: 'o@example.com',
        },
        { programId: null, actor: 'key_x', correlationId: randomUUID(), causationId: null },
      );
      if (!p.ok) throw new Error(p.message);
      const programId = (p.value.events[0]!.data as { programId: string }).programId;
      for (let e = 0; e < endpointCount; e++)
        await rt.webhooks.createEndpoint({
          programId,
          url: `http://127.0.0.1:${9000 + e}/`,
          events: ['points.awarded'],
        });
      const t0 = performance.now();
      for (let a = 0; a < events / 10; a++) {
        const memberId = `mem_${String(a % 200).padStart(20, '0')}`;
        const at = new Date().toISOString();
        await rt.store.append(
          streams.points(programId, memberId),
          Array.from({ length: 10 }, () => ({
            id: randomUUID(),
            type: 'PointsAwarded',
            data: {
              transactionId: newId('transaction'),
              memberId,
              points: 1,
              reason: 'r',
              reference: null,
              newBalance: 1,
              lifetimePoints: 1,
              at,
            },
            metadata: {
              programId,
              correlationId: randomUUID(),
              causationId: null,
              actor: 'key_x',
              recordedAt: at,
            },
          })),
          'any',
        );
      }
      const expected = events * endpointCount;
      for (;;) {
        const r = await sql<{
          n: number;
        }>`select count(*)::int as n from webhook_deliveries`.execute(rt.database.db);
        if (r.rows[0]!.n >= expected) break;
        await sleep(100);
      }
      console.log(
        `filled ${expected} pending deliveries in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    } finally {
      await rt.stop();
    }
    const handle = await startBenchRuntime(db.url, { ROLES: 'scheduler' });
    try {
      await sql`vacuum analyze webhook_deliveries`.execute(handle.database.db);
      await timeClaims(handle.database.db, `backlog ${events * endpointCount}`);
      // Smaller backlogs: mark most rows delivered.
      for (const left of [20_000, 1_000]) {
        await sql`update webhook_deliveries set status = 'delivered', next_attempt_at = null
          where delivery_id in (select delivery_id from webhook_deliveries where status = 'pending'
          order by next_attempt_at desc offset ${left})`.execute(handle.database.db);
        await sql`vacuum analyze webhook_deliveries`.execute(handle.database.db);
        await timeClaims(handle.database.db, `backlog ${left}`);
      }
      // The record transaction: INSERT attempts + UPDATE from unnest, 256 rows.
      const ids = (
        await sql<{
          delivery_id: string;
        }>`select delivery_id from webhook_deliveries where status = 'pending' limit 256`.execute(
          handle.database.db,
        )
      ).rows.map((r) => r.delivery_id);
      const ms: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        await handle.database.db.transaction().execute(async (tx) => {
          await tx
            .insertInto('webhook_attempts')
            .values(
              ids.map((id) => ({
                delivery_id: id,
                attempt_number: 100 + i,
                started_at: new Date(),
                duration_ms: 1,
                http_status: 200,
                response_body: '',
                error_kind: null,
                error_message: null,
              })),
            )
            .execute();
          await sql`update webhook_deliveries d set updated_at = now() from unnest(${ids}::text[]) as v(delivery_id) where d.delivery_id = v.delivery_id`.execute(
            tx,
          );
        });
        ms.push(performance.now() - t);
      }
      ms.sort((a, b) => a - b);
      console.log(
        `record transaction, 256 rows: p50 ${quantile(ms, 0.5).toFixed(1)} ms (psi ${cpuPressure()}%)`,
      );
    } finally {
      await handle.stop();
    }
  } finally {
    await dbs.dropAll();
  }
};

await main();
