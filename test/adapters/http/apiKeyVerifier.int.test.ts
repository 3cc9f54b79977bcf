import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { openDatabase, type DatabaseHandle } from '../../../adapters/db/database.ts';
import { createApiKey } from '../../../adapters/db/apiKeyStore.ts';
import { apiKeyVerifier, verifiedKeyCacheMs } from '../../../adapters/db/apiKeyVerifier.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  type TestDatabase,
} from '../../support/postgres.ts';

describe('the API key check', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  let handle: DatabaseHandle;

  before(async () => {
    database = await createTestDatabase();
    handle = await openDatabase({ kind: 'postgres', url: database.url });
  });

  after(async () => {
    await handle?.close();
    await database?.drop();
  });

  /** The row's version: it changes with every write to the row, and only then. */
  const rowVersion = async (keyId: string) =>
    (
      await sql<{ xmin: string }>`select xmin::text from api_keys where key_id = ${keyId}`.execute(
        handle.db,
      )
    ).rows[0]!.xmin;

  it('writes last_used_at at most once a minute, not once per check', async () => {
    const key = await createApiKey(handle.db, { programId: 'prg_a', label: null });
    const uncached = apiKeyVerifier(handle.db, { adminApiKey: null, cacheMs: 0 });
    const before = await rowVersion(key.id);
    assert.equal((await uncached.verify(key.key))?.keyId, key.id);
    const afterFirst = await rowVersion(key.id);
    assert.notEqual(afterFirst, before);
    for (let i = 0; i < 5; i++) await uncached.verify(key.key);
    // A second process checking the same key writes nothing either.
    await apiKeyVerifier(handle.db, { adminApiKey: null, cacheMs: 0 }).verify(key.key);
    assert.equal(await rowVersion(key.id), afterFirst);

    await sql`update api_keys set last_used_at = now() - interval '61 seconds' where key_id = ${key.id}`.execute(
      handle.db,
    );
    const stale = await rowVersion(key.id);
    await uncached.verify(key.key);
    assert.notEqual(await rowVersion(key.id), stale);
    const row = await handle.db
      .selectFrom('api_keys')
      .select(sql<boolean>`last_used_at > now() - interval '5 seconds'`.as('fresh'))
      .where('key_id', '=', key.id)
      .executeTakeFirstOrThrow();
    assert.equal(row.fresh, true);
  });

  it('trusts a verified key for at most 5 s, and forgets a revoked one at once when told', async () => {
    assert.ok(verifiedKeyCacheMs <= 5_000);
    const key = await createApiKey(handle.db, { programId: 'prg_a', label: null });
    const keys = apiKeyVerifier(handle.db, { adminApiKey: null });
    assert.equal((await keys.verify(key.key))?.keyId, key.id);
    await handle.db
      .updateTable('api_keys')
      .set({ revoked_at: new Date().toISOString() })
      .where('key_id', '=', key.id)
      .execute();
    // Revoked in another process: this one has not heard of it yet.
    assert.equal((await keys.verify(key.key))?.keyId, key.id);
    assert.equal(await keys.verify(key.key, { cached: false }), null);
    assert.equal(await keys.verify(key.key), null, 'a failed check drops the cached answer');

    const other = await createApiKey(handle.db, { programId: 'prg_a', label: null });
    assert.ok(await keys.verify(other.key));
    await handle.db
      .updateTable('api_keys')
      .set({ revoked_at: new Date().toISOString() })
      .where('key_id', '=', other.id)
      .execute();
    keys.forget(other.id);
    assert.equal(await keys.verify(other.key), null);
  });

  it('expires a cached answer after cacheMs', async () => {
    const key = await createApiKey(handle.db, { programId: 'prg_a', label: null });
    const keys = apiKeyVerifier(handle.db, { adminApiKey: null, cacheMs: 50 });
    assert.ok(await keys.verify(key.key));
    await handle.db
      .updateTable('api_keys')
      .set({ revoked_at: new Date().toISOString() })
      .where('key_id', '=', key.id)
      .execute();
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal(await keys.verify(key.key), null);
  });

  it('refuses a wrong secret, a token without a key id, and knows the configured admin key', async () => {
    const key = await createApiKey(handle.db, { programId: null, label: null });
    const keys = apiKeyVerifier(handle.db, { adminApiKey: 'configured-admin-key-123' });
    assert.equal(await keys.verify(`${key.id}.wrong-secret-of-some-length`), null);
    assert.equal(await keys.verify('no-dot-in-this-token-at-all'), null);
    assert.deepEqual(await keys.verify(key.key), { kind: 'root', keyId: key.id });
    assert.deepEqual(await keys.verify('configured-admin-key-123'), {
      kind: 'root',
      keyId: 'key_admin',
    });
  });
});
