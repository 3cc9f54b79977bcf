import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startTestApp } from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';

describe('health endpoints', { skip: skipWithoutPostgres }, () => {
  // While the database is away, see databaseOutage.e2e.test.ts: a real outage, not a pool closed
  // under the service's running loops (which then touched a destroyed pool after the test ended).
  it('answers /healthz and /readyz while the database answers', async () => {
    const app = await startTestApp();
    try {
      assert.equal((await fetch(`${app.url}/healthz`)).status, 200);
      const ready = await fetch(`${app.url}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(await ready.json(), { status: 'ready' });
    } finally {
      await app.stop();
    }
  });
});
