import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { PostgresEventStore } from '../../adapters/eventstore/postgresEventStore.ts';
import { benchEvent, quantile, sleep } from './support.ts';

export type LagResult = Awaited<ReturnType<typeof measureLag>>;

/**
 * A paced writer appends one event per append at `ratePerS`; the subscription's handler
 * stamps each event's arrival. Lag = arrival - the moment the writer's append() resolved.
 */
export const measureLag = async (
  subscriber: PostgresEventStore,
  writer: PostgresEventStore,
  options: {
    name: string;
    seconds: number;
    ratePerS: number;
    streams: number;
    /** Postgres only: sample transactions of OTHER databases (see foreignXactP99Ms). */
    monitorUrl?: string;
  },
) => {
  const foreign = options.monitorUrl ? await sampleForeignTransactions(options.monitorUrl) : null;
  const committed = new Map<string, number>();
  const seen = new Map<string, number>();
  const subscription = await subscriber.subscribe({
    name: options.name,
    handle: (events) => {
      const now = performance.now();
      for (const e of events) if (!seen.has(e.id)) seen.set(e.id, now);
      return Promise.resolve();
    },
  });
  await subscription.caughtUp();
  const started = performance.now();
  const end = started + options.seconds * 1000;
  let issued = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let errors = 0;
  const pending = new Set<Promise<void>>();
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - started) * options.ratePerS) / 1000);
    while (issued < due && inFlight < 64) {
      const event = benchEvent(issued);
      const stream = `lag-${issued % options.streams}`;
      issued++;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const p: Promise<void> = writer
        .append(stream, [event], 'any')
        .then(
          () => void committed.set(event.id, performance.now()),
          () => void errors++,
        )
        .finally(() => {
          inFlight--;
          pending.delete(p);
        });
      pending.add(p);
    }
    await sleep(1);
  }
  const writeS = (performance.now() - started) / 1000;
  const foreignAges = (await foreign?.stop()) ?? [];
  await Promise.all([...pending]);
  const deadline = Date.now() + 15_000;
  while (seen.size < committed.size && Date.now() < deadline) await sleep(5);
  await subscription.stop();
  const lags: number[] = [];
  let early = 0;
  let missing = 0;
  for (const [id, at] of committed) {
    const arrived = seen.get(id);
    if (arrived === undefined) {
      missing++;
      continue;
    }
    if (arrived < at) early++;
    lags.push(Math.max(0, arrived - at));
  }
  lags.sort((a, b) => a - b);
  return {
    rate: committed.size / writeS,
    count: committed.size,
    p50: quantile(lags, 0.5),
    p99: quantile(lags, 0.99),
    max: lags.at(-1) ?? Number.NaN,
    early,
    missing,
    errors,
    maxInFlight,
    /**
     * How long the oldest xid-holding transaction in another database had been open, p99 over
     * samples every 10 ms. The snapshot xmin that guards readers is cluster-wide: such a
     * transaction holds our committed events back until it ends.
     */
    foreignXactP99Ms: quantile(foreignAges, 0.99),
  };
};

const sampleForeignTransactions = async (url: string) => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const ages: number[] = [];
  let sampling = true;
  const loop = (async () => {
    while (sampling) {
      const r = await client.query<{ ms: number | null }>(
        `select extract(epoch from max(now() - xact_start)) * 1000 as ms from pg_stat_activity
         where backend_xid is not null and datname is distinct from current_database()`,
      );
      ages.push(Number(r.rows[0]?.ms ?? 0));
      await sleep(10);
    }
  })();
  return {
    stop: async () => {
      sampling = false;
      await loop;
      await client.end();
      return ages.sort((a, b) => a - b);
    },
  };
};
