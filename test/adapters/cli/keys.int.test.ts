import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { openDatabase, type DatabaseHandle } from '../../../adapters/db/database.ts';
import { createApiKey, ensureRootKey } from '../../../adapters/db/apiKeyStore.ts';
import { apiKeyVerifier } from '../../../adapters/db/apiKeyVerifier.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  type TestDatabase,
} from '../../support/postgres.ts';

const root = new URL('../../../', import.meta.url).pathname;

/** The real CLI in a child process: `npx incentable …` against the test database. */
const cli = (url: string, args: string[]) => {
  const result = spawnSync(process.execPath, ['bin/incentable.js', ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'silent' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
};

type Listed = {
  id: string;
  label: string | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
};

describe('root keys through the CLI', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  let handle: DatabaseHandle;
  let generatedId: string;

  const listed = (url: string): Listed[] => {
    const run = cli(url, ['keys', 'list', '--json']);
    assert.equal(run.status, 0, run.stderr);
    return run.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Listed);
  };

  const activeRootKeys = async () =>
    (
      await handle.db
        .selectFrom('api_keys')
        .select('key_id')
        .where('program_id', 'is', null)
        .where('revoked_at', 'is', null)
        .execute()
    ).map((r) => r.key_id);

  before(async () => {
    database = await createTestDatabase();
    handle = await openDatabase({ kind: 'postgres', url: database.url });
    // The first start, without ADMIN_API_KEY.
    const generated = await ensureRootKey(handle.db, null);
    generatedId = generated!.split('.')[0]!;
    await createApiKey(handle.db, { programId: 'prg_someprogram', label: 'a program key' });
  });

  after(async () => {
    await handle?.close();
    await database?.drop();
  });

  it('lists the root keys only, never a secret', async () => {
    const keys = listed(database.url);
    assert.deepEqual(
      keys.map((k) => [k.id, k.label, k.revoked_at]),
      [[generatedId, 'root (generated on first start)', null]],
    );
    const text = cli(database.url, ['keys', 'list']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`${generatedId}\\s.*active`));
    const hash = await handle.db.selectFrom('api_keys').select('secret_sha256').execute();
    for (const { secret_sha256 } of hash) assert.ok(!text.stdout.includes(secret_sha256));
  });

  it('refuses to revoke the last active root key, and says why', async () => {
    const run = cli(database.url, ['keys', 'revoke', generatedId]);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /last active root key/);
    assert.match(run.stderr, /keys create/);
    assert.equal((await activeRootKeys()).length, 1);
  });

  it('creates a root key, printed once, that the API accepts', async () => {
    const run = cli(database.url, ['keys', 'create', '--label', 'ops laptop']);
    assert.equal(run.status, 0, run.stderr);
    const key = /(key_[a-z0-9]+\.[\w-]+)/.exec(run.stdout)?.[1];
    assert.ok(key, run.stdout);
    const principal = await apiKeyVerifier(handle.db, { adminApiKey: null }).verify(key);
    assert.deepEqual(principal, { kind: 'root', keyId: key.split('.')[0] });
    const keys = listed(database.url);
    assert.deepEqual(
      keys.map((k) => k.label),
      ['root (generated on first start)', 'ops laptop'],
    );
    assert.ok(!JSON.stringify(keys).includes(key.split('.')[1]!));
  });

  it('needs a label to create one', () => {
    const run = cli(database.url, ['keys', 'create']);
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /--label/);
  });

  it('revokes the generated key once another exists, and again is a no-op', async () => {
    const run = cli(database.url, ['keys', 'revoke', generatedId]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /Revoked root key/);
    const again = cli(database.url, ['keys', 'revoke', generatedId]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /already revoked/);
    const active = await activeRootKeys();
    assert.equal(active.length, 1);
    assert.notEqual(active[0], generatedId);
    // The remaining one is now the last.
    const refused = cli(database.url, ['keys', 'revoke', active[0]!]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /last active root key/);
    assert.deepEqual(await activeRootKeys(), active);
  });

  it('refuses an unknown key, a program key and a malformed id', async () => {
    const unknown = cli(database.url, ['keys', 'revoke', 'key_doesnotexist']);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no key key_doesnotexist/);
    const programKey = await handle.db
      .selectFrom('api_keys')
      .select('key_id')
      .where('program_id', '=', 'prg_someprogram')
      .executeTakeFirstOrThrow();
    const scoped = cli(database.url, ['keys', 'revoke', programKey.key_id]);
    assert.equal(scoped.status, 1);
    assert.match(scoped.stderr, /program key of prg_someprogram/);
    const malformed = cli(database.url, ['keys', 'revoke', 'not-a-key']);
    assert.notEqual(malformed.status, 0);
    assert.match(malformed.stderr, /not a key id/);
  });
});
