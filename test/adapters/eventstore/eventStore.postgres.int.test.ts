import { openDatabase } from '../../../adapters/db/database.ts';
import { PostgresEventStore } from '../../../adapters/eventstore/postgresEventStore.ts';
import { createTestDatabase, skipWithoutPostgres } from '../../support/postgres.ts';
import { eventStoreContract } from './contract.ts';

eventStoreContract(
  'PostgreSQL',
  async () => {
    const database = await createTestDatabase();
    const handle = await openDatabase({ kind: 'postgres', url: database.url });
    const store = new PostgresEventStore(handle, { pollIntervalMs: 100 });
    const others: (() => Promise<void>)[] = [];
    return {
      store,
      reopen: async () => {
        const other = await openDatabase({ kind: 'postgres', url: database.url });
        others.push(() => other.close());
        return new PostgresEventStore(other, { pollIntervalMs: 100 });
      },
      close: async () => {
        await store.close();
        await handle.close();
        for (const close of others) await close();
        await database.drop();
      },
    };
  },
  skipWithoutPostgres,
);
