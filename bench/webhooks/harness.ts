/**
 * Shared by bench/webhooks, bench/api, bench/destinations and bench/telemetry: machine facts, the
 * receivers child process, starting the product's runtime on a fresh database with config env
 * only, seeding a program, and a markdown summary.
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { loadConfig } from '../../adapters/config.ts';
import { startRuntime, type Runtime } from '../../adapters/runtime.ts';
import { cpuPressure, createBenchDatabase, type BenchDatabase } from '../eventstore/support.ts';

export const adminUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const loopbackHosts = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
if (!loopbackHosts.has(new URL(adminUrl).hostname)) {
  throw new Error(`BENCH_PG_URL must point at a loopback host, not ${new URL(adminUrl).hostname}`);
}

export const absoluteNowMs = (): number => performance.timeOrigin + performance.now();

/**
 * CPU seconds (user + system) used so far by every process named postgres on this machine, from
 * /proc/<pid>/stat; processes that ended in between are not counted. null where /proc is missing.
 */
export const postgresCpuSeconds = (): number | null => {
  let seconds = 0;
  try {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const used = processCpu(Number(pid), 'postgres');
      if (used !== null) seconds += used;
    }
  } catch {
    return null;
  }
  return seconds;
};

/** CPU seconds (user + system) of one process, if it runs and its name starts with `name`. */
export const processCpu = (pid: number, name = ''): number | null => {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const close = stat.lastIndexOf(')');
  if (!stat.slice(stat.indexOf('(') + 1, close).startsWith(name)) return null;
  const fields = stat.slice(close + 2).split(' ');
  // utime and stime, in clock ticks (USER_HZ, 100 on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

export const printMachine = async (title: string): Promise<void> => {
  const cpus = os.cpus();
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  const version = await client.query<{ version: string }>('select version()');
  const settings = await client.query<{ name: string; setting: string }>(
    `select name, setting from pg_settings where name in
      ('shared_buffers', 'synchronous_commit', 'fsync', 'max_connections', 'commit_delay')`,
  );
  const activity = await client.query<{ n: string }>(
    `select count(*)::text as n from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()`,
  );
  await client.end();
  console.log(`# ${title}`);
  console.log(`date: ${new Date().toISOString()}`);
  console.log(`cpu: ${cpus[0]?.model ?? 'unknown'} x ${cpus.length}`);
  console.log(
    `os: ${os.type()} ${os.release()}, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(`node: ${process.version}`);
  console.log(`postgres: ${version.rows[0]!.version.split(' on ')[0]}`);
  console.log(
    `postgres settings: ${settings.rows.map((s) => `${s.name}=${s.setting}`).join(', ')}`,
  );
  console.log(`other client sessions on the server at start: ${activity.rows[0]!.n}`);
  console.log(`CPU pressure at start (PSI cpu some avg10): ${cpuPressure()}%`);
  console.log(`disk commit rate: ${await commitRates()}`);
};

/**
 * What this machine's disk commits, printed beside every bench's figures so that figures from
 * different machines can be read together: `pgbench -N` tps on 1 and 8 connections when pgbench
 * is installed, and always our own single-row INSERT commits/s on 1 and 8 connections, each on
 * a scratch database. 2 s per figure (0.5 s and no pgbench with BENCH_QUICK=1).
 */
export const commitRates = async (): Promise<string> => {
  const seconds = process.env.BENCH_QUICK === '1' ? 0.5 : 2;
  const db = await createBenchDatabase(adminUrl);
  try {
    const parts: string[] = [];
    // Smoke runs skip pgbench: its initialisation alone takes longer than their whole figure.
    const pgbench =
      process.env.BENCH_QUICK === '1'
        ? 'not run (BENCH_QUICK=1)'
        : await pgbenchTps(db.name, Math.round(seconds)).catch(
            (error: unknown) =>
              `not run (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`,
          );
    parts.push(`pgbench -N 1 / 8 conn ${pgbench}`);
    const pool = new pg.Pool({ connectionString: db.url, max: 8 });
    // The scratch database is dropped with force right after: a connection still closing then
    // reports an error that is expected, not a crash.
    pool.on('error', () => {});
    try {
      await pool.query('create table commit_rate (id bigserial primary key, note text not null)');
      const rates: string[] = [];
      for (const connections of [1, 8]) {
        let commits = 0;
        const until = performance.now() + seconds * 1000;
        await Promise.all(
          Array.from({ length: connections }, async () => {
            while (performance.now() < until) {
              await pool.query('insert into commit_rate (note) values ($1)', ['commit']);
              commits++;
            }
          }),
        );
        rates.push(Math.round(commits / seconds).toLocaleString('en-US'));
      }
      parts.push(`raw single-row INSERT 1 / 8 conn ${rates.join(' / ')} commits/s`);
    } finally {
      await pool.end();
    }
    return parts.join('; ');
  } finally {
    await db.drop();
  }
};

const run = promisify(execFile);

/** pgbench -N (no updates of the small tables) tps on 1 and 8 connections, scale 1. */
const pgbenchTps = async (database: string, seconds: number): Promise<string> => {
  const url = new URL(adminUrl);
  const connection = [
    '-h',
    url.hostname,
    '-p',
    url.port || '5432',
    '-U',
    url.username || 'postgres',
  ];
  await run('pgbench', [...connection, '-i', '-q', '-s', '1', database]);
  const tps: string[] = [];
  for (const clients of [1, 8]) {
    const { stdout } = await run('pgbench', [
      ...connection,
      '-N',
      '-c',
      String(clients),
      '-j',
      String(Math.min(clients, 2)),
      '-T',
      String(seconds),
      database,
    ]);
    const match = /tps = ([\d.]+)/.exec(stdout);
    tps.push(match?.[1] ? Math.round(Number(match[1])).toLocaleString('en-US') : '?');
  }
  return `${tps.join(' / ')} tps`;
};

export type SummaryRow = { what: string; figure: string; target: string; result: string };

export const summary = () => {
  const rows: SummaryRow[] = [];
  return {
    note(what: string, figure: string, target = '', pass?: boolean) {
      rows.push({
        what,
        figure,
        target: target || '—',
        result: pass === undefined ? '—' : pass ? 'pass' : 'MISS',
      });
    },
    print() {
      console.log('\n## Summary\n');
      console.log('| measurement | figure | target | result |');
      console.log('| --- | --- | --- | --- |');
      for (const r of rows) console.log(`| ${r.what} | ${r.figure} | ${r.target} | ${r.result} |`);
    },
  };
};

/** Fresh databases, dropped at the end of the run. */
export const databases = () => {
  const created: BenchDatabase[] = [];
  return {
    async create(): Promise<BenchDatabase> {
      const db = await createBenchDatabase(adminUrl);
      created.push(db);
      return db;
    },
    async dropAll(): Promise<void> {
      for (const db of created)
        await db.drop().catch((error: unknown) => console.error(`drop ${db.name}:`, error));
    },
  };
};

export const adminApiKey = `bench-root-${randomBytes(12).toString('hex')}`;
export const webhookSecretKey = randomBytes(32).toString('base64');

/**
 * The runtime as `npm start` would build it, configured through env only. `env` overrides
 * (WEBHOOK_CONCURRENCY, WEBHOOK_PER_ENDPOINT_IN_FLIGHT, DATABASE_POOL_SIZE, ROLES...) come from
 * the caller, which passes the bench's own process env through.
 */
export const startBenchRuntime = (
  databaseUrl: string,
  env: Record<string, string | undefined>,
): Promise<Runtime> =>
  startRuntime(
    loadConfig({
      NODE_ENV: 'development',
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      ADMIN_API_KEY: adminApiKey,
      LOG_LEVEL: 'warn',
      WEBHOOK_SECRET_KEY: webhookSecretKey,
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
      ...env,
    }),
    { scheduler: false },
  );

/** Tuning knobs passed through from the bench's environment to the runtime's config. */
export const tuningEnv = (): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const key of [
    'WEBHOOK_CONCURRENCY',
    'WEBHOOK_PER_ENDPOINT_IN_FLIGHT',
    'DATABASE_POOL_SIZE',
    'EVENTSTORE_GROUP_COMMIT',
    'EVENTSTORE_GROUP_COMMIT_IN_FLIGHT',
  ]) {
    const value = process.env[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
};

export type ReceiverStats = {
  total: number;
  perServer: number[];
  firstMs: number;
  lastMs: number;
  checked: number;
  badSignatures: number;
  samples: [string, number][];
};

/** The receivers child process (bench/webhooks/receivers.ts). */
export class Receivers {
  readonly #child: ChildProcess;
  #pending: ((message: unknown) => void)[] = [];
  ports: number[] = [];

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (message) => this.#pending.shift()?.(message));
  }

  static async start(count: number): Promise<Receivers> {
    const child = fork(fileURLToPath(new URL('./receivers.ts', import.meta.url)), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const receivers = new Receivers(child);
    const { ports } = (await receivers.#ask({ cmd: 'start', count })) as { ports: number[] };
    receivers.ports = ports;
    return receivers;
  }

  /** CPU seconds used so far by the receivers' process (null where /proc is missing). */
  cpuSeconds(): number | null {
    return this.#child.pid === undefined ? null : processCpu(this.#child.pid);
  }

  urls(): string[] {
    return this.ports.map((port) => `http://127.0.0.1:${port}/hook`);
  }

  async reset(options: { latency: boolean; secrets?: string[] }): Promise<void> {
    await this.#ask({ cmd: 'reset', ...options });
  }

  async stats(): Promise<ReceiverStats> {
    return (await this.#ask({ cmd: 'stats' })) as ReceiverStats;
  }

  async stop(): Promise<void> {
    this.#child.send({ cmd: 'exit' });
    await new Promise((resolve) => this.#child.once('exit', resolve));
  }

  #ask(message: object): Promise<unknown> {
    return new Promise((resolve) => {
      this.#pending.push(resolve);
      this.#child.send(message);
    });
  }
}

/** Runs `n` tasks with at most `concurrency` at once. */
export const pool = async (
  n: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<void> => {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) await task(next++);
    }),
  );
};

/** A command's context as the benches send it: the benchmark key, a fresh correlation id. */
export const benchContext = (programId: string | null) => ({
  programId,
  actor: 'key_benchmark01',
  correlationId: randomUUID(),
  causationId: null,
});

/**
 * A program with no expiry (and no tiers unless given), through the app services, and
 * `memberCount` members (m<i>@example.com, sixteen registered at a time). The member ids come in
 * the order registered.
 */
export const seedProgram = async (
  runtime: Runtime,
  name: string,
  memberCount: number,
  tiers: { name: string; minPoints: number }[] = [],
): Promise<{ programId: string; memberIds: string[] }> => {
  const created = await runtime.incentives.createProgram(
    {
      name,
      tiers,
      tierBasis: 'lifetime',
      pointsExpiryDays: null,
      timezone: 'UTC',
      notificationEmail: 'ops@example.com',
    },
    benchContext(null),
  );
  if (!created.ok) throw new Error(`createProgram: ${created.message}`);
  const first = created.value.events[0]!;
  if (first.type !== 'ProgramCreated') throw new Error('unexpected first event');
  const programId = first.data.programId;
  const memberIds: string[] = [];
  await pool(memberCount, 16, async (i) => {
    const r = await runtime.incentives.registerMember(
      programId,
      { email: `m${i}@example.com`, name: `Member ${i}`, externalId: null, attributes: {} },
      benchContext(programId),
    );
    if (!r.ok) throw new Error(`registerMember: ${r.message}`);
    const e = r.value.events[0]!;
    if (e.type === 'MemberRegistered') memberIds.push(e.data.memberId);
  });
  return { programId, memberIds };
};

/**
 * BENCH_TRACE_SQL=1: times every query of this process by statement shape (bench-side patch of
 * pg.Client.prototype.query; product code untouched). Time is from the driver call to the result,
 * so it includes the server's work and the wire, not the wait for a pool connection.
 */
export const traceSql = () => {
  const stats = new Map<string, { n: number; ms: number }>();
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const text =
      typeof args[0] === 'string' ? args[0] : ((args[0] as { text?: string })?.text ?? '?');
    const shape = text.replace(/\s+/g, ' ').trim().slice(0, 90);
    const t = performance.now();
    const result = original.apply(this, args);
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      void (result as Promise<unknown>).then(
        () => {
          const s = stats.get(shape) ?? { n: 0, ms: 0 };
          s.n++;
          s.ms += performance.now() - t;
          stats.set(shape, s);
        },
        () => {},
      );
    }
    return result;
  };
  return {
    reset: () => stats.clear(),
    print: (perUnit: number, unit: string) => {
      console.log(
        `\n| statement (first 90 chars) | calls per ${unit} | mean ms | ms per ${unit} |\n| --- | --- | --- | --- |`,
      );
      let total = 0;
      for (const [shape, s] of [...stats].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15)) {
        total += s.ms;
        console.log(
          `| ${shape.replace(/\|/g, '/')} | ${(s.n / perUnit).toFixed(2)} | ${(s.ms / s.n).toFixed(2)} | ${(s.ms / perUnit).toFixed(2)} |`,
        );
      }
      console.log(`(top statements: ${(total / perUnit).toFixed(2)} ms of query time per ${unit})`);
    },
  };
};
