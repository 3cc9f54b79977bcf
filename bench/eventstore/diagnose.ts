/**
 * Where the append and lag figures of run.ts go: the same 8-connection single-event commit loop
 * through successively more of the store, with the WAL each commit writes, and the subscription
 * lag with the writer and subscriber sharing or not sharing a pool.
 *
 *   BENCH_SECONDS=3 npx tsx bench/eventstore/diagnose.ts
 *   BENCH_QUICK=1 npx tsx bench/eventstore/diagnose.ts   (smoke run: 1 s a variant, 1 round)
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { openDatabase } from '../../adapters/db/database.ts';
import { PostgresEventStore } from '../../adapters/eventstore/postgresEventStore.ts';
import { measureLag } from './lag.ts';
import {
  benchEvent,
  cpuPressure,
  createBenchDatabase,
  fmtInt,
  fmtMs,
  printTable,
  quantile,
  runWriters,
  type RunResult,
} from './support.ts';
import { commitRates } from '../webhooks/harness.ts';

const quick = process.env.BENCH_QUICK === '1';
const seconds = Number(process.env.BENCH_SECONDS ?? (quick ? 1 : 3));
const adminUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const writers = 8;
const randomInt = (n: number) => Math.floor(Math.random() * n);

const main = async () => {
  console.log(`disk commit rate: ${await commitRates()}`);
  const database = await createBenchDatabase(adminUrl);
  const handle = await openDatabase({ kind: 'postgres', url: database.url, poolSize: 10 });
  const store = new PostgresEventStore(handle);
  const pool = new pg.Pool({ connectionString: database.url, max: writers });
  const rows: string[][] = [];
  try {
    await pool.query(`create table raw_events (id uuid primary key, stream_name text not null,
      type text not null, data jsonb not null, metadata jsonb not null)`);
    await pool.query('create table ev_copy (like incentable_events including all)');
    const walBytes = async () =>
      BigInt(
        (await pool.query<{ lsn: string }>(`select (pg_current_wal_lsn() - '0/0')::text as lsn`))
          .rows[0]!.lsn,
      );

    const variant = async (label: string, op: () => Promise<unknown>) => {
      const w0 = await walBytes();
      const r: RunResult = await runWriters({
        writers,
        seconds,
        warmupSeconds: 0.5,
        op: async () => {
          await op();
          return 1;
        },
      });
      const w1 = await walBytes();
      // WAL over warm-up and measurement, divided by all commits made in both (approximate).
      const ops = r.appends * ((seconds + 0.5) / seconds);
      rows.push([
        label,
        fmtInt(r.appendsPerS),
        fmtMs(r.latencyP50Ms),
        fmtInt(Number(w1 - w0) / ops),
        `${fmtInt(r.nodeCpuPct)}%`,
        cpuPressure(),
      ]);
      console.log(rows.at(-1)!.join(' | '));
    };

    const args = () => {
      const e = benchEvent(randomInt(1000));
      return { e, stream: `d-${randomInt(1000)}` };
    };
    for (
      let round = 0;
      round < (process.env.DIAG === 'lag' ? 0 : Number(process.env.DIAG_ROUNDS ?? (quick ? 1 : 2)));
      round++
    ) {
      await variant('plain table (uuid pk, text, jsonb), 1-row INSERT', () => {
        const { e, stream } = args();
        return pool.query('insert into raw_events values ($1, $2, $3, $4, $5)', [
          e.id,
          stream,
          e.type,
          JSON.stringify(e.data),
          JSON.stringify(e.metadata),
        ]);
      });
      await variant('incentable_events copy (5 indexes), 1-row INSERT', () => {
        const { e } = args();
        return pool.query(
          `insert into ev_copy (event_id, stream_name, stream_revision, type, data, metadata, hash)
           values ($1, $2, 0, $3, $4, $5, $6)`,
          [
            e.id,
            `c-${e.id}`,
            e.type,
            JSON.stringify(e.data),
            JSON.stringify(e.metadata),
            'x'.repeat(64),
          ],
        );
      });
      await variant('select incentable_append(...) on bare pg, no notify', () => {
        const { e, stream } = args();
        return pool.query(
          `select next_revision::text from incentable_append($1, -2, $2::uuid[], $3::text[],
             $4::text[]::jsonb[], $5::text[]::jsonb[])`,
          [stream, [e.id], [e.type], [JSON.stringify(e.data)], [JSON.stringify(e.metadata)]],
        );
      });
      let notifyInFlight = false;
      await variant('same + one pg_notify in flight (as the store does)', async () => {
        const { e, stream } = args();
        await pool.query(
          `select next_revision::text from incentable_append($1, -2, $2::uuid[], $3::text[],
             $4::text[]::jsonb[], $5::text[]::jsonb[])`,
          [stream, [e.id], [e.type], [JSON.stringify(e.data)], [JSON.stringify(e.metadata)]],
        );
        if (!notifyInFlight) {
          notifyInFlight = true;
          void pool
            .query(`select pg_notify('incentable_events', '')`)
            .finally(() => (notifyInFlight = false));
        }
      });
      await variant('store.append (kysely, pool 10, + pg_notify)', () => {
        const { e, stream } = args();
        return store.append(stream, [e], 'any');
      });
    }
  } finally {
    await pool.end();
    await store.close();
    await handle.close();
  }
  console.log();
  printTable(
    [
      '8 connections, 1 event per commit',
      'commits/s',
      'p50 ms',
      'WAL B/commit',
      'node CPU',
      'psi %',
    ],
    rows,
  );

  const lagRows: string[][] = [];
  const lag = async (label: string, poolSize: number, split: boolean) => {
    const db = await createBenchDatabase(adminUrl);
    const a = await openDatabase({ kind: 'postgres', url: db.url, poolSize });
    const b = split ? await openDatabase({ kind: 'postgres', url: db.url, poolSize }) : a;
    const subscriber = new PostgresEventStore(a);
    const writer = split ? new PostgresEventStore(b) : subscriber;
    // Index scans on the event table = the subscriber's reads (appends do not scan it); and how
    // long transactions holding an xid in OTHER databases of the cluster have been open: the
    // snapshot xmin that guards readers is cluster-wide, so they hold our events back too.
    const monitor = new pg.Client({ connectionString: db.url });
    await monitor.connect();
    const scans = async () =>
      Number(
        (
          await monitor.query<{ n: string }>(
            `select coalesce(idx_scan, 0)::text as n from pg_stat_user_tables where relname = 'incentable_events'`,
          )
        ).rows[0]!.n,
      );
    let sampling = true;
    const foreignAges: number[] = [];
    const sampler = (async () => {
      while (sampling) {
        const r = await monitor.query<{
          ms: number | null;
        }>(`select extract(epoch from max(now() - xact_start)) * 1000 as ms
          from pg_stat_activity where backend_xid is not null and datname <> current_database()`);
        foreignAges.push(Number(r.rows[0]!.ms ?? 0));
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    try {
      const s0 = await scans();
      const r = await measureLag(subscriber, writer, {
        name: 'diag',
        seconds,
        ratePerS: 1000,
        streams: 1000,
      });
      sampling = false;
      await sampler;
      await new Promise((resolve) => setTimeout(resolve, 600)); // stats are flushed every 500 ms
      const reads = (await scans()) - s0;
      foreignAges.sort((x, y) => x - y);
      lagRows.push([
        label,
        fmtInt(r.rate),
        fmtMs(r.p50),
        fmtMs(r.p99),
        fmtMs(r.max),
        fmtInt(r.maxInFlight),
        fmtInt(reads / seconds),
        `${fmtMs(quantile(foreignAges, 0.5))} / ${fmtMs(quantile(foreignAges, 0.99))}`,
        cpuPressure(),
      ]);
      console.log(lagRows.at(-1)!.join(' | '));
    } finally {
      sampling = false;
      await sampler;
      await monitor.end();
      await subscriber.close();
      if (split) await writer.close();
      await a.close();
      if (split) await b.close();
      await db.drop();
    }
  };
  const t0 = performance.now();
  if (process.env.DIAG === 'append') {
    await database.drop();
    return;
  }
  await lag('same store, pool 10', 10, false);
  await lag('same store, pool 50', 50, false);
  await lag('two handles, pool 10 each', 10, true);
  await lag('same store, pool 10 (again)', 10, false);
  console.log();
  printTable(
    [
      'lag at 1000 ev/s',
      'written/s',
      'p50 ms',
      'p99 ms',
      'max ms',
      'max in flight',
      'event idx scans/s',
      'foreign xact age p50/p99 ms',
      'psi %',
    ],
    lagRows,
  );
  console.log(`lag section ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  await database.drop();
};

await main();
