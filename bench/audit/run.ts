/**
 * Audit benchmark: seeds a hash-chained history of N events (default 1,000,000) into a fresh
 * database, then runs the real CLI in child processes under /usr/bin/time for peak RSS:
 * `audit verify`, `replay` (batched engine, every read model, swapped in so the live tables are
 * filled) and `replay --verify`, and `export` to /dev/null.
 *
 *   npx tsx bench/audit/run.ts [events]      (BENCH_PG: admin URL, default postgres@127.0.0.1)
 *   BENCH_QUICK=1 npx tsx bench/audit/run.ts (smoke run: 20,000 events unless given)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { openDatabase } from '../../adapters/db/database.ts';
import { createBenchDatabase } from '../eventstore/support.ts';
import { seedHistory } from './history.ts';
import { commitRates } from '../webhooks/harness.ts';

const quick = process.env.BENCH_QUICK === '1';
const total = Number(process.argv[2] ?? (quick ? 20_000 : 1_000_000));
const adminUrl = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const root = new URL('../../', import.meta.url).pathname;

/** "some avg10" of /proc/pressure/cpu: the share of time something waited for a CPU. */
const pressure = (): string => {
  try {
    return `CPU pressure ${/some avg10=([\d.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1]} %`;
  } catch {
    return 'CPU pressure unknown';
  }
};

/** Whether bin/incentable.js will run the compiled dist/ (it does only while it is fresh). */
const compiled = async (): Promise<boolean> => {
  // @ts-expect-error bin/ is plain JavaScript, outside the typed program.
  const { fingerprint } = (await import('../../bin/sources.mjs')) as {
    fingerprint: (root: string) => string;
  };
  try {
    return readFileSync(`${root}dist/.sources`, 'utf8') === fingerprint(root);
  } catch {
    return false;
  }
};

const cli = (url: string, args: string[]) => {
  const started = performance.now();
  const result = spawnSync(
    '/usr/bin/time',
    ['-f', '%M', process.execPath, 'bin/incentable.js', ...args],
    {
      cwd: root,
      encoding: 'utf8',
      maxBuffer: 1 << 28,
      env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'silent' },
    },
  );
  const seconds = (performance.now() - started) / 1000;
  const rssKb = Number(result.stderr.trim().split('\n').at(-1));
  return {
    status: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
    seconds,
    rssKb,
    pressure: pressure(),
  };
};

console.log(`disk commit rate: ${await commitRates()}`);
const database = await createBenchDatabase(adminUrl);
try {
  const handle = await openDatabase({ kind: 'postgres', url: database.url });
  await handle.close();
  const seedStarted = performance.now();
  const { events } = await seedHistory(database.url, {
    total,
    onProgress: (n) => {
      if (n % 100_000 < 5000) process.stderr.write(`\rseeded ${n}`);
    },
  });
  process.stderr.write('\n');
  console.log(
    `seeded ${events} events in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`,
  );
  const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;
  console.log(
    `${new Date().toISOString()}: the CLI runs ${(await compiled()) ? 'dist/ (compiled)' : 'the sources through tsx'}`,
  );

  const verify = cli(database.url, ['audit', 'verify', '--json']);
  const v = JSON.parse(verify.stdout) as { events: number; eventsPerSecond: number; ok: boolean };
  console.log(
    `verify: ${v.events} events, ${v.eventsPerSecond} events/s (in-process), ok=${v.ok}, wall ${verify.seconds.toFixed(1)} s, peak RSS ${mb(verify.rssKb)}, ${verify.pressure}`,
  );

  const swap = cli(database.url, ['replay', '--swap', '--json']);
  const s = JSON.parse(swap.stdout) as {
    events: number;
    eventsPerSecond: number;
    replayMs: number;
  };
  console.log(
    `replay (batched, every read model, --swap): ${s.events} events in ${(s.replayMs / 1000).toFixed(1)} s = ${s.eventsPerSecond} events/s, wall ${swap.seconds.toFixed(1)} s, peak RSS ${mb(swap.rssKb)}, ${swap.pressure}`,
  );

  const again = cli(database.url, ['replay', '--verify', '--json']);
  const a = JSON.parse(again.stdout) as {
    eventsPerSecond: number;
    totalDifferences: number;
    replayMs: number;
    elapsedMs: number;
  };
  console.log(
    `replay --verify: ${a.eventsPerSecond} events/s replay, ${((a.elapsedMs - a.replayMs) / 1000).toFixed(1)} s diff, ${a.totalDifferences} differences, peak RSS ${mb(again.rssKb)}, ${again.pressure}`,
  );

  const exported = cli(database.url, ['export', '--output', '/dev/null']);
  console.log(
    `export jsonl to /dev/null: ${(events / exported.seconds).toFixed(0)} events/s wall, peak RSS ${mb(exported.rssKb)}, ${exported.pressure}`,
  );
} finally {
  await database.drop();
}
