/**
 * Webhook delivery benchmark, on real PostgreSQL with loopback receivers in a child process:
 *   1. fan-out throughput: N PointsAwarded events -> 1 and 10 endpoints. The projector runs alone
 *      first (envelope + delivery-row rate), then the delivery worker alone drains the backlog
 *      (deliveries/s, first to last POST received). For 10 endpoints also the pipeline with both
 *      roles at once, as one process runs them in production.
 *   2. latency: awards over HTTP at a fixed rate, API 201 -> receiver gets the POST.
 *   3. baseline: the same deliveries as pg-boss jobs, workers that HMAC-sign and POST with got.
 * Tuning goes through the product's config env only (WEBHOOK_CONCURRENCY,
 * WEBHOOK_PER_ENDPOINT_IN_FLIGHT, DATABASE_POOL_SIZE are passed through).
 *
 *   npx tsx bench/webhooks/run.ts                 (full run, ~3-4 min)
 *   BENCH_QUICK=1 npx tsx bench/webhooks/run.ts   (smoke run, ~30-60 s)
 *   BENCH_EVENTS=20000 BENCH_BASELINE_EVENTS=5000 BENCH_LATENCY_SECONDS=20 BENCH_LATENCY_RATE=200
 *   BENCH_ONLY=throughput|latency|baseline        (one section, e.g. under --cpu-prof)
 *   BENCH_ONLY=ratio                              (10 endpoints draining and pipelined, and the baseline)
 *   BASELINE_WORKERS=8 BASELINE_BATCH=200         (pg-boss work() registrations x batchSize)
 *   BENCH_PIPELINE=0                              (skip projector + worker together, 10 endpoints)
 *   BENCH_PERF=/tmp/wh                            (perf record -g -a during each drain: /tmp/wh-<scenario>.data)
 *   BENCH_TRACE_SQL=1                             (SQL time of the projector alone and of the draining worker)
 */
import { createHmac, randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import got from 'got';
import { sql } from 'kysely';
import PgBoss from 'pg-boss';
import { Pool } from 'undici';
import { streams } from '../../application/incentives.ts';
import type { Runtime } from '../../adapters/runtime.ts';
import { newId } from '../../adapters/ids.ts';
import type { NewEvent } from '../../application/ports.ts';
import {
  cpuPressure,
  fmtInt,
  fmtMs,
  fmtRatio,
  printTable,
  quantile,
  sleep,
} from '../eventstore/support.ts';
import {
  absoluteNowMs,
  postgresCpuSeconds,
  adminApiKey,
  databases,
  printMachine,
  Receivers,
  seedProgram,
  startBenchRuntime,
  summary,
  traceSql,
  tuningEnv,
  webhookSecretKey,
} from './harness.ts';
import { recordTimeline, type Stage } from './timeline.ts';

const quick = process.env.BENCH_QUICK === '1';
const events = Number(process.env.BENCH_EVENTS ?? (quick ? 2_000 : 20_000));
const baselineEvents = Number(process.env.BENCH_BASELINE_EVENTS ?? (quick ? 1_000 : 5_000));
const latencySeconds = Number(process.env.BENCH_LATENCY_SECONDS ?? (quick ? 5 : 20));
const latencyRate = Number(process.env.BENCH_LATENCY_RATE ?? 200);
const only = process.env.BENCH_ONLY ?? 'all';
const baselineWorkers = Number(process.env.BASELINE_WORKERS ?? 8);
const baselineBatch = Number(process.env.BASELINE_BATCH ?? 200);
const baselineSockets = Number(process.env.BASELINE_SOCKETS ?? 32);
const memberCount = 200;
const eventsPerAppend = 10;
const drainTimeoutMs = Number(process.env.BENCH_DRAIN_TIMEOUT_S ?? 240) * 1000;
const tuning = tuningEnv();

const tracer = process.env.BENCH_TRACE_SQL === '1' ? traceSql() : null;
const report = summary();
const dbs = databases();

type Setup = { programId: string; memberIds: string[]; secrets: string[]; endpointIds: string[] };

/** A program, its members, and endpoints subscribed to points.awarded, through the app services. */
const setUp = async (runtime: Runtime, urls: string[], members: number): Promise<Setup> => {
  const { programId, memberIds } = await seedProgram(runtime, 'Webhook benchmark', members);
  const secrets: string[] = [];
  const endpointIds: string[] = [];
  for (const url of urls) {
    const { endpoint, secret } = await runtime.webhooks.createEndpoint({
      programId,
      url,
      events: ['points.awarded'],
    });
    secrets.push(secret);
    endpointIds.push(endpoint.endpointId);
  }
  return { programId, memberIds, secrets, endpointIds };
};

/**
 * `count` PointsAwarded events straight through the store's append (the shapes the points
 * decider writes, balances consistent per member), 10 per append, 8 appenders, each owning its
 * members' streams so the balances stay in order.
 */
const appendAwards = async (runtime: Runtime, setup: Setup, count: number): Promise<number> => {
  const t0 = performance.now();
  const balances = new Map<string, number>();
  const appends = Math.ceil(count / eventsPerAppend);
  const writers = 8;
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let a = w; a < appends; a += writers) {
        const memberId = setup.memberIds[(a * writers + w) % setup.memberIds.length]!;
        const n = Math.min(eventsPerAppend, count - a * eventsPerAppend);
        const batch: NewEvent[] = [];
        for (let i = 0; i < n; i++) {
          const points = 100 + ((a + i) % 900);
          const balance = (balances.get(memberId) ?? 0) + points;
          balances.set(memberId, balance);
          const at = new Date().toISOString();
          batch.push({
            id: randomUUID(),
            type: 'PointsAwarded',
            data: {
              transactionId: newId('transaction'),
              memberId,
              points,
              reason: 'Quarterly sales target reached',
              reference: null,
              newBalance: balance,
              lifetimePoints: balance,
              at,
            },
            metadata: {
              programId: setup.programId,
              correlationId: randomUUID(),
              causationId: null,
              actor: 'key_benchmark01',
              recordedAt: at,
            },
          });
        }
        await runtime.store.append(streams.points(setup.programId, memberId), batch, 'any');
      }
    }),
  );
  return (performance.now() - t0) / 1000;
};

const countRows = async (runtime: Runtime) => {
  const r = await sql<{ envelopes: number; deliveries: number; delivered: number }>`
    select (select count(*)::int from webhook_envelopes) as envelopes,
      (select count(*)::int from webhook_deliveries) as deliveries,
      (select count(*)::int from webhook_deliveries where status = 'delivered') as delivered`.execute(
    runtime.database.db,
  );
  return r.rows[0]!;
};

/**
 * Envelopes projected so far. A batch's envelopes and delivery rows commit together, so this is
 * "every delivery row exists" at a tenth of the rows to count (the poll runs beside the drain).
 */
const countEnvelopes = async (runtime: Runtime): Promise<number> => {
  const r = await sql<{ n: number }>`select count(*)::int as n from webhook_envelopes`.execute(
    runtime.database.db,
  );
  return r.rows[0]!.n;
};

/** Polls until `done` or the timeout; returns the ms from `t0` when done was first seen. */
const waitUntil = async (
  done: () => Promise<boolean>,
  t0: number,
  timeoutMs = drainTimeoutMs,
  everyMs = 50,
): Promise<number | null> => {
  for (;;) {
    if (await done()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) return null;
    await sleep(everyMs);
  }
};

type Drain = {
  deliveries: number;
  perS: number;
  seconds: number;
  cpuPct: number;
  /** All postgres processes while draining: % of one core, and CPU µs per delivery. */
  pgCpuPct: number;
  pgUsPerDelivery: number;
  /** The receivers' process while draining: % of one core. */
  receiversCpuPct: number;
  delivered: number;
  badSignatures: number;
  checked: number;
};

/**
 * BENCH_PERF=<prefix>: a system-wide `perf record -g` (Linux perf, run as root) while a drain is
 * measured, written to <prefix>-<label>.data; read it with
 * `perf report -i <file> --comm postgres --no-children --sort symbol -g none`.
 */
const perfRecord = (label: string) => {
  const prefix = process.env.BENCH_PERF;
  if (!prefix) return null;
  const child = spawn(
    'perf',
    ['record', '-F', '499', '-g', '-a', '-o', `${prefix}-${label}.data`],
    {
      stdio: 'ignore',
    },
  );
  // perf missing or refused: say so and measure without it.
  const ended = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (error) => {
      console.error(`BENCH_PERF: perf did not run (${error.message})`);
      resolve();
    });
  });
  return {
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      await ended;
    },
  };
};

/** Waits until the receivers counted `expected` POSTs; rate from first to last received. */
const measureDrain = async (
  receivers: Receivers,
  expected: number,
  t0: number,
  label: string,
): Promise<Drain & { complete: boolean }> => {
  const perf = perfRecord(label);
  const cpu0 = process.cpuUsage();
  const pg0 = postgresCpuSeconds();
  const receivers0 = receivers.cpuSeconds();
  const wall0 = performance.now();
  let stats = await receivers.stats();
  const done = await waitUntil(
    async () => {
      stats = await receivers.stats();
      return stats.total >= expected;
    },
    t0,
    drainTimeoutMs,
    100,
  );
  const cpu = process.cpuUsage(cpu0);
  const pg1 = postgresCpuSeconds();
  const receivers1 = receivers.cpuSeconds();
  await perf?.stop();
  const pgSeconds = pg0 === null || pg1 === null ? Number.NaN : pg1 - pg0;
  const wallMs = performance.now() - wall0;
  const seconds = (stats.lastMs - stats.firstMs) / 1000;
  return {
    pgCpuPct: ((pgSeconds * 1000) / wallMs) * 100,
    pgUsPerDelivery: (pgSeconds * 1e6) / stats.total,
    receiversCpuPct:
      receivers0 === null || receivers1 === null
        ? Number.NaN
        : (((receivers1 - receivers0) * 1000) / wallMs) * 100,
    deliveries: stats.total,
    perS: (stats.total - 1) / seconds,
    seconds,
    cpuPct: ((cpu.user + cpu.system) / 1000 / (performance.now() - wall0)) * 100,
    delivered: 0,
    badSignatures: stats.badSignatures,
    checked: stats.checked,
    complete: done !== null,
  };
};

type FanOut = {
  endpoints: number;
  appendS: number;
  projectS: number | null;
  envelopesPerS: number;
  rowsPerS: number;
  drain: Drain & { complete: boolean };
  mode: 'split' | 'pipeline';
  bodies: string[];
};

const fanOut = async (
  receivers: Receivers,
  endpoints: number,
  count: number,
  mode: 'split' | 'pipeline',
): Promise<FanOut> => {
  const db = await dbs.create();
  const urls = receivers.urls().slice(0, endpoints);
  // Setup with no background role: a runtime whose only role is the (not listening) scheduler.
  const setupRuntime = await startBenchRuntime(db.url, { ...tuning, ROLES: 'scheduler' });
  let setup: Setup;
  let appendS: number;
  try {
    setup = await setUp(setupRuntime, urls, memberCount);
    appendS = await appendAwards(setupRuntime, setup, count);
  } finally {
    await setupRuntime.stop();
  }
  const expected = count * endpoints;
  await receivers.reset({ latency: false, secrets: setup.secrets });
  let projectS: number | null;
  let drain: FanOut['drain'];
  let bodies: string[] = [];
  if (mode === 'split') {
    const projector = await startBenchRuntime(db.url, { ...tuning, ROLES: 'projector' });
    try {
      const t0 = performance.now();
      const ms = await waitUntil(async () => (await countEnvelopes(projector)) >= count, t0);
      projectS = ms === null ? null : ms / 1000;
    } finally {
      await projector.stop();
    }
    if (tracer) {
      console.log(`SQL of the projector alone, ${endpoints} endpoint(s):`);
      tracer.print(count / 1000, '1000 events');
    }
    tracer?.reset();
    const worker = await startBenchRuntime(db.url, { ...tuning, ROLES: 'delivery' });
    try {
      drain = await measureDrain(receivers, expected, performance.now(), `drain-${endpoints}`);
      if (tracer) {
        console.log(
          `SQL of the worker alone draining ${endpoints} endpoint(s) (includes the bench's own polls):`,
        );
        tracer.print(drain.deliveries / 1000, '1000 deliveries');
      }
      await waitUntil(
        async () => (await countRows(worker)).delivered >= expected,
        performance.now(),
        10_000,
      );
      drain.delivered = (await countRows(worker)).delivered;
      const b = await sql<{
        body: string;
      }>`select body from webhook_envelopes order by seq limit ${baselineEvents}`.execute(
        worker.database.db,
      );
      bodies = b.rows.map((r) => r.body);
    } finally {
      await worker.stop();
    }
  } else {
    const both = await startBenchRuntime(db.url, { ...tuning, ROLES: 'projector,delivery' });
    try {
      const t0 = performance.now();
      // Polled rarely and cheaply: it runs beside the drain it would otherwise slow down.
      const projected = waitUntil(
        async () => (await countEnvelopes(both)) >= count,
        t0,
        drainTimeoutMs,
        250,
      );
      drain = await measureDrain(receivers, expected, t0, `pipeline-${endpoints}`);
      const ms = await projected;
      projectS = ms === null ? null : ms / 1000;
      await waitUntil(
        async () => (await countRows(both)).delivered >= expected,
        performance.now(),
        10_000,
      );
      drain.delivered = (await countRows(both)).delivered;
    } finally {
      await both.stop();
    }
  }
  await db.drop();
  return {
    endpoints,
    appendS,
    projectS,
    envelopesPerS: projectS === null ? Number.NaN : count / projectS,
    rowsPerS: projectS === null ? Number.NaN : expected / projectS,
    drain,
    mode,
    bodies,
  };
};

// ---------------------------------------------------------------------------------------------
// Baseline: pg-boss + got

type Baseline = Drain & { insertPerS: number; complete: boolean };

/**
 * What a team would build without us: one pg-boss job per delivery (inserted with boss.insert in
 * batches of 1000), `baselineWorkers` boss.work() registrations with batchSize `baselineBatch`
 * and the minimum polling interval (0.5 s), each POSTing its batch in parallel with got over a
 * keep-alive agent (maxSockets per receiver = `baselineSockets`, like our per-endpoint cap),
 * HMAC-SHA256 hex signature like ours. The batch completes when every POST answered 2xx.
 */
const baseline = async (
  receivers: Receivers,
  bodies: string[],
  endpoints: number,
): Promise<Baseline> => {
  const db = await dbs.create();
  const boss = new PgBoss({ connectionString: db.url, max: 10, pollingIntervalSeconds: 0.5 });
  boss.on('error', (error: unknown) => console.error('pg-boss error:', error));
  await boss.start();
  const queue = 'webhook-deliveries';
  await boss.createQueue(queue);
  const urls = receivers.urls().slice(0, endpoints);
  const secrets = urls.map(() => `whsec_${Buffer.from(randomUUID()).toString('base64')}`);
  const jobs: PgBoss.JobInsert[] = [];
  for (const body of bodies)
    for (let e = 0; e < urls.length; e++)
      jobs.push({
        name: queue,
        data: { url: urls[e], secret: secrets[e], body, deliveryId: randomUUID() },
      });
  const t0 = performance.now();
  for (let i = 0; i < jobs.length; i += 1000) await boss.insert(jobs.slice(i, i + 1000));
  const insertPerS = jobs.length / ((performance.now() - t0) / 1000);
  await receivers.reset({ latency: false, secrets });
  const agent = new http.Agent({ keepAlive: true, maxSockets: baselineSockets });
  type JobData = { url: string; secret: string; body: string; deliveryId: string };
  const tw = performance.now();
  for (let w = 0; w < baselineWorkers; w++) {
    await boss.work<JobData>(
      queue,
      { batchSize: baselineBatch, pollingIntervalSeconds: 0.5 },
      async (batch) => {
        await Promise.all(
          batch.map((job) =>
            got.post(job.data.url, {
              body: job.data.body,
              headers: {
                'content-type': 'application/json',
                'x-incentable-signature': createHmac('sha256', job.data.secret)
                  .update(job.data.body)
                  .digest('hex'),
                'x-incentable-delivery': job.data.deliveryId,
              },
              agent: { http: agent },
              retry: { limit: 0 },
              timeout: { request: 15_000 },
              followRedirect: false,
            }),
          ),
        );
      },
    );
  }
  const drain = await measureDrain(receivers, jobs.length, tw, 'baseline');
  await sleep(1000);
  await boss.stop({ graceful: true, wait: true, timeout: 10_000 });
  agent.destroy();
  await db.drop();
  return { ...drain, insertPerS };
};

// ---------------------------------------------------------------------------------------------
// Latency

type Latency = {
  endpoints: number;
  sent: number;
  ok: number;
  received: number;
  expected: number;
  p50: number;
  p99: number;
  max: number;
  negative: number;
  apiP50: number;
  apiP99: number;
  /** Sampled every 250 ms: due-or-leased deliveries, and events not yet seen by the webhook projector. */
  maxBacklog: number;
  maxProjectorLag: number;
  /** Oldest xid-holding transaction in OTHER databases (holds back the projector's xmin guard). */
  foreignXactP99Ms: number;
  /** Stage by stage (bench/webhooks/timeline.ts); only when the API runs in this process. */
  stages: Stage[] | null;
};

/** Backlog and xmin-holder samples while the latency run goes (evidence for where time goes). */
const sampleBacklog = (runtime: Runtime) => {
  let stopped = false;
  const backlog: number[] = [];
  const lag: number[] = [];
  const foreign: number[] = [];
  const loop = (async () => {
    while (!stopped) {
      const r = await sql<{ backlog: number; lag: number; foreign_ms: number | null }>`
        select (select count(*)::int from webhook_deliveries where status in ('pending', 'delivering')) as backlog,
          (select count(*)::int from incentable_events e, incentable_subscriptions s
            where s.name = 'webhooks' and (e.transaction_id, e.global_position) > (s.commit_position, s.prepare_position)) as lag,
          (select extract(epoch from max(now() - xact_start)) * 1000 from pg_stat_activity
            where backend_xid is not null and datname is distinct from current_database())::float8 as foreign_ms`.execute(
        runtime.database.db,
      );
      const row = r.rows[0]!;
      backlog.push(row.backlog);
      lag.push(row.lag);
      foreign.push(row.foreign_ms ?? 0);
      await sleep(250);
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    foreign.sort((a, b) => a - b);
    return {
      maxBacklog: Math.max(0, ...backlog),
      maxProjectorLag: Math.max(0, ...lag),
      foreignXactP99Ms: quantile(foreign, 0.99),
    };
  };
};

/**
 * The API as production scales it out (docs/architecture.md): its own process, started as
 * `npm start` starts it, on the same database; the projector and the worker stay in this one.
 */
const startApiProcess = async (
  databaseUrl: string,
): Promise<{ url: string; stop(): Promise<void> }> => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  const child = spawn(process.execPath, ['--import', 'tsx', 'adapters/main.ts'], {
    cwd: new URL('../../', import.meta.url).pathname,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'development',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      ADMIN_API_KEY: adminApiKey,
      LOG_LEVEL: 'warn',
      WEBHOOK_SECRET_KEY: webhookSecretKey,
      ROLES: 'api',
      ...tuning,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (i > 300) throw new Error('the API process did not start');
    await sleep(100);
  }
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
};

const latency = async (
  receivers: Receivers,
  endpoints: number,
  apiApart: boolean,
): Promise<Latency> => {
  const db = await dbs.create();
  const runtime = await startBenchRuntime(db.url, {
    ...tuning,
    ROLES: apiApart ? 'projector,delivery' : 'api,projector,delivery',
  });
  const api = apiApart ? await startApiProcess(db.url) : null;
  const sent201 = new Map<string, number>();
  let timeline: ReturnType<typeof recordTimeline> | null = null;
  const apiMs: number[] = [];
  let sent = 0;
  let sampled = {
    maxBacklog: Number.NaN,
    maxProjectorLag: Number.NaN,
    foreignXactP99Ms: Number.NaN,
  };
  try {
    const setup = await setUp(runtime, receivers.urls().slice(0, endpoints), memberCount);
    await runtime.readModels?.caughtUp();
    await runtime.webhookProjection?.caughtUp();
    await receivers.reset({ latency: true });
    timeline = apiApart ? null : recordTimeline();
    const stopSampling = sampleBacklog(runtime);
    const client = new Pool(api?.url ?? runtime.url!, { connections: 16, pipelining: 1 });
    const total = Math.round(latencySeconds * latencyRate);
    const intervalMs = 1000 / latencyRate;
    const start = performance.now() + 200;
    const inFlight: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const due = start + i * intervalMs;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      const memberId = setup.memberIds[i % setup.memberIds.length]!;
      sent++;
      inFlight.push(
        (async () => {
          const t = performance.now();
          const response = await client.request({
            method: 'POST',
            path: `/v1/programs/${setup.programId}/members/${memberId}/points/award`,
            headers: { authorization: `Bearer ${adminApiKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ points: 10, reason: 'latency benchmark' }),
          });
          const text = await response.body.text();
          const at = absoluteNowMs();
          apiMs.push(performance.now() - t);
          if (response.statusCode === 201) {
            const id = (JSON.parse(text) as { transaction_id: string }).transaction_id;
            sent201.set(id, at);
          } else if (sent201.size === 0) {
            console.error(`award answered ${response.statusCode}: ${text.slice(0, 200)}`);
          }
        })(),
      );
    }
    await Promise.all(inFlight);
    await client.close();
    const expected = sent201.size * endpoints;
    await waitUntil(
      async () => (await receivers.stats()).samples.length >= expected,
      performance.now(),
      10_000,
      200,
    );
    sampled = await stopSampling();
  } finally {
    await api?.stop();
    await runtime.stop();
    await db.drop();
  }
  const stats = await receivers.stats();
  const latencies: number[] = [];
  let negative = 0;
  const lastReceived = new Map<string, number>();
  for (const [key, at] of stats.samples) {
    const transactionId = key.slice(key.indexOf(':') + 1);
    lastReceived.set(transactionId, Math.max(lastReceived.get(transactionId) ?? 0, at));
    const sentAt = sent201.get(transactionId);
    if (sentAt === undefined) continue;
    const ms = at - sentAt;
    if (ms < 0) negative++;
    latencies.push(Math.max(0, ms));
  }
  latencies.sort((a, b) => a - b);
  apiMs.sort((a, b) => a - b);
  return {
    endpoints,
    sent,
    ok: sent201.size,
    received: latencies.length,
    expected: sent201.size * endpoints,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    max: latencies.at(-1) ?? Number.NaN,
    negative,
    apiP50: quantile(apiMs, 0.5),
    apiP99: quantile(apiMs, 0.99),
    ...sampled,
    stages: timeline?.stop(sent201, lastReceived) ?? null,
  };
};

// ---------------------------------------------------------------------------------------------

const main = async (): Promise<void> => {
  const started = performance.now();
  await printMachine('Webhook delivery benchmark');
  console.log(
    `BENCH_EVENTS=${events} BENCH_BASELINE_EVENTS=${baselineEvents} BENCH_LATENCY_SECONDS=${latencySeconds} ` +
      `BENCH_LATENCY_RATE=${latencyRate} BENCH_QUICK=${quick ? 1 : 0} BENCH_ONLY=${only}`,
  );
  console.log(
    `runtime tuning env: ${JSON.stringify(tuning)} (config defaults: WEBHOOK_CONCURRENCY=256, ` +
      'WEBHOOK_PER_ENDPOINT_IN_FLIGHT=32, DATABASE_POOL_SIZE=10)',
  );
  console.log(
    `baseline: pg-boss ${baselineWorkers} workers x batchSize ${baselineBatch}, polling 0.5 s, got keep-alive maxSockets ${baselineSockets}`,
  );
  const receivers = await Receivers.start(10);
  const fanRows: string[][] = [];
  let ours10: FanOut | null = null;
  let oursPipeline10: FanOut | null = null;
  try {
    if (only === 'all' || only === 'throughput' || only === 'baseline' || only === 'ratio') {
      console.log(
        `\n## 1. Fan-out: ${fmtInt(events)} PointsAwarded events -> endpoints subscribed to points.awarded`,
      );
      const plan: [number, 'split' | 'pipeline'][] =
        only === 'baseline'
          ? [[10, 'split']]
          : only === 'ratio'
            ? [
                [10, 'split'],
                [10, 'pipeline'],
              ]
            : process.env.BENCH_PIPELINE === '0'
              ? [
                  [1, 'split'],
                  [10, 'split'],
                ]
              : [
                  [1, 'split'],
                  [10, 'split'],
                  [10, 'pipeline'],
                ];
      for (const [endpoints, mode] of plan) {
        const r = await fanOut(receivers, endpoints, events, mode);
        if (endpoints === 10 && mode === 'split') ours10 = r;
        if (endpoints === 10 && mode === 'pipeline') oursPipeline10 = r;
        fanRows.push([
          `${endpoints} endpoint${endpoints > 1 ? 's' : ''}, ${mode === 'split' ? 'projector then worker' : 'projector + worker together'}`,
          fmtInt(r.drain.deliveries),
          fmtInt(r.drain.perS),
          r.drain.seconds.toFixed(1),
          `${fmtInt(r.drain.cpuPct)}%`,
          `${fmtInt(r.drain.pgCpuPct)}%`,
          fmtInt(r.drain.pgUsPerDelivery),
          `${fmtInt(r.drain.receiversCpuPct)}%`,
          fmtInt(r.envelopesPerS),
          fmtInt(r.rowsPerS),
          `${fmtInt(r.drain.delivered)}${r.drain.complete ? '' : ' INCOMPLETE'}`,
          `${r.drain.badSignatures}/${r.drain.checked}`,
          cpuPressure(),
        ]);
        console.log(
          fanRows.at(-1)!.join(' | '),
          `(append of the events: ${r.appendS.toFixed(1)} s)`,
        );
        const target = endpoints === 10;
        report.note(
          `ours: ${endpoints} endpoint(s), ${mode === 'split' ? 'worker alone draining' : 'projector + worker together'}, deliveries/s (first to last POST)`,
          `${fmtInt(r.drain.perS)} (${fmtInt(r.drain.deliveries)} in ${r.drain.seconds.toFixed(1)} s)`,
          target ? '>= 5,000' : '',
          target ? r.drain.perS >= 5000 && r.drain.complete : undefined,
        );
        report.note(
          `ours: ${endpoints} endpoint(s), projector${mode === 'pipeline' ? ' (beside the worker)' : ' alone'}: envelopes/s (delivery rows/s)`,
          `${fmtInt(r.envelopesPerS)} (${fmtInt(r.rowsPerS)})`,
        );
      }
      console.log();
      printTable(
        [
          'scenario',
          'POSTs',
          'deliveries/s',
          's',
          'node CPU',
          'PG CPU',
          'PG µs/POST',
          'receivers CPU',
          'envelopes/s',
          'rows/s',
          'delivered rows',
          'bad sig',
          'psi %',
        ],
        fanRows,
      );
      console.log(
        "'envelopes/s': projector time from start until every delivery row exists. 'node CPU': the runtime process (% of one core) while draining; 'PG CPU': every postgres process then, and its CPU µs per POST received; 'receivers CPU': the loopback receivers' process.",
      );
    }

    if ((only === 'all' || only === 'baseline' || only === 'ratio') && ours10) {
      console.log(
        `\n## 3. Baseline: pg-boss jobs + got, ${fmtInt(ours10.bodies.length)} of the same envelopes x 10 endpoints`,
      );
      const b = await baseline(receivers, ours10.bodies, 10);
      const ratio = ours10.drain.perS / b.perS;
      printTable(
        [
          'scenario',
          'POSTs',
          'deliveries/s',
          's',
          'node CPU',
          'PG CPU',
          'PG µs/POST',
          'receivers CPU',
          'insert jobs/s',
          'bad sig',
          'psi %',
        ],
        [
          [
            'pg-boss + got, 10 endpoints',
            fmtInt(b.deliveries),
            fmtInt(b.perS),
            b.seconds.toFixed(1),
            `${fmtInt(b.cpuPct)}%`,
            `${fmtInt(b.pgCpuPct)}%`,
            fmtInt(b.pgUsPerDelivery),
            `${fmtInt(b.receiversCpuPct)}%`,
            fmtInt(b.insertPerS),
            `${b.badSignatures}/${b.checked}`,
            cpuPressure(),
          ],
        ],
      );
      console.log(`ours/baseline deliveries/s, 10 endpoints: ${fmtRatio(ratio)}`);
      report.note(
        'baseline pg-boss + got: 10 endpoints, deliveries/s',
        `${fmtInt(b.perS)} (${fmtInt(b.deliveries)} in ${b.seconds.toFixed(1)} s; insert ${fmtInt(b.insertPerS)} jobs/s)`,
      );
      report.note(
        'ours / baseline, 10 endpoints, draining a backlog (both: first to last POST)',
        fmtRatio(ratio),
        '>= 3.0',
        ratio >= 3 && b.complete,
      );
      if (oursPipeline10) {
        // End to end: pg-boss's job inserts plus its drain, against our projector + worker from
        // the first appended event's projection to the last POST.
        const baselineEndToEnd = b.deliveries / (b.deliveries / b.insertPerS + b.seconds);
        const pipelineRatio = oursPipeline10.drain.perS / baselineEndToEnd;
        console.log(
          `ours (projector + worker) / baseline (insert + drain), 10 endpoints: ${fmtRatio(pipelineRatio)}`,
        );
        report.note(
          'ours (projector + worker together) / baseline (job inserts + drain), 10 endpoints',
          `${fmtInt(oursPipeline10.drain.perS)} / ${fmtInt(baselineEndToEnd)} = ${fmtRatio(pipelineRatio)}`,
          '>= 3.0',
          pipelineRatio >= 3 && b.complete,
        );
      }
    }

    if (only === 'all' || only === 'latency') {
      console.log(
        `\n## 2. Latency: awards over HTTP at ${latencyRate}/s for ${latencySeconds} s, API 201 -> receiver (all roles in one process, then the API in a process of its own)`,
      );
      const rows: string[][] = [];
      for (const [endpoints, apiApart] of [
        [1, false],
        [10, false],
        [1, true],
        [10, true],
      ] as const) {
        const l = await latency(receivers, endpoints, apiApart);
        const where = apiApart ? 'API in its own process' : 'one process';
        rows.push([
          `${endpoints} endpoint${endpoints > 1 ? 's' : ''}, ${where}`,
          fmtInt(l.ok),
          `${fmtInt(l.received)}/${fmtInt(l.expected)}`,
          fmtMs(l.p50),
          fmtMs(l.p99),
          fmtMs(l.max),
          fmtInt(l.negative),
          `${fmtMs(l.apiP50)} / ${fmtMs(l.apiP99)}`,
          fmtInt(l.maxBacklog),
          fmtInt(l.maxProjectorLag),
          fmtMs(l.foreignXactP99Ms),
          cpuPressure(),
        ]);
        console.log(rows.at(-1)!.join(' | '));
        if (l.stages) {
          console.log(`  stage by stage, ${endpoints} endpoint(s), ${where}:`);
          printTable(
            ['stage', 'p50 ms', 'p99 ms', 'n'],
            l.stages.map((s) => [s.stage, fmtMs(s.p50), fmtMs(s.p99), fmtInt(s.n)]),
          );
        }
        const complete = l.received === l.expected && l.ok === l.sent;
        report.note(
          `latency, ${endpoints} endpoint(s), ${where}, 201 -> receiver p50`,
          `${fmtMs(l.p50)} ms`,
          '< 15 ms',
          l.p50 < 15 && complete,
        );
        report.note(
          `latency, ${endpoints} endpoint(s), ${where}, 201 -> receiver p99 / max`,
          `${fmtMs(l.p99)} / ${fmtMs(l.max)} ms`,
          '< 60 ms (p99)',
          l.p99 < 60 && complete,
        );
      }
      console.log();
      printTable(
        [
          'endpoints',
          '201s',
          'received',
          'p50 ms',
          'p99 ms',
          'max ms',
          'before 201',
          'API p50/p99 ms',
          'max backlog',
          'max proj. lag',
          'foreign xact p99 ms',
          'psi %',
        ],
        rows,
      );
      console.log(
        "'before 201': the receiver had the POST before the client had the 201 (counted as 0 ms).",
      );
      console.log(
        "'max backlog': most deliveries pending or leased at one 250 ms sample; 'max proj. lag': most events appended but not yet\n" +
          "projected to webhooks; 'foreign xact': age of the oldest xid-holding transaction in other databases (the xmin guard waits for it).",
      );
    }
  } finally {
    await receivers.stop();
    await dbs.dropAll();
  }
  report.print();
  console.log(`\nCPU pressure at the end: ${cpuPressure()}%`);
  console.log(`total ${((performance.now() - started) / 1000).toFixed(0)} s`);
};

await main();
