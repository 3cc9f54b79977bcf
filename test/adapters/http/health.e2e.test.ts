import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startTestApp } from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';

describe('health endpoints', { skip: skipWithoutPostgres }, () => {
  it('answers /healthz always, and /readyz only while the database answers', async () => {
    const app = await startTestApp();
    try {
      assert.equal((await fetch(`${app.url}/healthz`)).status, 200);
      const ready = await fetch(`${app.url}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(await ready.json(), { status: 'ready' });
      // The service's database connections go away under it.
      await app.runtime.database.close();
      const down = await fetch(`${app.url}/readyz`);
      assert.equal(down.status, 503);
      assert.deepEqual(await down.json(), { status: 'not_ready' });
      assert.equal((await fetch(`${app.url}/healthz`)).status, 200);
    } finally {
      await app.runtime.stop().catch(() => {});
      await app.database.drop();
    }
  });
});
