import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../../adapters/config.ts';
import { startRuntime, type Runtime } from '../../../adapters/runtime.ts';
import {
  apiClient,
  createMember,
  createProgram,
  expectStatus,
  type Api,
} from '../../support/api.ts';
import { startFaultProxy, type FaultProxy } from '../../support/faultProxy.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  waitFor,
  type TestDatabase,
} from '../../support/postgres.ts';
import { dashboardClient } from '../dashboard/dashboardClient.ts';

/**
 * The service reaches its database through a proxy the test controls: `down()` drops every
 * connection and refuses new ones, as a restart or a failover does, without touching the server
 * the other tests use.
 */
describe('while the database is unreachable', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  let proxy: FaultProxy;
  let runtime: Runtime;
  let api: Api;
  let rootKey: string;
  let programId: string;
  let memberId: string;

  before(async () => {
    database = await createTestDatabase();
    proxy = await startFaultProxy(database.url);
    rootKey = randomBytes(24).toString('base64url');
    runtime = await startRuntime(
      loadConfig({
        DATABASE_URL: proxy.url,
        PORT: '0',
        ADMIN_API_KEY: rootKey,
        LOG_LEVEL: 'silent',
        NODE_ENV: 'test',
      }),
      { scheduler: false },
    );
    api = apiClient(runtime.url!, rootKey);
    programId = (await createProgram(api)).id;
    memberId = (await createMember(api, programId)).id;
  });

  after(async () => {
    proxy.up();
    await runtime.stop();
    await proxy.close();
    await database.drop();
  });

  it('answers 503 database_unavailable with Retry-After, then serves again by itself', async () => {
    proxy.down();
    const award = await api.post(`/v1/programs/${programId}/members/${memberId}/points/award`, {
      points: 10,
      reason: 'during the outage',
    });
    assert.equal(award.status, 503, award.text);
    assert.equal(award.body.error?.code, 'database_unavailable');
    assert.equal(award.headers.get('retry-after'), '1');
    const read = await api.get(`/v1/programs/${programId}/members/${memberId}`);
    assert.equal(read.status, 503, read.text);
    assert.equal(read.body.error?.code, 'database_unavailable');
    const notReady = await api.get('/readyz');
    assert.equal(notReady.status, 503);
    assert.deepEqual(notReady.body, { status: 'not_ready' });
    assert.equal((await api.get('/healthz')).status, 200, 'the process itself is alive');

    proxy.up();
    await waitFor('ready again', async () => (await api.get('/readyz')).status === 200, 10_000);
    const after = expectStatus(
      await api.post<{ new_balance: number }>(
        `/v1/programs/${programId}/members/${memberId}/points/award`,
        { points: 7, reason: 'after the outage' },
      ),
      201,
    );
    assert.equal(after.body.new_balance, 7);
    // The projector's loop came back too: the read model shows the award.
    await waitFor(
      'the read model to catch up',
      async () =>
        (await api.get<{ balance: number }>(`/v1/programs/${programId}/members/${memberId}`)).body
          .balance === 7,
      10_000,
    );
  });

  it('shows the dashboard a plain "temporarily unavailable" page', async () => {
    const client = dashboardClient(runtime.url!);
    assert.equal((await client.signIn(rootKey)).status, 303);
    proxy.down();
    const page = await client.get('/dashboard/programs');
    proxy.up();
    assert.equal(page.status, 503);
    assert.equal(page.headers.get('retry-after'), '1');
    assert.match(page.text, /temporarily unavailable/);
  });
});
