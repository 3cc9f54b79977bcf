import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  createMember,
  createProgram,
  startTestApp,
  type ApiResponse,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';

const refused = (response: ApiResponse<unknown>, field: string) => {
  assert.equal(response.status, 400, response.text);
  assert.equal(response.body.error?.code, 'validation_error');
  assert.equal(response.body.error?.field, field);
  assert.ok(response.body.error?.message.includes(field), response.body.error?.message);
};

/** Errors name fields as the wire spells them, path parameters included. */
describe('error fields', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let programId: string;
  let memberId: string;
  before(async () => {
    app = await startTestApp();
    programId = (await createProgram(app.api)).id;
    memberId = (await createMember(app.api, programId)).id;
  });
  after(async () => app?.stop());

  it('name a malformed path id in snake_case', async () => {
    refused(await app.api.get('/v1/programs/not-an-id/members'), 'program_id');
    refused(await app.api.get(`/v1/programs/${programId}/members/nope`), 'member_id');
    refused(await app.api.get('/v1/programs/prg%20x/audit/events'), 'program_id');
    refused(
      await app.api.get(`/v1/programs/${programId}/webhook-endpoints/whatever`),
      'endpoint_id',
    );
  });

  it('refuse an as_of that is not an ISO-8601 timestamp with a 400', async () => {
    for (const asOf of ['1', '2026', 'tomorrow', '12/01/2026', '2026-13-01T00:00:00Z'])
      refused(
        await app.api.get(`/v1/programs/${programId}/members/${memberId}?as_of=${asOf}`),
        'as_of',
      );
    const ok = await app.api.get(
      `/v1/programs/${programId}/members/${memberId}?as_of=${encodeURIComponent(new Date().toISOString())}`,
    );
    assert.equal(ok.status, 200, ok.text);
  });
});
