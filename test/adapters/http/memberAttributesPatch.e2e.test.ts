import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  createMember,
  createProgram,
  expectStatus,
  settle,
  startTestApp,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';

type View = { attributes: Record<string, unknown> };

/** PATCH of `attributes` is a JSON merge patch (RFC 7396, one level): null deletes a key. */
describe('PATCH member attributes', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let programId: string;
  before(async () => {
    app = await startTestApp();
    programId = (await createProgram(app.api)).id;
  });
  after(async () => app?.stop());

  const attributesOf = async (memberId: string) => {
    await settle(app.runtime);
    return expectStatus(
      await app.api.get<View>(`/v1/programs/${programId}/members/${memberId}`),
      200,
    ).body.attributes;
  };

  it('merges the given keys, keeps the others and deletes those set to null', async () => {
    const member = await createMember(app.api, programId, {
      attributes: { region: 'EMEA', team: 'north', quota: 10 },
    });
    const path = `/v1/programs/${programId}/members/${member.id}`;
    expectStatus(await app.api.patch(path, { attributes: { quota: 12, level: 'senior' } }), 200);
    assert.deepEqual(await attributesOf(member.id), {
      region: 'EMEA',
      team: 'north',
      quota: 12,
      level: 'senior',
    });
    expectStatus(await app.api.patch(path, { attributes: { team: null, absent: null } }), 200);
    assert.deepEqual(await attributesOf(member.id), { region: 'EMEA', quota: 12, level: 'senior' });
    // An empty patch changes nothing.
    expectStatus(await app.api.patch(path, { attributes: {} }), 200);
    assert.deepEqual(await attributesOf(member.id), { region: 'EMEA', quota: 12, level: 'senior' });
  });

  it('refuses a patch whose result would pass 50 attributes, and writes nothing', async () => {
    const forty = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`a${i}`, i]));
    const member = await createMember(app.api, programId, { attributes: forty });
    const more = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`b${i}`, i]));
    const answer = await app.api.patch(`/v1/programs/${programId}/members/${member.id}`, {
      attributes: more,
    });
    assert.equal(answer.status, 400, answer.text);
    assert.equal(answer.body.error?.field, 'attributes');
    assert.deepEqual(await attributesOf(member.id), forty);
  });
});
