import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../../adapters/config.ts';
import { startTestApp, type TestApp } from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';

const token = 'metrics-scraper-token-0123456789';

describe('/metrics', { skip: skipWithoutPostgres }, () => {
  describe('with METRICS_TOKEN set', () => {
    let app: TestApp;
    before(async () => {
      app = await startTestApp({ env: { METRICS_TOKEN: token } });
    });
    after(async () => {
      await app?.stop();
    });

    it('answers 401 without the bearer token or with another one', async () => {
      for (const headers of <Record<string, string>[]>[
        {},
        { authorization: `Bearer ${token}x` },
        { authorization: `Bearer ${app.rootKey}` },
        { authorization: token },
      ]) {
        const response = await fetch(`${app.url}/metrics`, { headers });
        assert.equal(response.status, 401, JSON.stringify(headers));
        assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="metrics"');
        const body = (await response.json()) as { error: { code: string } };
        assert.equal(body.error.code, 'unauthorized');
      }
    });

    it('serves the metrics with it', async () => {
      const response = await fetch(`${app.url}/metrics`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(response.status, 200);
      assert.match(await response.text(), /incentable_webhook_due_deliveries/);
    });
  });

  it('is open without METRICS_TOKEN (the default)', async () => {
    const app = await startTestApp();
    try {
      const response = await fetch(`${app.url}/metrics`);
      assert.equal(response.status, 200);
    } finally {
      await app.stop();
    }
  });

  it('refuses a METRICS_TOKEN shorter than 16 characters, naming the key and not the value', () => {
    assert.throws(
      () => loadConfig({ METRICS_TOKEN: 'short-secret' }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.message.includes('METRICS_TOKEN') &&
        !error.message.includes('short-secret'),
    );
  });
});
