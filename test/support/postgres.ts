import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * The real PostgreSQL the runner found (test/run.mjs sets INCENTABLE_TEST_PG), or a skip reason.
 * Each test file gets a database of its own, so files can run in parallel.
 */
export const postgresUrl = (): string | null => {
  const url = process.env.INCENTABLE_TEST_PG ?? process.env.TEST_DATABASE_URL ?? null;
  return url && url !== 'none' ? url : null;
};

export const skipWithoutPostgres: string | false = postgresUrl()
  ? false
  : 'needs a real PostgreSQL (none reachable; see the runner banner)';

export type TestDatabase = { url: string; drop: () => Promise<void> };

export const createTestDatabase = async (): Promise<TestDatabase> => {
  const admin = postgresUrl();
  if (!admin) throw new Error('no PostgreSQL for this test');
  const name = `incentable_t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
};

/** Resolves when `check` returns true, polling; fails with `what` after `timeoutMs`. */
export const waitFor = async (
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};
