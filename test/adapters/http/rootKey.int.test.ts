import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ensureRootKey } from '../../../adapters/db/apiKeyStore.ts';
import { openDatabase, type DatabaseHandle } from '../../../adapters/db/database.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  type TestDatabase,
} from '../../support/postgres.ts';

const starts = 8;

describe('the first-start root key', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  const handles: DatabaseHandle[] = [];

  before(async () => {
    database = await createTestDatabase();
    // One pool each: eight processes starting at once on an empty database.
    for (let i = 0; i < starts; i++)
      handles.push(await openDatabase({ kind: 'postgres', url: database.url, poolSize: 2 }));
  });

  after(async () => {
    for (const handle of handles) await handle.close();
    await database?.drop();
  });

  it('is made exactly once when several first starts race', async () => {
    const db = handles[0]!.db;
    // Several rounds: one lucky interleaving would prove nothing.
    for (let round = 0; round < 5; round++) {
      await db.deleteFrom('api_keys').execute();
      const generated = await Promise.all(handles.map((h) => ensureRootKey(h.db, null)));
      const rows = await db
        .selectFrom('api_keys')
        .select('key_id')
        .where('program_id', 'is', null)
        .execute();
      assert.equal(rows.length, 1, `round ${round}: ${rows.length} root keys`);
      const printed = generated.filter((key) => key !== null);
      assert.equal(printed.length, 1, `round ${round}: ${printed.length} starts printed a key`);
      assert.ok(printed[0]!.startsWith(`${rows[0]!.key_id}.`));
    }
  });

  it('is not made when one is active, nor when ADMIN_API_KEY is configured', async () => {
    const db = handles[0]!.db;
    await db.deleteFrom('api_keys').execute();
    assert.equal(await ensureRootKey(db, 'a-configured-admin-key'), null);
    assert.equal((await db.selectFrom('api_keys').select('key_id').execute()).length, 0);
    assert.notEqual(await ensureRootKey(db, null), null);
    assert.equal(await ensureRootKey(db, null), null);
  });
});
