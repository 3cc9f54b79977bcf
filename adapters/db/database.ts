import { chmodSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';
import { lockDataDir, type DataDirLock } from './dataDirLock.ts';
import { migrations } from './migrations.ts';
import { pgliteDialect } from './pglite.ts';
import type { Database } from './schema.ts';

/** A dedicated session: LISTEN and session-level advisory locks need one connection that stays. */
export type Session = {
  listen: (channel: string, onNotify: () => void) => Promise<void>;
  tryAdvisoryLock: (key: string) => Promise<boolean>;
  close: () => Promise<void>;
};

export type DatabaseHandle = {
  db: Kysely<Database>;
  kind: 'postgres' | 'pglite';
  openSession: () => Promise<Session>;
  close: () => Promise<void>;
};

export type DatabaseOptions =
  { kind: 'postgres'; url: string; poolSize?: number } | { kind: 'pglite'; dataDir: string | null };

/** Opens the database and brings its schema up to date (kysely's Migrator, run on every start). */
export const openDatabase = async (options: DatabaseOptions): Promise<DatabaseHandle> => {
  const handle =
    options.kind === 'postgres' ? openPostgres(options) : await openPglite(options.dataDir);
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

const openPostgres = (options: { url: string; poolSize?: number }): DatabaseHandle => {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 10,
    types: { getTypeParser },
  });
  // An idle client's error (server restart) must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    kind: 'postgres',
    openSession: async () => {
      const client = new pg.Client({ connectionString: options.url });
      client.on('error', () => {});
      await client.connect();
      const listeners = new Map<string, () => void>();
      client.on('notification', (message) => listeners.get(message.channel)?.());
      return {
        listen: async (channel, onNotify) => {
          listeners.set(channel, onNotify);
          await client.query(`listen ${pg.escapeIdentifier(channel)}`);
        },
        tryAdvisoryLock: async (key) => {
          const result = await client.query<{ locked: boolean }>(
            'select pg_try_advisory_lock(hashtextextended($1, 0)) as locked',
            [key],
          );
          return result.rows[0]?.locked === true;
        },
        close: () => client.end(),
      };
    },
    close: () => db.destroy(),
  };
};

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
        listen: async (channel: string, onNotify: () => void) => {
          await pglite.listen(channel, onNotify);
        },
        // The data dir's lock makes this process the only one: there is no one else to exclude.
        tryAdvisoryLock: () => Promise.resolve(true),
        close: () => Promise.resolve(),
      }),
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
