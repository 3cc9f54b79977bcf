import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { EventMetadata } from '../../domain/recordedEvent.ts';
import type { NewEvent } from '../../application/ports.ts';

export { sleep };

/** CPU pressure (PSI 'some' avg10, %) of the whole machine: other work competing for the 2 cores. */
export const cpuPressure = (): string => {
  try {
    const line = readFileSync('/proc/pressure/cpu', 'utf8').split('\n')[0] ?? '';
    return /avg10=([\d.]+)/.exec(line)?.[1] ?? 'n/a';
  } catch {
    return 'n/a';
  }
};

/** A fresh database on the admin server, dropped (with force) at the end of the run. */
export type BenchDatabase = { name: string; url: string; drop: () => Promise<void> };

export const createBenchDatabase = async (adminUrl: string): Promise<BenchDatabase> => {
  const name = `incentable_bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
};

/**
 * A domain-like event: ~150 B of data and ~190 B of metadata, about the 340 B rows DESIGN.md's
 * keyset-scan figure was measured with.
 */
export const benchEvent = (index: number): NewEvent => ({
  id: randomUUID(),
  type: 'PointsAwarded',
  data: {
    transactionId: `txn_${randomBytes(8).toString('hex')}`,
    memberId: `mem_${(index % 100_000).toString().padStart(6, '0')}`,
    points: 100 + (index % 900),
    reason: 'Quarterly sales target reached for the benchmark program',
  },
  metadata: benchMetadata(),
});

export const benchMetadata = (): EventMetadata => ({
  programId: 'prg_bench',
  correlationId: randomUUID(),
  causationId: null,
  actor: 'key_benchmark01',
  recordedAt: new Date().toISOString(),
});

/** An expected-revision failure, counted apart from real errors. */
export class Conflict extends Error {
  constructor() {
    super('expected revision conflict');
    this.name = 'Conflict';
  }
}

export type RunResult = {
  appends: number;
  events: number;
  conflicts: number;
  errors: number;
  seconds: number;
  appendsPerS: number;
  eventsPerS: number;
  /** CPU of this Node process over the window, in % of one core. */
  nodeCpuPct: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
};

/**
 * Runs `writers` loops of `op` concurrently. Only operations that start and finish inside the
 * measured window (after the warm-up) count. `op` resolves to the events it wrote, or throws
 * `Conflict` for an expected-revision failure.
 */
export const runWriters = async (options: {
  writers: number;
  seconds: number;
  warmupSeconds: number;
  op: (writer: number) => Promise<number>;
}): Promise<RunResult> => {
  let phase: 'warmup' | 'measure' | 'stop' = 'warmup';
  let appends = 0;
  let events = 0;
  let conflicts = 0;
  let errors = 0;
  let firstError: unknown = null;
  const latencies: number[] = [];
  const loop = async (writer: number) => {
    while (phase !== 'stop') {
      const counted = phase === 'measure';
      const started = performance.now();
      try {
        const n = await options.op(writer);
        if (counted && phase === 'measure') {
          appends++;
          events += n;
          latencies.push(performance.now() - started);
        }
      } catch (error) {
        if (error instanceof Conflict) {
          if (counted) conflicts++;
        } else {
          errors++;
          firstError ??= error;
          if (errors > 100) throw error;
        }
      }
      // PGlite resolves a query without touching the event loop's I/O phase: without this turn
      // a loop of appends on it starves every timer, including the one that ends the run.
      await yieldToLoop();
    }
  };
  const loops = Array.from({ length: options.writers }, (_, w) => loop(w));
  await sleep(options.warmupSeconds * 1000);
  phase = 'measure';
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(options.seconds * 1000);
  phase = 'stop';
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await Promise.all(loops);
  if (errors > 0) console.error(`  ${errors} unexpected errors, first:`, firstError);
  latencies.sort((a, b) => a - b);
  return {
    appends,
    events,
    conflicts,
    errors,
    seconds,
    appendsPerS: appends / seconds,
    eventsPerS: events / seconds,
    nodeCpuPct: ((cpu.user + cpu.system) / 1000 / (seconds * 1000)) * 100,
    latencyP50Ms: quantile(latencies, 0.5),
    latencyP99Ms: quantile(latencies, 0.99),
  };
};

/** Quantile of an ascending array (nearest rank); NaN when empty. */
export const quantile = (sorted: readonly number[], q: number): number => {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
};

export const fmtInt = (n: number): string =>
  Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';

export const fmtMs = (n: number): string =>
  Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : 1) : 'n/a';

export const fmtRatio = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');

/** A plain-text table with right-aligned numbers, for the console. */
export const printTable = (
  headers: readonly string[],
  rows: readonly (readonly string[])[],
): void => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
};
