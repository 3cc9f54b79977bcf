import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import {
  createMember,
  createProgram,
  createReward,
  expectStatus,
  startTestApp,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';

type Movement = { transaction_id: string; new_balance: number };

/**
 * What a kill -9 leaves behind: the command's events are committed (or not), the key's row is
 * still `pending`, held by a process that is gone, its lease running out.
 */
describe('an Idempotency-Key whose request died', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let programId: string;

  const db = () => app.runtime.database.db;
  const newKey = () => `key-${randomBytes(8).toString('hex')}`;
  const awardPath = (memberId: string) =>
    `/v1/programs/${programId}/members/${memberId}/points/award`;

  /** Puts a settled key back as a dead process would have left it: applied, never answered. */
  const dieAfterTheEffect = async (key: string) => {
    const updated = await sql`
      update idempotency_keys set status = 'pending', response_status = null,
        response_body = null, owner = 'a-process-that-was-killed',
        lease_until = clock_timestamp() + interval '300 milliseconds'
      where key = ${key}`.execute(db());
    assert.equal(Number(updated.numAffectedRows), 1);
  };

  /** A key claimed by a request for the same route and body that died before it appended. */
  const dieBeforeTheEffect = async (key: string, sameRequestAs: string) => {
    await sql`
      insert into idempotency_keys (scope, key, request_sha256, status, owner, lease_until)
      select scope, ${key}, request_sha256, 'pending', 'a-process-that-was-killed',
        clock_timestamp() + interval '300 milliseconds'
      from idempotency_keys where key = ${sameRequestAs}`.execute(db());
  };

  const ledgerRows = async (memberId: string) =>
    Number(
      (
        await sql<{ n: string }>`select count(*)::text as n from incentable_events
          where stream_name like ${`points-${programId}-${memberId}`}`.execute(db())
      ).rows[0]!.n,
    );

  before(async () => {
    app = await startTestApp({ env: { IDEMPOTENCY_LEASE_MS: '500' } });
    programId = (await createProgram(app.api)).id;
  });

  after(async () => {
    await app.stop();
  });

  it('answers a retry with the original response when the award was applied', async () => {
    const memberId = (await createMember(app.api, programId)).id;
    const key = newKey();
    const body = { points: 100, reason: 'Q2 target' };
    const headers = { 'idempotency-key': key };
    const first = expectStatus(
      await app.api.post<Movement>(awardPath(memberId), body, { headers }),
      201,
    );
    await dieAfterTheEffect(key);
    const retry = await app.api.post<Movement>(awardPath(memberId), body, { headers });
    assert.equal(retry.status, 201, retry.text);
    assert.deepEqual(retry.body, first.body);
    assert.equal(await ledgerRows(memberId), 1, 'the award was applied twice');
    const row = await db()
      .selectFrom('idempotency_keys')
      .select(['status', 'owner'])
      .where('key', '=', key)
      .executeTakeFirstOrThrow();
    assert.deepEqual(row, { status: 'done', owner: null });
    // And from then on it is an ordinary replay.
    const again = await app.api.post<Movement>(awardPath(memberId), body, { headers });
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(again.body, first.body);
  });

  it('performs the award once when the request died before appending', async () => {
    const memberId = (await createMember(app.api, programId)).id;
    const body = { points: 40, reason: 'Referral' };
    const done = newKey();
    expectStatus(
      await app.api.post(awardPath(memberId), body, { headers: { 'idempotency-key': done } }),
      201,
    );
    const died = newKey();
    await dieBeforeTheEffect(died, done);
    const retry = await app.api.post<Movement>(awardPath(memberId), body, {
      headers: { 'idempotency-key': died },
    });
    assert.equal(retry.status, 201, retry.text);
    assert.equal(retry.body.new_balance, 80);
    assert.equal(await ledgerRows(memberId), 2);
  });

  it('recovers a redemption across its three streams: the same order, one deduction, one unit', async () => {
    const memberId = (await createMember(app.api, programId)).id;
    expectStatus(await app.api.post(awardPath(memberId), { points: 1000, reason: 'seed' }), 201);
    const reward = await createReward(app.api, programId, {
      points_cost: 300,
      stock: 5,
      kind: 'digital',
    });
    const key = newKey();
    const path = `/v1/programs/${programId}/members/${memberId}/redemptions`;
    const body = { reward_id: reward.id };
    const first = expectStatus(
      await app.api.post<{ order_id: string }>(path, body, { headers: { 'idempotency-key': key } }),
      201,
    );
    await dieAfterTheEffect(key);
    const retry = await app.api.post<{ order_id: string }>(path, body, {
      headers: { 'idempotency-key': key },
    });
    assert.equal(retry.status, 201, retry.text);
    assert.deepEqual(retry.body, first.body);
    const orders = await sql<{ n: string }>`select count(*)::text as n from incentable_events
      where type = 'StockReserved' and stream_name = ${`reward-${programId}-${reward.id}`}`.execute(
      db(),
    );
    assert.equal(orders.rows[0]!.n, '1', 'a second unit was reserved');
    const types = await sql<{ type: string }>`select type from incentable_events
      where stream_name = ${`points-${programId}-${memberId}`} order by stream_revision`.execute(
      db(),
    );
    assert.deepEqual(
      types.rows.map((r) => r.type),
      ['PointsAwarded', 'PointsDeducted', 'RewardRedeemed'],
    );
  });

  it('treats the same body with its keys in another order as the same request', async () => {
    const memberId = (await createMember(app.api, programId)).id;
    const headers = { 'idempotency-key': newKey() };
    const first = expectStatus(
      await app.api.post<Movement>(awardPath(memberId), { points: 5, reason: 'a' }, { headers }),
      201,
    );
    const reordered = await app.api.request<Movement>('POST', awardPath(memberId), {
      raw: '{"reason":"a","points":5}',
      headers,
    });
    assert.equal(reordered.status, 201, reordered.text);
    assert.equal(reordered.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(reordered.body, first.body);
  });
});

describe('idempotent answers that carry a secret', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let programId: string;

  before(async () => {
    app = await startTestApp();
    programId = (await createProgram(app.api)).id;
  });

  after(async () => {
    await app.stop();
  });

  /** Every text and jsonb value of every table, as text. */
  const everything = async (): Promise<string> => {
    const columns = await sql<{ table_name: string; column_name: string }>`
      select table_name, column_name from information_schema.columns
      where table_schema = 'public' and data_type in ('text', 'jsonb', 'json', 'character varying')`.execute(
      app.runtime.database.db,
    );
    const parts: string[] = [];
    for (const { table_name, column_name } of columns.rows) {
      const values = await sql<{ v: string | null }>`select ${sql.ref(column_name)}::text as v
        from ${sql.table(table_name)}`.execute(app.runtime.database.db);
      for (const row of values.rows) if (row.v !== null) parts.push(row.v);
    }
    return parts.join('\n');
  };

  it('keeps no secret or key in clear, replays them unchanged, and marks them no-store', async () => {
    const post = (path: string, body: unknown, key: string) =>
      app.api.post<Record<string, string>>(path, body, { headers: { 'idempotency-key': key } });
    const endpointPath = `/v1/programs/${programId}/webhook-endpoints`;
    const endpointBody = { url: 'http://127.0.0.1:9/hook', events: ['points.awarded'] };
    const created = expectStatus(await post(endpointPath, endpointBody, 'ep-1'), 201);
    assert.equal(created.headers.get('cache-control'), 'no-store');
    const rotatePath = `${endpointPath}/${created.body.id}/rotate-secret`;
    const rotated = expectStatus(await post(rotatePath, {}, 'rot-1'), 200);
    assert.equal(rotated.headers.get('cache-control'), 'no-store');
    const keyPath = `/v1/programs/${programId}/api-keys`;
    const apiKey = expectStatus(await post(keyPath, { label: 'crm' }, 'key-1'), 201);
    assert.equal(apiKey.headers.get('cache-control'), 'no-store');

    const stored = await everything();
    for (const secret of [created.body.secret!, rotated.body.secret!, apiKey.body.key!]) {
      assert.ok(secret.length > 20);
      assert.ok(!stored.includes(secret), `a secret is stored in clear: ${secret.slice(0, 12)}…`);
      assert.ok(!stored.includes(secret.split('.').at(-1)!), 'a key secret is stored in clear');
    }

    for (const [path, body, key, first] of [
      [endpointPath, endpointBody, 'ep-1', created],
      [rotatePath, {}, 'rot-1', rotated],
      [keyPath, { label: 'crm' }, 'key-1', apiKey],
    ] as const) {
      const replay = await post(path, body, key);
      assert.equal(replay.status, first.status);
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      assert.equal(replay.headers.get('cache-control'), 'no-store');
      assert.deepEqual(replay.body, first.body);
    }
    const endpoints = await app.api.get<{ data: unknown[] }>(endpointPath);
    assert.equal(endpoints.body.data.length, 1, 'a replay created a second endpoint');
  });
});
