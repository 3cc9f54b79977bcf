import pg from 'pg';
import { Conflict } from './support.ts';

/**
 * Emmett's PostgreSQL event store over a pg.Pool we size and end ourselves. Imported lazily:
 * dumbo (under Emmett) replaces pg's global int8/jsonb type parsers when its pool is created,
 * which would change what every later pg query in this process parses into.
 */
export type EmmettBench = {
  /** Appends; resolves to the stream's next expected version. Throws Conflict on a version clash. */
  append: (
    stream: string,
    events: readonly {
      type: string;
      data: Record<string, unknown>;
      metadata: Record<string, unknown>;
    }[],
    expected: bigint | 'none' | 'new',
  ) => Promise<bigint>;
  close: () => Promise<void>;
};

export const openEmmett = async (url: string, poolSize: number): Promise<EmmettBench> => {
  const { getPostgreSQLEventStore } = await import('@event-driven-io/emmett-postgresql');
  const { isExpectedVersionConflictError } = await import('@event-driven-io/emmett');
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  pool.on('error', () => {});
  const store = getPostgreSQLEventStore(url, { connectionOptions: { pool } });
  // 0.42 creates its schema lazily on the first append; do it now, outside the measurement.
  await store.schema.migrate();
  return {
    append: async (stream, events, expected) => {
      try {
        const result = await store.appendToStream(
          stream,
          events.map((e) => ({ type: e.type, data: e.data, metadata: e.metadata })),
          // Emmett's "no stream" is version 0n: expecting 0n inserts the stream row, a clash hits its key.
          expected === 'none' ? {} : { expectedStreamVersion: expected === 'new' ? 0n : expected },
        );
        return result.nextExpectedStreamVersion;
      } catch (error) {
        if (isExpectedVersionConflictError(error)) throw new Conflict();
        throw error;
      }
    },
    close: async () => {
      await store.close();
      await pool.end().catch(() => {});
    },
  };
};
