import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { loadConfig } from '../../../adapters/config.ts';
import { DataDirLockedError } from '../../../adapters/db/dataDirLock.ts';
import { openDatabase } from '../../../adapters/db/database.ts';
import { startRuntime } from '../../../adapters/runtime.ts';
import { createTestDatabase, skipWithoutPostgres } from '../../support/postgres.ts';

/**
 * The first few paths under `dir` (itself included) whose mode is not `fileMode` / `dirMode`,
 * each with its mode: a data dir has ~1,000 files, and a failure need not list them all.
 */
const looserThan = (dir: string, fileMode: number, dirMode: number): string[] => {
  const found: string[] = [];
  const visit = (path: string) => {
    const stat = lstatSync(path);
    const mode = stat.mode & 0o777;
    const wanted = stat.isDirectory() ? dirMode : fileMode;
    if (mode !== wanted) found.push(`${path} ${mode.toString(8)}`);
    if (stat.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(dir);
  return found.slice(0, 10);
};

const countFiles = (dir: string): number =>
  readdirSync(dir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile())
    .length;

describe('the embedded database on a data directory', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'incentable-datadir-'));
  });
  after(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('refuses a second open while the first is open, and opens again once it is closed', async () => {
    const dataDir = join(root, 'twice');
    const first = await openDatabase({ kind: 'pglite', dataDir });
    try {
      // A second handle that did open is closed again, or this file would never end.
      const second = await openDatabase({ kind: 'pglite', dataDir }).then(
        async (handle) => {
          await handle.close();
          return 'opened';
        },
        (error: unknown) => error,
      );
      assert.ok(
        second instanceof DataDirLockedError && second.pid === process.pid,
        `the second open: ${String(second)}`,
      );
      await sql`select 1`.execute(first.db);
    } finally {
      await first.close();
    }
    const again = await openDatabase({ kind: 'pglite', dataDir });
    await again.close();
  });

  it('keeps the data dir 0700 and every file in it 0600, the webhook key included', async () => {
    const dataDir = join(root, 'fresh', 'data');
    const runtime = await startRuntime(
      loadConfig({ DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'silent', NODE_ENV: 'test' }),
      { scheduler: false, listen: false },
    );
    try {
      // Tables, an index and WAL the service's own work would take a while to make.
      await sql`create table bulk (id int, body text)`.execute(runtime.database.db);
      await sql`insert into bulk select g, repeat('x', 200) from generate_series(1, 20000) g`.execute(
        runtime.database.db,
      );
      await sql`create index on bulk (id)`.execute(runtime.database.db);
      await sql`checkpoint`.execute(runtime.database.db);
      assert.ok(lstatSync(join(dataDir, 'webhook-secret.key')).isFile());
      assert.ok(countFiles(dataDir) > 900, 'PGlite wrote its files');
      assert.deepEqual(looserThan(dataDir, 0o600, 0o700), [], 'while open');
    } finally {
      await runtime.stop();
    }
    assert.deepEqual(looserThan(dataDir, 0o600, 0o700), [], 'after close');
    assert.deepEqual(looserThan(join(root, 'fresh'), 0o600, 0o700), [], 'the parent it created');
  });

  it('takes group and other access away from the files an earlier version left open', async () => {
    const dataDir = join(root, 'earlier');
    await (await openDatabase({ kind: 'pglite', dataDir })).close();
    chmodSync(dataDir, 0o755);
    chmodSync(join(dataDir, 'base'), 0o755);
    chmodSync(join(dataDir, 'PG_VERSION'), 0o666);
    chmodSync(join(dataDir, 'global', 'pg_control'), 0o644);
    const handle = await openDatabase({ kind: 'pglite', dataDir });
    await handle.close();
    assert.deepEqual(looserThan(dataDir, 0o600, 0o700), []);
  });

  it(
    'keeps the development webhook and checkpoint keys 0600 in a 0700 DATA_DIR on PostgreSQL too',
    { skip: skipWithoutPostgres },
    async () => {
      const database = await createTestDatabase();
      const dataDir = join(root, 'keyOnly', 'data');
      try {
        const runtime = await startRuntime(
          loadConfig({
            DATABASE_URL: database.url,
            DATA_DIR: dataDir,
            PORT: '0',
            LOG_LEVEL: 'silent',
            NODE_ENV: 'test',
          }),
          { scheduler: false, listen: false },
        );
        await runtime.stop();
      } finally {
        await database.drop();
      }
      assert.deepEqual(readdirSync(dataDir).sort(), ['audit-signing.key', 'webhook-secret.key']);
      assert.deepEqual(looserThan(join(root, 'keyOnly'), 0o600, 0o700), []);
    },
  );
});
