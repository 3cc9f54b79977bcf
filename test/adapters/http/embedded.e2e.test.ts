import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../../adapters/config.ts';
import { startRuntime, type Runtime } from '../../../adapters/runtime.ts';
import { apiClient, type Api } from '../../support/api.ts';
import { waitFor } from '../../support/postgres.ts';
import { startReceiver, type Receiver } from '../../support/receiver.ts';

/**
 * The embedded default (`npm start` without DATABASE_URL): PGlite under a data dir. A smoke run
 * through the API, the projectors, the policy reactor and a webhook, with no PostgreSQL at all;
 * it runs even where the runner found none.
 */
describe('the service on the embedded database (PGlite)', () => {
  const rootKey = 'embedded-root-key-0123456789abcdef';
  let dir: string;
  let runtime: Runtime;
  let api: Api;
  let receiver: Receiver;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'incentable-embedded-'));
    receiver = await startReceiver();
    runtime = await startRuntime(
      loadConfig({
        DATA_DIR: dir,
        PORT: '0',
        ADMIN_API_KEY: rootKey,
        LOG_LEVEL: 'silent',
        NODE_ENV: 'test',
      }),
      { scheduler: false },
    );
    api = apiClient(runtime.url!, rootKey);
  });
  after(async () => {
    await runtime?.stop();
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers, awards, reads its write, changes the tier and delivers the webhook', async () => {
    const program = await api.post<{ id: string }>('/v1/programs', {
      name: 'Embedded',
      tiers: [
        { name: 'Silver', min_points: 0 },
        { name: 'Gold', min_points: 100 },
      ],
      notification_email: 'ops@example.com',
    });
    assert.equal(program.status, 201);
    const p = program.body.id;
    const endpoint = await api.post(`/v1/programs/${p}/webhook-endpoints`, {
      url: receiver.url,
      events: ['points.awarded'],
    });
    assert.equal(endpoint.status, 201);
    const member = await api.post<{ id: string }>(`/v1/programs/${p}/members`, {
      email: 'e@example.com',
      name: 'E',
    });
    const award = await api.post<{ new_balance: number; position: string }>(
      `/v1/programs/${p}/members/${member.body.id}/points/award`,
      { points: 120, reason: 'Embedded' },
    );
    assert.equal(award.status, 201);
    const read = await api.get<{ balance: number }>(
      `/v1/programs/${p}/members/${member.body.id}?after_position=${award.body.position}`,
    );
    assert.equal(read.body.balance, 120);
    await waitFor('the tier policy', async () => {
      const m = await api.get<{ tier: string }>(`/v1/programs/${p}/members/${member.body.id}`);
      return m.body.tier === 'Gold';
    });
    await receiver.waitForCount(1, { timeoutMs: 15_000 });
    const envelope = JSON.parse(receiver.received[0]!.body) as {
      type: string;
      data: { new_balance: number };
    };
    assert.deepEqual([envelope.type, envelope.data.new_balance], ['points.awarded', 120]);
    const refused = await api.post<{ error: { code: string } }>(
      `/v1/programs/${p}/members/${member.body.id}/points/deduct`,
      {
        points: 1000,
        reason: 'Too much',
      },
    );
    assert.deepEqual([refused.status, refused.body.error.code], [422, 'insufficient_points']);
  });
});
