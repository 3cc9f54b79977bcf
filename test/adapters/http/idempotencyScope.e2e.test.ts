import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  createMember,
  createProgram,
  eventCount,
  expectStatus,
  settle,
  startTestApp,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';

type Movement = { transaction_id: string; balance: number };

/**
 * An Idempotency-Key names one request to one program, whichever key sends it: a backend that
 * retries with another of the program's keys, or with the root key, must not award twice.
 */
describe('idempotency keys are scoped to the program', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp();
  });
  after(async () => app?.stop());

  const programKey = async (programId: string): Promise<string> =>
    expectStatus(
      await app.api.post<{ key: string }>(`/v1/programs/${programId}/api-keys`, {
        label: 'backend',
      }),
      201,
    ).body.key;

  it('answers the same award to the root key and to a program key sent with one key', async () => {
    const program = await createProgram(app.api);
    const member = await createMember(app.api, program.id);
    const key = await programKey(program.id);
    const path = `/v1/programs/${program.id}/members/${member.id}/points/award`;
    const headers = { 'idempotency-key': 'crm-sync-7731' };
    const first = expectStatus(
      await app.api.post<Movement>(path, { points: 50, reason: 'deal' }, { headers, key }),
      201,
    );
    const again = expectStatus(
      await app.api.post<Movement>(path, { points: 50, reason: 'deal' }, { headers }),
      201,
    );
    assert.equal(again.body.transaction_id, first.body.transaction_id);
    await settle(app.runtime);
    const balance = expectStatus(
      await app.api.get<{ balance: number }>(`/v1/programs/${program.id}/members/${member.id}`),
      200,
    ).body.balance;
    assert.equal(balance, 50);
  });

  it("does not let another program's key take a key in this program", async () => {
    const mine = await createProgram(app.api);
    const theirs = await createProgram(app.api);
    const member = await createMember(app.api, mine.id);
    const intruder = await programKey(theirs.id);
    const path = `/v1/programs/${mine.id}/members/${member.id}/points/award`;
    const headers = { 'idempotency-key': 'guessable-1' };
    const events = await eventCount(app.runtime);
    expectStatus(
      await app.api.post(path, { points: 5, reason: 'x' }, { headers, key: intruder }),
      403,
    );
    assert.equal(await eventCount(app.runtime), events);
    // The program's own request with that key is performed, not answered with the 403.
    const own = await app.api.post<Movement>(path, { points: 5, reason: 'x' }, { headers });
    assert.equal(own.status, 201, own.text);
  });

  it('answers a malformed program id with its 400, also with an Idempotency-Key', async () => {
    // Found by the HTTP fuzz: %00 decoded into the key's scope, which PostgreSQL text refuses.
    for (const id of ['%00', 'prg_%00', '%ZZ', 'prg%20x']) {
      const answer = await app.api.post(
        `/v1/programs/${id}/webhook-endpoints`,
        { url: 'http://127.0.0.1:9/x', events: ['points.awarded'] },
        { headers: { 'idempotency-key': 'fuzz-1' } },
      );
      assert.equal(answer.status, 400, `${id}: ${answer.text}`);
      assert.equal(answer.body.error?.code, 'validation_error', `${id}: ${answer.text}`);
    }
  });

  it('keeps the same key apart in two programs', async () => {
    const one = await createProgram(app.api);
    const two = await createProgram(app.api);
    const headers = { 'idempotency-key': 'shared-name' };
    const a = await createMember(app.api, one.id);
    const b = await createMember(app.api, two.id);
    const first = expectStatus(
      await app.api.post<Movement>(
        `/v1/programs/${one.id}/members/${a.id}/points/award`,
        { points: 1, reason: 'r' },
        { headers },
      ),
      201,
    );
    const second = expectStatus(
      await app.api.post<Movement>(
        `/v1/programs/${two.id}/members/${b.id}/points/award`,
        { points: 1, reason: 'r' },
        { headers },
      ),
      201,
    );
    assert.notEqual(second.body.transaction_id, first.body.transaction_id);
  });
});
