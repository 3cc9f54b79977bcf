import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';
import { lockDataDir, type DataDirLock } from './dataDirLock.ts';
import { migrations } from './migrations.ts';
import { pgliteDialect } from './pglite.ts';
import type { ExclusiveRunner } from '../../application/ports.ts';
import type { Database } from './schema.ts';
import { backoff } from '../backoff.ts';

/** A dedicated session for session-level advisory locks (the scheduled jobs' mutual exclusion). */
export type Session = {
  tryAdvisoryLock: (key: string) => Promise<boolean>;
  close: () => Promise<void>;
};

/**
 * LISTEN on a connection of its own that comes back by itself: when the connection drops (a
 * database restart, a terminated backend) it reconnects with back-off, listens again and calls
 * every handler once, since notifications sent while it was away are lost.
 */
export type Listener = {
  listen: (channel: string, onNotify: () => void) => Promise<void>;
  /** True while the connection is up and listening (for tests and /metrics). */
  connected: () => boolean;
  close: () => Promise<void>;
};

export type DatabaseHandle = {
  db: Kysely<Database>;
  kind: 'postgres' | 'pglite';
  openSession: () => Promise<Session>;
  openListener: () => Listener;
  /**
   * How long the oldest query still waiting for a pooled connection has waited, in ms (0 when
   * none waits; always 0 on PGlite, which has one connection and its own queue).
   */
  queueDelayMs: () => number;
  close: () => Promise<void>;
};

export type DatabaseOptions =
  { kind: 'postgres'; url: string; poolSize?: number } | { kind: 'pglite'; dataDir: string | null };

/**
 * Where connection errors go. They are expected (a restart, a failover) and must never end the
 * process: each is reported here and the work that used the connection fails or retries.
 */
export type DatabaseHooks = { onConnectionError?: (error: unknown, where: string) => void };

/** Opens the database and brings its schema up to date (kysely's Migrator, run on every start). */
export const openDatabase = async (
  options: DatabaseOptions,
  hooks: DatabaseHooks = {},
): Promise<DatabaseHandle> => {
  const handle =
    options.kind === 'postgres' ? openPostgres(options, hooks) : await openPglite(options.dataDir);
  try {
    await migrate(handle.db);
  } catch (error) {
    await handle.close();
    throw error;
  }
  return handle;
};

export const migrate = async (db: Kysely<Database>): Promise<void> => {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(migrations) },
    migrationTableName: 'incentable_migrations',
    migrationLockTableName: 'incentable_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`database migration ${failed} failed`, { cause: error });
  }
};

/**
 * int8 as a JS number, as PGlite returns it. Safe: balances and counts stay below 2^53 by
 * domain rule; event positions, which may not, are always selected as text.
 */
const parseInt8 = (value: string): number => Number(value);
const getTypeParser = ((oid: number, format?: 'text' | 'binary'): unknown =>
  oid === (pg.types.builtins.INT8 as number)
    ? parseInt8
    : (pg.types.getTypeParser(oid, format) as unknown)) as typeof pg.types.getTypeParser;

const openPostgres = (
  options: { url: string; poolSize?: number },
  hooks: DatabaseHooks,
): DatabaseHandle => {
  const report = hooks.onConnectionError ?? (() => {});
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 10,
    types: { getTypeParser },
    // A connect to a database that does not answer fails within this, so requests get a 503
    // instead of queueing behind a dead host; keep-alive finds a half-open socket.
    connectionTimeoutMillis: 5_000,
    keepAlive: true,
  });
  // An idle client's error (server restart) must not crash the process; the next query reconnects.
  pool.on('error', (error) => report(error, 'idle pool connection'));
  // pg-pool drops its own error listener while a client is checked out: a connection cut in the
  // middle of a query would then emit 'error' with no listener, which ends the process. This one
  // stays for the client's life; the query in flight fails with the same error.
  pool.on('connect', (client) => {
    client.on('error', (error) => report(error, 'pool connection'));
  });
  // When each connection request began, oldest first, until it is served: the age of the first
  // says whether the pool keeps up (a long queue that moves fast is fine, a slow one is not).
  const asked: number[] = [];
  const timedPool = {
    connect: async () => {
      const at = performance.now();
      asked.push(at);
      try {
        return await pool.connect();
      } finally {
        asked.splice(asked.indexOf(at), 1);
      }
    },
    end: () => pool.end(),
  };
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: timedPool }) });
  return {
    db,
    kind: 'postgres',
    openSession: async () => {
      const client = new pg.Client({ connectionString: options.url, keepAlive: true });
      client.on('error', (error) => report(error, 'lock session'));
      await client.connect();
      return {
        tryAdvisoryLock: async (key) => {
          const result = await client.query<{ locked: boolean }>(
            'select pg_try_advisory_lock(hashtextextended($1, 0)) as locked',
            [key],
          );
          return result.rows[0]?.locked === true;
        },
        close: () => client.end().catch(() => {}),
      };
    },
    openListener: () => new PgListener(options.url, report),
    queueDelayMs: () => {
      const oldest = asked[0];
      return oldest === undefined ? 0 : performance.now() - oldest;
    },
    close: () => db.destroy(),
  };
};

/** A LISTEN connection that reconnects; see `Listener`. */
class PgListener implements Listener {
  readonly #url: string;
  readonly #report: (error: unknown, where: string) => void;
  readonly #channels = new Map<string, () => void>();
  #client: pg.Client | null = null;
  #connecting: Promise<void> | null = null;
  #retry: NodeJS.Timeout | null = null;
  #failures = 0;
  #closed = false;

  constructor(url: string, report: (error: unknown, where: string) => void) {
    this.#url = url;
    this.#report = report;
  }

  connected(): boolean {
    return this.#client !== null;
  }

  async listen(channel: string, onNotify: () => void): Promise<void> {
    this.#channels.set(channel, onNotify);
    const client = this.#client;
    if (client) await client.query(`listen ${pg.escapeIdentifier(channel)}`);
    else await (this.#connecting ??= this.#connect());
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    await this.#connecting;
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => {});
  }

  /** One attempt; on failure another is scheduled with back-off (50 ms doubling up to 2 s). */
  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url, keepAlive: true });
    let lost = false;
    const onLost = (error?: unknown) => {
      if (lost) return;
      lost = true;
      if (error) this.#report(error, 'listen connection');
      if (this.#client === client) this.#client = null;
      void client.end().catch(() => {});
      this.#scheduleReconnect();
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (message) => this.#channels.get(message.channel)?.());
    try {
      await client.connect();
      for (const channel of this.#channels.keys())
        await client.query(`listen ${pg.escapeIdentifier(channel)}`);
      if (this.#closed || lost) {
        if (!lost) await client.end().catch(() => {});
        return;
      }
      this.#client = client;
      const reconnected = this.#failures > 0;
      this.#failures = 0;
      // Whatever was notified while we were away is lost: every handler looks once.
      if (reconnected) for (const onNotify of this.#channels.values()) onNotify();
    } catch (error) {
      onLost(error);
    } finally {
      this.#connecting = null;
    }
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#retry) return;
    const delayMs = backoff({ attempt: this.#failures++, baseMs: 50, maxMs: 2_000 });
    this.#retry = setTimeout(() => {
      this.#retry = null;
      if (!this.#closed) this.#connecting ??= this.#connect();
    }, delayMs);
  }
}

const openPglite = async (dataDir: string | null): Promise<DatabaseHandle> => {
  let lock: DataDirLock | null = null;
  if (dataDir) {
    // Owner only, as PostgreSQL insists of its data directory: the files hold every member's data.
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    chmodSync(dataDir, 0o700);
    // Before PGlite reads a byte: two processes on one data dir corrupt it.
    lock = lockDataDir(dataDir);
  }
  let pglite;
  try {
    // Loaded only when used: the WASM build costs ~80 MB of memory a Postgres deployment never needs.
    const { PGlite } = await import('@electric-sql/pglite');
    pglite = await PGlite.create(dataDir ?? undefined);
    if (dataDir) restrictToOwner(dataDir);
  } catch (error) {
    lock?.release();
    throw error;
  }
  const db = new Kysely<Database>({ dialect: pgliteDialect(pglite) });
  return {
    db,
    kind: 'pglite',
    openSession: () =>
      Promise.resolve({
        // The data dir's lock makes this process the only one: there is no one else to exclude.
        tryAdvisoryLock: () => Promise.resolve(true),
        close: () => Promise.resolve(),
      }),
    openListener: () => {
      const unsubscribes: (() => Promise<void>)[] = [];
      return {
        listen: async (channel: string, onNotify: () => void) => {
          unsubscribes.push(await pglite.listen(channel, onNotify));
        },
        connected: () => true,
        close: async () => {
          for (const unsubscribe of unsubscribes.splice(0)) await unsubscribe();
        },
      };
    },
    queueDelayMs: () => 0,
    close: async () => {
      try {
        await db.destroy();
        await pglite.close();
      } finally {
        lock?.release();
      }
    },
  };
};

/**
 * Clears the group and other bits of everything under `dir` (symlinks are left alone). PGlite's
 * file system gives the files of a new data dir an explicit chmod to 0666, whatever the umask, so
 * a umask cannot do this; data dirs made before this check still have them. The files PostgreSQL
 * creates later it opens 0600 itself.
 */
const restrictToOwner = (dir: string): void => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isSymbolicLink()) continue;
    const path = join(dir, entry.name);
    const { mode } = lstatSync(path);
    if ((mode & 0o077) !== 0) chmodSync(path, mode & 0o700);
    if (entry.isDirectory()) restrictToOwner(path);
  }
};

/**
 * The application's ExclusiveRunner on this database: a session-level advisory lock on a
 * connection of its own, held for the work and released with the session.
 */
export const exclusiveRunner =
  (database: Pick<DatabaseHandle, 'openSession'>): ExclusiveRunner =>
  async <T>(key: string, work: () => Promise<T>) => {
    const session = await database.openSession();
    try {
      if (!(await session.tryAdvisoryLock(key))) return { ran: false } as const;
      return { ran: true, value: await work() } as const;
    } finally {
      await session.close();
    }
  };
