import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../../adapters/config.ts';
import { startRuntime, type Runtime } from '../../../adapters/runtime.ts';
import {
  apiClient,
  createProgram,
  expectStatus,
  startTestApp,
  type Api,
  type ApiResponse,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';

type KeyView = {
  id: string;
  label: string | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
};

const assertError = (response: ApiResponse<unknown>, status: number, code: string): void => {
  assert.equal(response.status, status, response.text);
  assert.equal(response.body.error?.code, code, response.text);
};

describe('API keys have a life cycle', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let programId: string;
  let otherProgramId: string;

  const issue = async (program: string, label?: string) =>
    expectStatus(
      await app.api.post<{ id: string; key: string }>(
        `/v1/programs/${program}/api-keys`,
        label === undefined ? {} : { label },
      ),
      201,
    ).body;
  const keysOf = async (api: Api, program: string) =>
    expectStatus(await api.get<{ data: KeyView[] }>(`/v1/programs/${program}/api-keys`), 200).body
      .data;

  before(async () => {
    app = await startTestApp();
    programId = (await createProgram(app.api)).id;
    otherProgramId = (await createProgram(app.api)).id;
  });

  after(async () => {
    await app?.stop();
  });

  describe('listing', () => {
    it("lists the program's keys with their dates, never a secret or its hash", async () => {
      const crm = await issue(programId, 'crm backend');
      const plain = await issue(programId);
      await issue(otherProgramId, 'someone else');
      const response = expectStatus(
        await app.api.get<{ data: KeyView[] }>(`/v1/programs/${programId}/api-keys`),
        200,
      );
      const listed = response.body.data.filter((k) => k.id === crm.id || k.id === plain.id);
      assert.equal(listed.length, 2);
      for (const key of response.body.data)
        assert.deepEqual(Object.keys(key).sort(), [
          'created_at',
          'id',
          'label',
          'last_used_at',
          'revoked_at',
        ]);
      assert.deepEqual(
        listed.map((k) => [k.id, k.label, k.revoked_at]),
        [
          [crm.id, 'crm backend', null],
          [plain.id, null, null],
        ],
      );
      const hashes = await app.runtime.database.db
        .selectFrom('api_keys')
        .select('secret_sha256')
        .execute();
      for (const { secret_sha256 } of hashes) assert.ok(!response.text.includes(secret_sha256));
      for (const key of [crm.key, plain.key])
        assert.ok(!response.text.includes(key.split('.')[1]!));
      assert.ok(!response.body.data.some((k) => k.label === 'someone else'));
    });

    it('records when a key was last used', async () => {
      const key = await issue(programId, 'used');
      assert.equal(
        (await keysOf(app.api, programId)).find((k) => k.id === key.id)?.last_used_at,
        null,
      );
      expectStatus(await apiClient(app.url, key.key).get(`/v1/programs/${programId}`), 200);
      const used = (await keysOf(app.api, programId)).find((k) => k.id === key.id)!;
      assert.ok(used.last_used_at !== null);
      assert.ok(Date.parse(used.last_used_at) >= Date.parse(used.created_at));
    });

    it("lets a program key see its own program's keys and no other's", async () => {
      const own = await issue(programId, 'own');
      const scoped = apiClient(app.url, own.key);
      assert.ok((await keysOf(scoped, programId)).some((k) => k.id === own.id));
      assertError(await scoped.get(`/v1/programs/${otherProgramId}/api-keys`), 403, 'forbidden');
    });
  });

  describe('revoking', () => {
    it('answers 204, and the key gets 401 invalid_api_key on its next request', async () => {
      const key = await issue(programId, 'to revoke');
      const client = apiClient(app.url, key.key);
      expectStatus(await client.get(`/v1/programs/${programId}`), 200);
      const revoked = await app.api.request(
        'DELETE',
        `/v1/programs/${programId}/api-keys/${key.id}`,
      );
      assert.equal(revoked.status, 204, revoked.text);
      assert.equal(revoked.text, '');
      assertError(await client.get(`/v1/programs/${programId}`), 401, 'invalid_api_key');
      const listed = (await keysOf(app.api, programId)).find((k) => k.id === key.id)!;
      assert.ok(listed.revoked_at !== null);
    });

    it('is idempotent: a revoked key answers 204 again and keeps its first revocation time', async () => {
      const key = await issue(programId);
      const path = `/v1/programs/${programId}/api-keys/${key.id}`;
      assert.equal((await app.api.request('DELETE', path)).status, 204);
      const first = (await keysOf(app.api, programId)).find((k) => k.id === key.id)!.revoked_at;
      assert.equal((await app.api.request('DELETE', path)).status, 204);
      const again = (await keysOf(app.api, programId)).find((k) => k.id === key.id)!.revoked_at;
      assert.equal(again, first);
    });

    it("answers 404 for an unknown key, another program's key or a root key, 400 for a malformed id", async () => {
      const other = await issue(otherProgramId);
      const root = await app.runtime.database.db
        .insertInto('api_keys')
        .values({
          key_id: 'key_rootforthistest',
          program_id: null,
          secret_sha256: 'x',
          label: null,
        })
        .returning('key_id')
        .executeTakeFirstOrThrow();
      for (const id of ['key_doesnotexist', other.id, root.key_id])
        assertError(
          await app.api.request('DELETE', `/v1/programs/${programId}/api-keys/${id}`),
          404,
          'api_key_not_found',
        );
      assertError(
        await app.api.request('DELETE', `/v1/programs/${programId}/api-keys/not-a-key`),
        400,
        'validation_error',
      );
      const untouched = (await keysOf(app.api, otherProgramId)).find((k) => k.id === other.id)!;
      assert.equal(untouched.revoked_at, null);
    });

    it("lets a program key revoke its own program's keys, itself included, and no other's", async () => {
      const sibling = await issue(programId, 'sibling');
      const self = await issue(programId, 'self');
      const foreign = await issue(otherProgramId, 'foreign');
      const scoped = apiClient(app.url, self.key);
      assertError(
        await scoped.request('DELETE', `/v1/programs/${otherProgramId}/api-keys/${foreign.id}`),
        403,
        'forbidden',
      );
      assert.equal(
        (await scoped.request('DELETE', `/v1/programs/${programId}/api-keys/${sibling.id}`)).status,
        204,
      );
      assertError(
        await apiClient(app.url, sibling.key).get(`/v1/programs/${programId}`),
        401,
        'invalid_api_key',
      );
      assert.equal(
        (await scoped.request('DELETE', `/v1/programs/${programId}/api-keys/${self.id}`)).status,
        204,
      );
      assertError(await scoped.get(`/v1/programs/${programId}`), 401, 'invalid_api_key');
    });
  });

  describe('across processes', () => {
    let second: Runtime;
    before(async () => {
      second = await startRuntime(
        loadConfig({
          DATABASE_URL: app.database.url,
          PORT: '0',
          ADMIN_API_KEY: app.rootKey,
          LOG_LEVEL: 'silent',
          NODE_ENV: 'test',
          ROLES: 'api',
        }),
        { scheduler: false },
      );
    });
    after(async () => {
      await second?.stop();
    });

    it('a key revoked through one process gets 401 from another within 5 s', async () => {
      const key = await issue(programId, 'two processes');
      const elsewhere = apiClient(second.url!, key.key);
      // The other process has verified the key, so it holds it in its cache.
      expectStatus(await elsewhere.get(`/v1/programs/${programId}`), 200);
      expectStatus(await elsewhere.get(`/v1/programs/${programId}`), 200);
      const revoked = await app.api.request(
        'DELETE',
        `/v1/programs/${programId}/api-keys/${key.id}`,
      );
      assert.equal(revoked.status, 204);
      const revokedAt = Date.now();
      let status = 0;
      while (Date.now() - revokedAt < 8_000) {
        const response = await elsewhere.get(`/v1/programs/${programId}`);
        status = response.status;
        if (status === 401) {
          assert.equal(response.body.error?.code, 'invalid_api_key');
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const elapsedMs = Date.now() - revokedAt;
      assert.equal(status, 401, 'the other process still accepts the revoked key');
      assert.ok(elapsedMs <= 5_300, `the other process accepted it for ${elapsedMs} ms`);
    });
  });
});
