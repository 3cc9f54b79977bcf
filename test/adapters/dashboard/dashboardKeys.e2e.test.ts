import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  apiClient,
  createProgram,
  expectStatus,
  startTestApp,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';
import { dashboardClient } from './dashboardClient.ts';

const keysPage = '/dashboard/settings/api-keys';

describe("the dashboard's API keys page", { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let programId: string;
  let otherProgramId: string;

  const issue = async (program: string, label: string) =>
    expectStatus(
      await app.api.post<{ id: string; key: string }>(`/v1/programs/${program}/api-keys`, {
        label,
      }),
      201,
    ).body;

  before(async () => {
    app = await startTestApp();
    programId = (await createProgram(app.api, { name: 'Acme Rewards' })).id;
    otherProgramId = (await createProgram(app.api, { name: 'Other Program' })).id;
  });

  after(async () => {
    await app?.stop();
  });

  it("lists the program's keys, marks the session's own, and shows no secret", async () => {
    const ops = await issue(programId, 'ops team');
    const crm = await issue(programId, 'crm <backend>');
    const foreign = await issue(otherProgramId, 'not ours');
    const client = dashboardClient(app.url);
    assert.equal((await client.signIn(ops.key)).status, 303);
    const overview = await client.get('/dashboard/overview');
    assert.match(overview.text, /href="\/dashboard\/settings\/api-keys"/);
    const page = await client.get(keysPage);
    assert.equal(page.status, 200);
    assert.match(page.text, /<h1>API keys<\/h1>/);
    assert.ok(page.text.includes(ops.id) && page.text.includes(crm.id));
    assert.ok(page.text.includes('crm &lt;backend&gt;'));
    assert.ok(!page.text.includes(foreign.id));
    for (const key of [ops.key, crm.key]) assert.ok(!page.text.includes(key.split('.')[1]!));
    assert.match(page.text, new RegExp(`${ops.id}[\\s\\S]*?this session`));
  });

  it('revokes a key through a POST form carrying the CSRF token', async () => {
    const ops = await issue(programId, 'ops');
    const crm = await issue(programId, 'crm');
    const client = dashboardClient(app.url);
    await client.signIn(ops.key);
    await client.get(keysPage);
    const action = `${keysPage}/${crm.id}/revoke`;

    const forged = await client.post(action, { _csrf: 'not-the-token' });
    assert.equal(forged.status, 403);
    expectStatus(await apiClient(app.url, crm.key).get(`/v1/programs/${programId}`), 200);

    const revoked = await client.post(action, { _csrf: client.csrf() });
    assert.equal(revoked.status, 303);
    assert.equal(revoked.location, keysPage);
    const refused = await apiClient(app.url, crm.key).get(`/v1/programs/${programId}`);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error?.code, 'invalid_api_key');
    const page = await client.get(keysPage);
    assert.match(page.text, new RegExp(`Key ${crm.id} revoked`));
    assert.match(page.text, new RegExp(`${crm.id}[\\s\\S]*?Revoked`));
    assert.ok(!page.text.includes(`${crm.id}/revoke`), 'a revoked key has no Revoke button');
  });

  it('finds no key of another program, nor one that does not exist', async () => {
    const ops = await issue(programId, 'ops');
    const foreign = await issue(otherProgramId, 'foreign');
    const client = dashboardClient(app.url);
    await client.signIn(ops.key);
    await client.get(keysPage);
    for (const id of [foreign.id, 'key_doesnotexist', 'not-a-key']) {
      const response = await client.post(`${keysPage}/${id}/revoke`, { _csrf: client.csrf() });
      assert.equal(response.status, 404, id);
    }
    expectStatus(await apiClient(app.url, foreign.key).get(`/v1/programs/${otherProgramId}`), 200);
  });

  it("shows a root session the current program's keys", async () => {
    const key = await issue(otherProgramId, 'seen by root');
    const client = dashboardClient(app.url);
    await client.signIn(app.rootKey);
    await client.get('/dashboard/programs');
    await client.post('/dashboard/program', { _csrf: client.csrf(), program_id: otherProgramId });
    const page = await client.get(keysPage);
    assert.equal(page.status, 200);
    assert.ok(page.text.includes(key.id));
    const revoked = await client.post(`${keysPage}/${key.id}/revoke`, { _csrf: client.csrf() });
    assert.equal(revoked.status, 303);
    assert.equal(
      (await apiClient(app.url, key.key).get(`/v1/programs/${otherProgramId}`)).status,
      401,
    );
  });

  it('signs the session out when it revokes its own key', async () => {
    const self = await issue(programId, 'self');
    const client = dashboardClient(app.url);
    await client.signIn(self.key);
    await client.get(keysPage);
    const revoked = await client.post(`${keysPage}/${self.id}/revoke`, { _csrf: client.csrf() });
    assert.equal(revoked.status, 303);
    assert.equal(revoked.location, '/dashboard/sign-in');
    const after = await client.get(keysPage);
    assert.equal(after.status, 303);
    assert.match(after.location ?? '', /^\/dashboard\/sign-in/);
  });
});
