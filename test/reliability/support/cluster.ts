import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { onProcessEnd } from './cleanup.ts';
import { freePort } from './ports.ts';

const run = promisify(execFile);

/**
 * The PostgreSQL server binaries: PG_BIN when set, else the newest /usr/lib/postgresql/<v>/bin
 * that has initdb (Debian's layout), else null.
 */
const findBinaries = (): string | null => {
  const configured = process.env.PG_BIN;
  if (configured) return existsSync(join(configured, 'initdb')) ? configured : null;
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(base, versions[0], 'bin') : null;
};

/** uid/gid of the postgres OS user, from /etc/passwd; null when there is none. */
const postgresUser = (): { uid: number; gid: number } | null => {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , uid, gid] = line.split(':');
      if (name === 'postgres') return { uid: Number(uid), gid: Number(gid) };
    }
  } catch {
    return null;
  }
  return null;
};

const isRoot = (): boolean => process.getuid?.() === 0;

/**
 * Why this machine cannot give a test its own cluster, or null when it can. initdb refuses to run
 * as root, so as root the cluster is made and run as the postgres OS user.
 */
export const clusterUnavailable = (): string | null => {
  if (!findBinaries()) return 'no PostgreSQL server binaries (initdb) found; set PG_BIN';
  if (isRoot() && !postgresUser()) return 'running as root and there is no postgres OS user';
  return null;
};

/**
 * The `skip` option for a reliability suite: the reason when no cluster can be made, except with
 * CI=true, where a missing cluster must fail the run rather than pass it quietly.
 */
export const skipWithoutCluster = (): string | false => {
  const reason = clusterUnavailable();
  if (!reason) return false;
  if (process.env.CI === 'true')
    throw new Error(`reliability suite cannot run: ${reason} (CI=true: a skip is not a pass)`);
  return `needs its own PostgreSQL cluster: ${reason}`;
};

export type StopMode = 'fast' | 'immediate';

/** Which backends to terminate; every field given must match. */
export type BackendFilter = { database?: string; applicationName?: string; clientPort?: number };

/** A PostgreSQL cluster this test owns: its own data dir, port and postmaster. */
export type Cluster = {
  port: number;
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url: (database: string) => string;
  createDatabase: (name: string) => Promise<string>;
  /** pg_ctl stop: `fast` is a clean shutdown, `immediate` a crash (recovery at the next start). */
  stop: (mode?: StopMode) => Promise<void>;
  /** pg_ctl start, waiting until it accepts connections. */
  start: () => Promise<void>;
  running: () => boolean;
  /** pg_terminate_backend for every backend matching `filter`; returns how many it ended. */
  terminateBackends: (filter: BackendFilter) => Promise<number>;
  /** One query on a fresh connection (a restart would kill a kept one). */
  query: <R extends pg.QueryResultRow>(
    database: string,
    text: string,
    values?: unknown[],
  ) => Promise<R[]>;
  /** The server log's last `chars` characters, for failure messages. */
  logTail: (chars?: number) => string;
  /** Stops the server (immediate) and removes its folder. */
  remove: () => Promise<void>;
};

/**
 * initdb into a fresh temporary folder (owned by postgres when we are root), trust auth, TCP on
 * 127.0.0.1 only (no Unix socket), then pg_ctl start. The machine's own server is never touched:
 * every pg_ctl call names this cluster's data dir. A process end that skips `remove` (an exit, a
 * cancelled run) still stops the server, so no postmaster outlives the test.
 */
export const createCluster = async (): Promise<Cluster> => {
  const bin = findBinaries();
  if (!bin) throw new Error('no PostgreSQL server binaries found');
  const owner = isRoot() ? postgresUser() : null;
  const root = mkdtempSync(join(tmpdir(), 'incentable-pg-'));
  if (owner) chownSync(root, owner.uid, owner.gid);
  const data = join(root, 'data');
  const log = join(root, 'server.log');
  const port = await freePort();
  let up = false;

  const command = (tool: string, args: string[]): [string, string[]] =>
    owner
      ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]]
      : [join(bin, tool), args];
  const exec = async (tool: string, args: string[]) => {
    const [file, argv] = command(tool, args);
    try {
      await run(file, argv, { timeout: 90_000 });
    } catch (error) {
      const e = error as { stderr?: string; stdout?: string; message: string };
      throw new Error(
        `${tool} ${args.join(' ')} failed: ${e.stderr ?? ''}${e.stdout ?? ''}\n${logTail(2000)}`,
        { cause: error },
      );
    }
  };
  const logTail = (chars = 4000): string => {
    try {
      return readFileSync(log, 'utf8').slice(-chars);
    } catch {
      return '(no server log)';
    }
  };

  await exec('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
  // Options on the command line (-o) win over postgresql.conf and need no file written as postgres.
  const serverOptions = [
    `-c port=${port}`,
    `-c listen_addresses=127.0.0.1`,
    `-c unix_socket_directories=''`,
    '-c max_connections=200',
  ].join(' ');
  const start = async () => {
    await exec('pg_ctl', ['-D', data, '-l', log, '-o', serverOptions, '-w', '-t', '60', 'start']);
    up = true;
  };
  const stop = async (mode: StopMode = 'fast') => {
    await exec('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
    up = false;
  };
  const stopNow = () => {
    if (!up) return;
    const [file, argv] = command('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    spawnSync(file, argv, { stdio: 'ignore', timeout: 30_000 });
    up = false;
  };
  const unregister = onProcessEnd(() => {
    stopNow();
    rmSync(root, { recursive: true, force: true });
  });
  await start();

  const url = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
  const query = async <R extends pg.QueryResultRow>(
    database: string,
    text: string,
    values: unknown[] = [],
  ): Promise<R[]> => {
    const client = new pg.Client({
      connectionString: url(database),
      connectionTimeoutMillis: 5000,
    });
    client.on('error', () => {});
    await client.connect();
    try {
      return (await client.query<R>(text, values)).rows;
    } finally {
      await client.end().catch(() => {});
    }
  };

  return {
    port,
    url,
    createDatabase: async (name) => {
      await query('postgres', `create database ${pg.escapeIdentifier(name)}`);
      return url(name);
    },
    stop,
    start,
    running: () => up,
    terminateBackends: async (filter) => {
      const rows = await query<{ n: number }>(
        'postgres',
        `select count(*) filter (where pg_terminate_backend(pid))::int as n from pg_stat_activity
         where pid <> pg_backend_pid() and backend_type = 'client backend'
           and ($1::text is null or datname = $1)
           and ($2::text is null or application_name = $2)
           and ($3::int is null or client_port = $3)`,
        [filter.database ?? null, filter.applicationName ?? null, filter.clientPort ?? null],
      );
      return rows[0]?.n ?? 0;
    },
    query,
    logTail,
    remove: async () => {
      unregister();
      if (up) await stop('immediate').catch(() => stopNow());
      rmSync(root, { recursive: true, force: true });
    },
  };
};
