import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createProgram, startTestApp, type ApiResponse, type TestApp } from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';
import { dashboardClient } from '../dashboard/dashboardClient.ts';

const badKey = () => `key_${'b'.repeat(20)}.${randomBytes(32).toString('base64url')}`;

const assertThrottled = (response: ApiResponse<unknown>, retryAfterS: number) => {
  assert.equal(response.status, 429, response.text);
  assert.equal(response.body.error?.code, 'too_many_attempts');
  assert.equal(response.headers.get('retry-after'), String(retryAfterS));
};

describe('throttling failed authentication', { skip: skipWithoutPostgres }, () => {
  // The app's clock is frozen: only `advance` moves the throttle's windows.
  let app: TestApp;
  let path: string;

  before(async () => {
    app = await startTestApp();
    path = `/v1/programs/${(await createProgram(app.api)).id}`;
  });

  after(async () => {
    await app?.stop();
  });

  it('answers 429 with Retry-After after 10 bad keys from one address, doubling, reset by a success', async () => {
    for (let i = 0; i < 10; i++) {
      const response = await app.api.get(path, { key: badKey() });
      assert.equal(response.status, 401, `attempt ${i + 1}: ${response.text}`);
      assert.equal(response.body.error?.code, 'invalid_api_key');
    }
    assertThrottled(await app.api.get(path, { key: badKey() }), 1);
    // No key is checked while the address waits, the right one included.
    assertThrottled(await app.api.get(path), 1);

    app.clock.advance(1_000);
    assert.equal((await app.api.get(path, { key: badKey() })).status, 401);
    assertThrottled(await app.api.get(path, { key: badKey() }), 2);
    app.clock.advance(2_000);
    assert.equal((await app.api.get(path, { key: badKey() })).status, 401);
    assertThrottled(await app.api.get(path), 4);

    app.clock.advance(4_000);
    assert.equal((await app.api.get(path)).status, 200);
    for (let i = 0; i < 9; i++)
      assert.equal((await app.api.get(path, { key: badKey() })).status, 401);
    assert.equal((await app.api.get(path)).status, 200);
  });

  it('counts failed dashboard sign-ins with the API, and answers them 429 too', async () => {
    app.clock.advance(10 * 60_000);
    const client = dashboardClient(app.url);
    for (let i = 0; i < 10; i++) {
      const response = await client.signIn(badKey());
      assert.equal(response.status, 401, `sign-in ${i + 1}`);
    }
    const refused = await client.signIn(app.rootKey);
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.match(refused.text, /Too many failed sign-ins/);
    assertThrottled(await app.api.get(path), 1);

    app.clock.advance(1_000);
    const signedIn = await client.signIn(app.rootKey);
    assert.equal(signedIn.status, 303);
    assert.equal((await app.api.get(path, { key: badKey() })).status, 401);
  });
});
