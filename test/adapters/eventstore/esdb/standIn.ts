import { openDatabase, type DatabaseHandle } from '../../../../adapters/db/database.ts';
import { openEsdbEventStore } from '../../../../adapters/eventstore/esdb/esdbEventStore.ts';
import { startStandIn, type StandIn } from '../../../esdbStandIn/server.ts';
import { createTestDatabase, postgresUrl } from '../../../support/postgres.ts';
import type { StoreFixture } from '../contract.ts';

/**
 * The read-model database an EventStoreDB-backed store needs: a fresh real PostgreSQL database
 * when one is reachable, otherwise an in-memory PGlite.
 */
export const openReadModels = async (): Promise<{
  handle: DatabaseHandle;
  reopen: () => Promise<DatabaseHandle>;
  drop: () => Promise<void>;
}> => {
  if (postgresUrl()) {
    const database = await createTestDatabase();
    const handle = await openDatabase({ kind: 'postgres', url: database.url });
    const others: DatabaseHandle[] = [];
    return {
      handle,
      reopen: async () => {
        const other = await openDatabase({ kind: 'postgres', url: database.url });
        others.push(other);
        return other;
      },
      drop: async () => {
        await handle.close();
        for (const other of others) await other.close();
        await database.drop();
      },
    };
  }
  const handle = await openDatabase({ kind: 'pglite', dataDir: null });
  return { handle, reopen: () => Promise.resolve(handle), drop: () => handle.close() };
};

/** A store fixture over an EventStoreDB at `connectionString` (the stand-in's, or a real one). */
export const esdbFixture = async (
  connectionString: string,
  afterClose: () => Promise<void> = () => Promise.resolve(),
): Promise<StoreFixture> => {
  const readModels = await openReadModels();
  const fast = { initial: 50, max: 1_000 };
  const store = await openEsdbEventStore({
    connectionString,
    readModels: readModels.handle,
    reconnectDelayMs: fast,
  });
  const others: { close: () => Promise<void> }[] = [];
  return {
    store,
    reopen: async () => {
      const other = await openEsdbEventStore({
        connectionString,
        readModels: await readModels.reopen(),
        reconnectDelayMs: fast,
      });
      others.push(other);
      return other;
    },
    close: async () => {
      await store.close();
      for (const other of others) await other.close().catch(() => {});
      await readModels.drop();
      await afterClose();
    },
  };
};

export const standInFixture = async (): Promise<StoreFixture & { standIn: StandIn }> => {
  const standIn = await startStandIn();
  const fixture = await esdbFixture(standIn.connectionString, () => standIn.stop());
  return { ...fixture, standIn };
};
