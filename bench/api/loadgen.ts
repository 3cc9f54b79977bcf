/**
 * The award-points load generator, run as a child process (bench/api/run.ts forks it) so it does
 * not share the API's event loop: `connections` keep-alive connections (undici Pool), each a
 * closed loop of POST /points/award to a random member. Only requests that start and finish
 * inside the measured window count.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';

export type LoadRequest = {
  url: string;
  key: string;
  programId: string;
  memberIds: string[];
  connections: number;
  seconds: number;
  warmupSeconds: number;
};

export type LoadResult = {
  requests: number;
  perS: number;
  seconds: number;
  statuses: Record<string, number>;
  errors: number;
  p50: number;
  p99: number;
  max: number;
  /** CPU ms this load generator used, all of its run. */
  cpuMs: number;
};

const quantile = (sorted: number[], q: number) =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;

const run = async (r: LoadRequest): Promise<LoadResult> => {
  const client = new Pool(r.url, { connections: r.connections, pipelining: 1 });
  let phase: 'warmup' | 'measure' | 'stop' = 'warmup';
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  const body = JSON.stringify({ points: 25, reason: 'API benchmark award' });
  const headers = { authorization: `Bearer ${r.key}`, 'content-type': 'application/json' };
  const loop = async () => {
    while (phase !== 'stop') {
      const counted = phase === 'measure';
      const memberId = r.memberIds[Math.floor(Math.random() * r.memberIds.length)]!;
      const t = performance.now();
      try {
        const response = await client.request({
          method: 'POST',
          path: `/v1/programs/${r.programId}/members/${memberId}/points/award`,
          headers,
          body,
        });
        await response.body.text();
        if (counted && phase === 'measure') {
          latencies.push(performance.now() - t);
          statuses[response.statusCode] = (statuses[response.statusCode] ?? 0) + 1;
        }
      } catch {
        errors++;
        await sleep(10);
      }
    }
  };
  const loops = Array.from({ length: r.connections }, loop);
  await sleep(r.warmupSeconds * 1000);
  phase = 'measure';
  const t0 = performance.now();
  await sleep(r.seconds * 1000);
  phase = 'stop';
  const seconds = (performance.now() - t0) / 1000;
  await Promise.all(loops);
  await client.close();
  latencies.sort((a, b) => a - b);
  const ok = statuses['201'] ?? 0;
  return {
    requests: latencies.length,
    perS: ok / seconds,
    seconds,
    statuses,
    errors,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    max: latencies.at(-1) ?? Number.NaN,
    cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
  };
};

process.on('message', (request: LoadRequest) => {
  void run(request).then((result) => {
    process.send?.(result);
    process.disconnect();
  });
});
