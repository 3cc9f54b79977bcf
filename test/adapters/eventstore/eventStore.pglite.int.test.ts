import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../../adapters/db/database.ts';
import { PostgresEventStore } from '../../../adapters/eventstore/postgresEventStore.ts';
import { eventStoreContract } from './contract.ts';

eventStoreContract('PGlite (embedded, file-backed)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'incentable-pglite-'));
  const handle = await openDatabase({ kind: 'pglite', dataDir: join(dir, 'data') });
  const store = new PostgresEventStore(handle, { pollIntervalMs: 100 });
  return {
    store,
    // One process owns an embedded database; a restart is a new store over the same handle.
    reopen: () => Promise.resolve(new PostgresEventStore(handle, { pollIntervalMs: 100 })),
    close: async () => {
      await store.close();
      await handle.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
