/**
 * CPU per delivery in the delivery worker's process, which on a loaded machine matters more than
 * wall-clock rates: fills a fresh database with N events x E endpoints of pending deliveries
 * (through the product's projector), then drains them with the worker alone and divides the
 * process's CPU time (user + system) by the deliveries. Beside it, the same number of POSTs from
 * the bare UndiciTransport (no database, no signing) and from got, the baseline's client.
 * With BENCH_PROFILE=<file.cpuprofile> the drain is CPU-profiled (summarise it with
 * `npx tsx bench/api/profile.ts <file>`).
 *
 *   BENCH_EVENTS=5000 BENCH_ENDPOINTS=10 npx tsx bench/webhooks/cpu.ts
 *   BENCH_QUICK=1 npx tsx bench/webhooks/cpu.ts   (smoke run: 500 events)
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import got from 'got';
import { sql } from 'kysely';
import { streams } from '../../application/incentives.ts';
import { newId } from '../../adapters/ids.ts';
import { UndiciTransport } from '../../adapters/webhooks/undiciTransport.ts';
import { cpuPressure, sleep } from '../eventstore/support.ts';
import { databases, printMachine, Receivers, startBenchRuntime, tuningEnv } from './harness.ts';

const quick = process.env.BENCH_QUICK === '1';
const events = Number(process.env.BENCH_EVENTS ?? (quick ? 500 : 5_000));
const endpointCount = Number(process.env.BENCH_ENDPOINTS ?? 10);
const profileFile = process.env.BENCH_PROFILE;
const tuning = tuningEnv();

const cpuMicros = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

const body = JSON.stringify({
  id: 'evt_0123456789abcdefghij',
  type: 'points.awarded',
  created_at: '2026-11-27T10:00:00Z',
  data: {
    transaction_id: 'txn_0123456789abcdefghij',
    member_id: 'mem_0123456789abcdefghij',
    points: 500,
    reason: 'Quarterly sales target reached',
    new_balance: 5500,
  },
});

/** `total` POSTs spread over the receivers, `perEndpoint` at a time each, with `post`. */
const blast = async (
  urls: string[],
  total: number,
  perEndpoint: number,
  post: (url: string) => Promise<void>,
) => {
  let next = 0;
  await Promise.all(
    urls.flatMap((url) =>
      Array.from({ length: perEndpoint }, async () => {
        while (next < total) {
          next += 1;
          await post(url);
        }
      }),
    ),
  );
};

const main = async () => {
  await printMachine('Webhook worker CPU per delivery');
  const receivers = await Receivers.start(endpointCount);
  const dbs = databases();
  const urls = receivers.urls();
  const total = events * endpointCount;
  const perEndpoint = Number(tuning.WEBHOOK_PER_ENDPOINT_IN_FLIGHT ?? 32);
  try {
    const db = await dbs.create();
    const rt = await startBenchRuntime(db.url, { ...tuning, ROLES: 'projector' });
    try {
      const p = await rt.incentives.createProgram(
        {
          name: 'cpu',
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
      for (const url of urls)
        await rt.webhooks.createEndpoint({ programId, url, events: ['points.awarded'] });
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
              reason: 'Quarterly sales target reached',
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
      for (;;) {
        const r = await sql<{
          n: number;
        }>`select count(*)::int as n from webhook_deliveries`.execute(rt.database.db);
        if (r.rows[0]!.n >= total) break;
        await sleep(100);
      }
    } finally {
      await rt.stop();
    }

    await receivers.reset({ latency: false });
    const session = new Session();
    if (profileFile) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    const worker = await startBenchRuntime(db.url, { ...tuning, ROLES: 'delivery' });
    const cpu0 = cpuMicros();
    const t0 = performance.now();
    try {
      for (;;) {
        const stats = await receivers.stats();
        if (stats.total >= total) break;
        await sleep(20);
      }
    } finally {
      const cpu = cpuMicros() - cpu0;
      const seconds = (performance.now() - t0) / 1000;
      if (profileFile) {
        const { profile } = await session.post('Profiler.stop');
        writeFileSync(profileFile, JSON.stringify(profile));
        session.disconnect();
      }
      await worker.stop();
      console.log(
        `worker draining ${total} deliveries to ${endpointCount} endpoints: ${(cpu / total).toFixed(0)} µs CPU per delivery, ${(total / seconds).toFixed(0)} deliveries/s, psi ${cpuPressure()}%`,
      );
    }
    await db.drop();

    const transport = new UndiciTransport({
      allowPrivateNetworks: true,
      connectionsPerOrigin: 256,
      userAgent: 'bench',
    });
    await receivers.reset({ latency: false });
    let c0 = cpuMicros();
    let w0 = performance.now();
    await blast(urls, total, perEndpoint, async (url) => {
      await transport.post({
        url,
        headers: { 'content-type': 'application/json' },
        body,
        timeoutMs: 15_000,
        endpointKey: url,
      });
    });
    let cpu = cpuMicros() - c0;
    console.log(
      `bare UndiciTransport, ${total} POSTs: ${(cpu / total).toFixed(0)} µs CPU per POST, ${(total / ((performance.now() - w0) / 1000)).toFixed(0)}/s`,
    );
    await transport.close();

    const agent = new http.Agent({ keepAlive: true, maxSockets: perEndpoint });
    await receivers.reset({ latency: false });
    c0 = cpuMicros();
    w0 = performance.now();
    await blast(urls, total, perEndpoint, async (url) => {
      await got.post(url, {
        body,
        headers: { 'content-type': 'application/json' },
        agent: { http: agent },
        retry: { limit: 0 },
        timeout: { request: 15_000 },
        followRedirect: false,
      });
    });
    cpu = cpuMicros() - c0;
    console.log(
      `got (the baseline's client), ${total} POSTs: ${(cpu / total).toFixed(0)} µs CPU per POST, ${(total / ((performance.now() - w0) / 1000)).toFixed(0)}/s`,
    );
    agent.destroy();
  } finally {
    await receivers.stop();
    await dbs.dropAll();
  }
};

await main();
