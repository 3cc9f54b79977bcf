import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { webhookEventTypes } from '../../../delivery/catalogue.ts';
import {
  award,
  createMember,
  createProgram,
  expectStatus,
  settle,
  startTestApp,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';
import { dashboardClient, type DashboardClient } from './dashboardClient.ts';

/** Signs in with the root key and switches to `programId` (two programs exist). */
const signInAsRoot = async (client: DashboardClient, programId: string) => {
  const signIn = await client.signIn(app.rootKey);
  assert.equal(signIn.status, 303);
  await client.get('/dashboard/programs');
  const switched = await client.post('/dashboard/program', {
    _csrf: client.csrf(),
    program_id: programId,
  });
  assert.equal(switched.location, '/dashboard/overview');
};

const hostile = `<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">`;

let app: TestApp;

describe('admin dashboard over HTTP', { skip: skipWithoutPostgres }, () => {
  let programId: string;
  let otherProgramId: string;
  let programKey: string;

  before(async () => {
    app = await startTestApp();
    programId = (await createProgram(app.api, { name: 'Acme Rewards' })).id;
    otherProgramId = (await createProgram(app.api, { name: 'Other Program' })).id;
    const key = expectStatus(
      await app.api.post<{ key: string }>(`/v1/programs/${programId}/api-keys`, { label: 'ops' }),
      201,
    );
    programKey = key.body.key;
    const member = await createMember(app.api, programId, { name: hostile });
    await award(app.api, programId, member.id, 700);
    // A mistaken award, reversed: it counts as nothing awarded.
    const mistake = await award(app.api, programId, member.id, 400);
    expectStatus(
      await app.api.post(
        `/v1/programs/${programId}/transactions/${mistake.transaction_id}/reverse`,
        {
          reason: 'Entered in error',
        },
      ),
      201,
    );
  });

  after(async () => {
    await app?.stop();
  });

  describe('signing in', () => {
    it('sends a visitor without a session to the sign-in page', async () => {
      const response = await dashboardClient(app.url).get('/dashboard/overview');
      assert.equal(response.status, 303);
      assert.equal(response.location, '/dashboard/sign-in?next=%2Fdashboard%2Foverview');
    });

    it('returns to the page it was sent from, and only inside the dashboard', async () => {
      const client = dashboardClient(app.url);
      await client.get('/dashboard/sign-in?next=%2Fdashboard%2Fmembers');
      const back = await client.post('/dashboard/sign-in', {
        _csrf: client.csrf(),
        api_key: programKey,
        next: '/dashboard/members',
      });
      assert.equal(back.location, '/dashboard/members');
      const other = dashboardClient(app.url);
      await other.get('/dashboard/sign-in');
      const away = await other.post('/dashboard/sign-in', {
        _csrf: other.csrf(),
        api_key: programKey,
        next: '//evil.example/dashboard/',
      });
      assert.equal(away.location, '/dashboard/');
    });

    it('refuses a key that is not valid', async () => {
      const response = await dashboardClient(app.url).signIn('key_nope.not-a-real-secret');
      assert.equal(response.status, 401);
      assert.match(response.text, /That API key is not valid/);
    });

    it('refuses a sign-in form without its CSRF token', async () => {
      const client = dashboardClient(app.url);
      await client.get('/dashboard/sign-in');
      const response = await client.post('/dashboard/sign-in', { api_key: programKey });
      assert.equal(response.status, 403);
      assert.equal(client.cookies.has('incentable_dashboard'), false);
    });

    it('opens an httpOnly, SameSite=Strict session that holds no part of the key', async () => {
      const client = dashboardClient(app.url);
      const response = await client.signIn(programKey);
      assert.equal(response.status, 303);
      const cookie = client.setCookies.find((c) => c.startsWith('incentable_dashboard='));
      assert.ok(cookie);
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /SameSite=Strict/);
      assert.match(cookie, /Path=\/dashboard/);
      const secret = programKey.slice(programKey.indexOf('.') + 1);
      assert.equal(cookie.includes(secret), false);
      const overview = await client.get('/dashboard/overview');
      assert.equal(overview.status, 200);
      assert.match(overview.text, /Acme Rewards/);
    });

    it('ends the session on sign-out', async () => {
      const client = dashboardClient(app.url);
      await client.signIn(programKey);
      const session = client.cookies.get('incentable_dashboard')!;
      await client.get('/dashboard/overview');
      const out = await client.post('/dashboard/sign-out', { _csrf: client.csrf() });
      assert.equal(out.location, '/dashboard/sign-in');
      client.cookies.set('incentable_dashboard', session);
      assert.equal((await client.get('/dashboard/overview')).status, 303);
    });
  });

  describe('with a program key', () => {
    it('ends the session once the key is revoked', async () => {
      const revocable = expectStatus(
        await app.api.post<{ id: string; key: string }>(`/v1/programs/${programId}/api-keys`, {
          label: 'temp',
        }),
        201,
      ).body;
      const client = dashboardClient(app.url);
      await client.signIn(revocable.key);
      assert.equal((await client.get('/dashboard/overview')).status, 200);
      await app.runtime.database.db
        .updateTable('api_keys')
        .set({ revoked_at: new Date().toISOString() })
        .where('key_id', '=', revocable.id)
        .execute();
      const after = await client.get('/dashboard/overview');
      assert.equal(after.status, 303);
      assert.match(after.location ?? '', /^\/dashboard\/sign-in/);
    });

    it('refuses a POST without the session CSRF token and changes nothing', async () => {
      const client = dashboardClient(app.url);
      await client.signIn(programKey);
      const response = await client.post('/dashboard/settings/webhooks', {
        url: 'http://127.0.0.1:9/hook',
        events: 'points.awarded',
      });
      assert.equal(response.status, 403);
      assert.equal((await app.runtime.webhooks.listEndpoints(programId)).length, 0);
    });

    it('cannot switch to another program', async () => {
      const client = dashboardClient(app.url);
      await client.signIn(programKey);
      await client.get('/dashboard/overview');
      const response = await client.post('/dashboard/program', {
        _csrf: client.csrf(),
        program_id: otherProgramId,
      });
      assert.equal(response.status, 403);
    });

    it("cannot open another program's endpoint by id", async () => {
      const { endpoint } = await app.runtime.webhooks.createEndpoint({
        programId: otherProgramId,
        url: 'http://127.0.0.1:9/other',
        events: ['*'],
      });
      const client = dashboardClient(app.url);
      await client.signIn(programKey);
      const response = await client.get(`/dashboard/settings/webhooks/${endpoint.endpointId}`);
      assert.equal(response.status, 404);
      assert.equal(response.text.includes('127.0.0.1:9/other'), false);
    });
  });

  describe('webhook forms without script', () => {
    it('subscribes to every event with "Select all" alone', async () => {
      const client = dashboardClient(app.url);
      await signInAsRoot(client, programId);
      await client.get('/dashboard/settings/webhooks/new');
      const response = await client.post('/dashboard/settings/webhooks', {
        _csrf: client.csrf(),
        url: 'http://127.0.0.1:9/all',
        description: 'everything',
        all_events: 'on',
      });
      assert.equal(response.status, 303);
      const page = await client.get(response.location!);
      assert.match(page.text, /Your webhook secret/);
      assert.match(page.text, /value="whsec_[A-Za-z0-9+/=]+"/);
      const created = (await app.runtime.webhooks.listEndpoints(programId)).find(
        (e) => e.url === 'http://127.0.0.1:9/all',
      );
      assert.equal(created?.events.length, webhookEventTypes.length);
    });

    it('adds a RabbitMQ destination, shows its kind and never its password', async () => {
      const client = dashboardClient(app.url);
      await signInAsRoot(client, programId);
      await client.get('/dashboard/settings/webhooks/new');
      const password = 'Dashb0ard-s3cret';
      const response = await client.post('/dashboard/settings/webhooks', {
        _csrf: client.csrf(),
        url: `amqp://svc:${password}@127.0.0.1:9/?exchange=loyalty`,
        description: 'broker',
        all_events: 'on',
      });
      assert.equal(response.status, 303);
      const page = await client.get(response.location!);
      assert.match(page.text, /data-field="destination">RabbitMQ/);
      assert.match(page.text, /data-field="ordering">\s*Unordered/);
      assert.match(page.text, /amqp:\/\/svc@127\.0\.0\.1:9\/\?exchange=loyalty/);
      assert.equal(page.text.includes(password), false);
      const list = await client.get('/dashboard/settings/webhooks');
      assert.equal(list.text.includes(password), false);
      // Where an admin looks for webhooks, the command that brings them to a local receiver.
      assert.match(
        list.text,
        new RegExp(
          `data-listen-command\\s*><code>npx incentable listen --url http://127\\.0\\.0\\.1:\\d+ [^<]*--program ${programId}`,
        ),
      );

      // Saving the edit form as shown (the URL without its password) keeps the credentials, and
      // sets the rate limit.
      const endpointPath = response.location!;
      const edit = await client.get(`${endpointPath}/edit`);
      assert.match(edit.text, /value="amqp:\/\/svc@127\.0\.0\.1:9\/\?exchange=loyalty"/);
      const saved = await client.post(`${endpointPath}/edit`, {
        _csrf: client.csrf(),
        url: 'amqp://svc@127.0.0.1:9/?exchange=loyalty',
        description: 'broker',
        all_events: 'on',
        rate_limit_per_second: '25',
        ordering: 'ordered',
      });
      assert.equal(saved.status, 303);
      const endpointId = endpointPath.split('/').pop()!;
      const stored = await sql<{
        url_userinfo_encrypted: string | null;
        rate: number | null;
        ordering: string;
      }>`
        select url_userinfo_encrypted, rate_limit_per_second as rate, ordering
        from webhook_endpoints where endpoint_id = ${endpointId}`.execute(app.runtime.database.db);
      assert.equal(stored.rows[0]!.ordering, 'ordered');
      assert.ok(stored.rows[0]!.url_userinfo_encrypted, 'the credentials are kept');
      assert.equal(stored.rows[0]!.rate, 25);
      const shown = await client.get(endpointPath);
      assert.match(shown.text, /data-field="rate-limit">\s*25 deliveries per second/);

      const refused = await client.post(`${endpointPath}/edit`, {
        _csrf: client.csrf(),
        url: 'amqp://svc@127.0.0.1:9/?exchange=loyalty',
        description: 'broker',
        all_events: 'on',
        rate_limit_per_second: 'fast',
        ordering: 'ordered',
      });
      assert.equal(refused.status, 400);
      assert.match(refused.text, /id="rate_limit_per_second"[^>]*aria-invalid="true"/s);
    });

    it('shows the form again with the error when the URL is not valid', async () => {
      const client = dashboardClient(app.url);
      await signInAsRoot(client, programId);
      await client.get('/dashboard/settings/webhooks/new');
      const response = await client.post('/dashboard/settings/webhooks', {
        _csrf: client.csrf(),
        url: 'ftp://example.com/hook',
        description: 'kept',
        events: ['points.awarded', 'member.created'],
      });
      assert.equal(response.status, 400);
      assert.match(response.text, /aria-invalid="true"/);
      assert.match(response.text, /value="member\.created"[^>]*checked/);
      assert.doesNotMatch(response.text, /value="points\.deducted"[^>]*checked/);
      assert.match(response.text, />\s*kept<\/textarea>/);
    });
  });

  describe('escaping', () => {
    it('renders a hostile endpoint description and member name as text', async () => {
      const { endpoint } = await app.runtime.webhooks.createEndpoint({
        programId,
        url: 'http://127.0.0.1:9/xss',
        events: ['points.awarded'],
        description: hostile,
      });
      const client = dashboardClient(app.url);
      await client.signIn(programKey);
      const pages = [
        await client.get('/dashboard/settings/webhooks'),
        await client.get(`/dashboard/settings/webhooks/${endpoint.endpointId}`),
        await client.get('/dashboard/members'),
      ];
      for (const page of pages) {
        assert.equal(page.status, 200);
        assert.equal(page.text.includes('<script>window'), false);
        assert.equal(page.text.includes('<img src=x'), false);
        assert.match(page.text, /&lt;script&gt;window.__xss = 1&lt;\/script&gt;/);
        assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      }
    });
  });

  describe('overview', () => {
    it('counts members and the points awarded in the last 30 days, less reversed awards', async () => {
      const client = dashboardClient(app.url);
      await client.signIn(programKey);
      await settle(app.runtime);
      await waitFor('the read models', async () => {
        const page = await client.get('/dashboard/overview');
        return /data-stat="awarded">700</.test(page.text);
      });
      const page = await client.get('/dashboard/overview');
      assert.match(page.text, /data-stat="members">1</);
      assert.match(page.text, /<svg\s+class="chart"/);
    });
  });
});
