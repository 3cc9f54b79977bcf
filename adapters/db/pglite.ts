import type { PGlite } from '@electric-sql/pglite';
import { PostgresDialect } from 'kysely';

/**
 * Kysely's PostgresDialect over PGlite. PGlite is one in-process connection, so the "pool"
 * hands it out to one holder at a time: a Kysely transaction keeps it until it releases, and no
 * other query can interleave with it.
 */
export const pgliteDialect = (pglite: PGlite): PostgresDialect => {
  let holder: Promise<void> = Promise.resolve();
  const acquire = async (): Promise<() => void> => {
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const previous = holder;
    holder = previous.then(() => next);
    await previous;
    // PGlite answers within the same turn of the event loop: without a yield, a busy queue of
    // queries would starve timers and sockets.
    await new Promise((resolve) => setImmediate(resolve));
    return release;
  };
  const client = (release: () => void) => ({
    query: async (sql: string, parameters: readonly unknown[]) => {
      const result = await pglite.query(sql, parameters as unknown[], { rowMode: 'object' });
      return {
        rows: result.rows,
        rowCount: result.affectedRows ?? 0,
        command: result.command ?? 'SELECT',
      };
    },
    release,
  });
  const pool = {
    connect: async () => client(await acquire()),
    end: async () => {},
  };
  // The shim satisfies the subset of pg.Pool that PostgresDriver calls (connect/query/release/end).
  return new PostgresDialect({
    pool: pool as unknown as ConstructorParameters<typeof PostgresDialect>[0]['pool'],
  });
};
