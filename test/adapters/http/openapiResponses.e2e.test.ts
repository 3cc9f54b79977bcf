import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { readFile } from 'node:fs/promises';
import { sql } from 'kysely';
import createClient from 'openapi-fetch';
import { comparePositions } from '../../../domain/recordedEvent.ts';
import { runningClock, settle, startTestApp, type TestApp } from '../../support/api.ts';
import { responseChecker, type ResponseCheck } from '../../support/openapiResponses.ts';
import { openApiTypes, typesFile } from '../../support/generateOpenApiTypes.ts';
import type { components, paths } from '../../support/openapiTypes.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';

/**
 * Issue 19: every operation of /openapi.json is called against the real service, and each real
 * answer is checked against the document (status declared, body valid against its schema,
 * declared headers present). One service and one database for the whole file.
 */

type Options = {
  body?: unknown;
  /** Sent as it is, with this content type. */
  raw?: { text: string; type: string };
  query?: Record<string, string>;
  /** Bearer key; null sends none. Defaults to the root key. */
  key?: string | null;
  headers?: Record<string, string>;
};

/** The body as the document's schema types it: it was validated against that schema. */
type Answer<T> = { status: number; headers: Headers; text: string; body: T };
type S = components['schemas'];

describe('the OpenAPI document against the real API', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let responses: ResponseCheck;
  let served: unknown;
  const ids: Record<string, string> = {};

  const call = async <T = unknown>(
    method: string,
    template: string,
    options: Options = {},
    expected?: number,
  ): Promise<Answer<T>> => {
    const path = template.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = ids[name];
      assert.ok(value !== undefined, `no ${name} for ${template}`);
      return encodeURIComponent(value);
    });
    const query = options.query ? `?${new URLSearchParams(options.query).toString()}` : '';
    const key = options.key === undefined ? app.rootKey : options.key;
    const headers: Record<string, string> = {
      ...(key !== null && { authorization: `Bearer ${key}` }),
      ...(options.body !== undefined && { 'content-type': 'application/json' }),
      ...(options.raw && { 'content-type': options.raw.type }),
      ...options.headers,
    };
    const body =
      options.raw?.text ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    const response = await fetch(`${app.url}${path}${query}`, {
      method: method.toUpperCase(),
      headers,
      ...(body !== undefined && { body }),
    });
    const text = await response.text();
    const answer = { status: response.status, headers: response.headers, text };
    const parsed = responses.check(method, template, answer);
    if (expected !== undefined)
      assert.equal(response.status, expected, `${method} ${path}: ${text}`);
    return { ...answer, body: parsed as T };
  };

  /** Waits until the audit tree holds every event, and signs a checkpoint of it. */
  const checkpointNow = async () => {
    await settle(app.runtime);
    const last = await sql<{ commit: string; prepare: string }>`
      select transaction_id::text as commit, global_position::text as prepare
      from incentable_events order by transaction_id desc, global_position desc limit 1`.execute(
      app.runtime.database.db,
    );
    const row = last.rows[0]!;
    const position = { commit: BigInt(row.commit), prepare: BigInt(row.prepare) };
    await waitFor('the audit tree to catch up', () => {
      const reached = app.runtime.audit.tree?.checkpoint();
      return reached !== null && reached !== undefined && comparePositions(reached, position) >= 0;
    });
    await app.runtime.audit.checkpointer.make();
  };

  before(async () => {
    app = await startTestApp({
      clock: runningClock(),
      env: {
        // No delivery worker: deliveries stay queued, which is all the delivery log needs.
        ROLES: 'api,projector',
        WEBHOOK_SECRET_KEY: randomBytes(32).toString('base64'),
        AUDIT_SIGNING_KEY: randomBytes(32).toString('base64'),
        MAX_BODY_BYTES: '2048',
      },
    });
    served = await (await fetch(`${app.url}/openapi.json`)).json();
    responses = responseChecker(served);
  });
  after(async () => {
    await app?.stop();
  });

  it('answers the program and API key routes as documented', async () => {
    const created = await call<S['ProgramCreated']>(
      'post',
      '/v1/programs',
      {
        body: {
          name: 'Docs',
          tiers: [
            { name: 'Bronze', min_points: 0 },
            { name: 'Gold', min_points: 500 },
          ],
          points_expiry: { mode: 'per_award', days: 365 },
          notification_email: 'ops@example.com',
        },
      },
      201,
    );
    ids.programId = created.body.id;
    await call('post', '/v1/programs', { body: { name: '' } }, 400);
    await call(
      'get',
      '/v1/programs/{programId}',
      { query: { after_position: created.body.position! } },
      200,
    );
    await call('get', '/v1/programs/{programId}', { key: null }, 401);
    await call('patch', '/v1/programs/{programId}', { body: { name: 'Docs 2' } }, 200);
    await call('patch', '/v1/programs/{programId}', { body: { colour: 'red' } }, 400);
    await call(
      'patch',
      '/v1/programs/{programId}',
      { raw: { text: 'name=x', type: 'text/plain' } },
      415,
    );
    await call('patch', '/v1/programs/{programId}', { body: { name: 'x'.repeat(3_000) } }, 413);

    const key = await call<S['ApiKeyCreated']>(
      'post',
      '/v1/programs/{programId}/api-keys',
      { body: { label: 'shop' }, headers: { 'Idempotency-Key': 'key-1' } },
      201,
    );
    ids.programKey = key.body.key;
    const again = await call<S['ApiKeyCreated']>(
      'post',
      '/v1/programs/{programId}/api-keys',
      { body: { label: 'shop' }, headers: { 'Idempotency-Key': 'key-1' } },
      201,
    );
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.body.id, key.body.id);
    await call(
      'post',
      '/v1/programs/{programId}/api-keys',
      { body: { label: 'other' }, headers: { 'Idempotency-Key': 'key-1' } },
      409,
    );
    await call(
      'post',
      '/v1/programs/{programId}/api-keys',
      { body: {}, headers: { 'Idempotency-Key': 'has space' } },
      400,
    );
    await call('post', '/v1/programs/{programId}/api-keys', { body: {}, key: ids.programKey }, 403);
    const spare = await call<S['ApiKeyCreated']>(
      'post',
      '/v1/programs/{programId}/api-keys',
      { body: {} },
      201,
    );
    await call('get', '/v1/programs/{programId}/api-keys', {}, 200);
    ids.keyId = spare.body.id;
    await call('delete', '/v1/programs/{programId}/api-keys/{keyId}', {}, 204);
    ids.keyId = 'key_missing';
    await call('delete', '/v1/programs/{programId}/api-keys/{keyId}', {}, 404);
    ids.programId = 'prg_missing';
    await call('get', '/v1/programs/{programId}', {}, 404);
    ids.programId = created.body.id;
  });

  it('answers the member and points routes as documented', async () => {
    const member = await call<S['MemberRegistered']>(
      'post',
      '/v1/programs/{programId}/members',
      {
        body: {
          email: 'ada@example.com',
          name: 'Ada',
          external_id: 'c-1',
          attributes: { vip: true },
        },
      },
      201,
    );
    ids.memberId = member.body.id;
    const other = await call<S['MemberRegistered']>(
      'post',
      '/v1/programs/{programId}/members',
      { body: { email: 'bob@example.com', name: 'Bob' } },
      201,
    );
    const duplicate = await call<S['Error']>(
      'post',
      '/v1/programs/{programId}/members',
      { body: { email: 'ADA@example.com', name: 'Ada again' } },
      409,
    );
    assert.equal(duplicate.body.error.member_id, ids.memberId);
    await call('post', '/v1/programs/{programId}/members', { body: { name: 'No email' } }, 400);

    const award = await call<S['PointsMoved']>(
      'post',
      '/v1/programs/{programId}/members/{memberId}/points/award',
      {
        body: { points: 700, reason: 'order 1', reference: 'o-1' },
        headers: { 'Idempotency-Key': 'award-1' },
      },
      201,
    );
    await call(
      'post',
      '/v1/programs/{programId}/members/{memberId}/points/award',
      {
        body: { points: 700, reason: 'order 1', reference: 'o-1' },
        headers: { 'Idempotency-Key': 'award-1' },
      },
      201,
    );
    await call(
      'post',
      '/v1/programs/{programId}/members/{memberId}/points/award',
      { body: { points: 0, reason: 'x' } },
      400,
    );
    const deduct = await call<S['PointsMoved']>(
      'post',
      '/v1/programs/{programId}/members/{memberId}/points/deduct',
      { body: { points: 50, reason: 'correction' } },
      201,
    );
    await call(
      'post',
      '/v1/programs/{programId}/members/{memberId}/points/deduct',
      { body: { points: 1_000_000, reason: 'too much' } },
      422,
    );
    const read = await call<S['MemberRead']>(
      'get',
      '/v1/programs/{programId}/members/{memberId}',
      { query: { after_position: deduct.body.position! } },
      200,
    );
    assert.equal(read.headers.get('incentable-position-reached'), 'true');
    assert.equal(read.body.balance, 650);
    assert.equal(read.body.tier, 'Gold');
    await call(
      'get',
      '/v1/programs/{programId}/members/{memberId}',
      { query: { as_of: award.body.created_at } },
      200,
    );
    await call(
      'get',
      '/v1/programs/{programId}/members/{memberId}',
      { query: { as_of: 'soon' } },
      400,
    );
    await call(
      'get',
      '/v1/programs/{programId}/members',
      { query: { email: 'ada@example.com', limit: '1' } },
      200,
    );
    await call('get', '/v1/programs/{programId}/members', { query: { limit: '0' } }, 400);
    await call(
      'get',
      '/v1/programs/{programId}/members/{memberId}/transactions',
      { query: { limit: '10' } },
      200,
    );
    await call(
      'patch',
      '/v1/programs/{programId}/members/{memberId}',
      { body: { name: 'Ada L.', tier: 'Bronze', tier_locked_until: '2030-01-01T00:00:00Z' } },
      200,
    );
    await call(
      'patch',
      '/v1/programs/{programId}/members/{memberId}',
      { body: { email: 'bob@example.com' } },
      409,
    );

    ids.transactionId = deduct.body.transaction_id;
    await call(
      'post',
      '/v1/programs/{programId}/transactions/{transactionId}/reverse',
      { body: { reason: 'mistake' } },
      201,
    );
    await call(
      'post',
      '/v1/programs/{programId}/transactions/{transactionId}/reverse',
      { body: { reason: 'mistake' } },
      409,
    );
    ids.transactionId = 'txn_missing';
    await call(
      'post',
      '/v1/programs/{programId}/transactions/{transactionId}/reverse',
      { body: { reason: 'x' } },
      404,
    );

    ids.memberId = other.body.id;
    await call('post', '/v1/programs/{programId}/members/{memberId}/deactivate', { body: {} }, 200);
    await call('post', '/v1/programs/{programId}/members/{memberId}/reactivate', { body: {} }, 200);
    ids.memberId = 'mem_missing';
    await call('post', '/v1/programs/{programId}/members/{memberId}/deactivate', { body: {} }, 404);
    await call('post', '/v1/programs/{programId}/members/{memberId}/reactivate', { body: {} }, 404);
    await call('get', '/v1/programs/{programId}/members/{memberId}', {}, 404);
    await call('get', '/v1/programs/{programId}/members/{memberId}/transactions', {}, 404);
    await call('get', '/v1/programs/{programId}/members/{memberId}/orders', {}, 404);
    ids.memberId = member.body.id;
  });

  it('answers the reward and order routes as documented', async () => {
    const mug = await call<S['RewardCreated']>(
      'post',
      '/v1/programs/{programId}/rewards',
      { body: { name: 'Mug', points_cost: 100, stock: 10, kind: 'physical' } },
      201,
    );
    ids.rewardId = mug.body.id;
    await call(
      'post',
      '/v1/programs/{programId}/rewards',
      { body: { name: 'Mug', points_cost: 1, kind: 'box' } },
      400,
    );
    await call('get', '/v1/programs/{programId}/rewards', { query: { limit: '5' } }, 200);
    await call(
      'get',
      '/v1/programs/{programId}/rewards/{rewardId}',
      { query: { after_position: mug.body.position! } },
      200,
    );
    await call(
      'patch',
      '/v1/programs/{programId}/rewards/{rewardId}',
      { body: { stock: 20 } },
      200,
    );
    const first = await call<S['OrderPlaced']>(
      'post',
      '/v1/programs/{programId}/members/{memberId}/redemptions',
      { body: { reward_id: ids.rewardId } },
      201,
    );
    const second = await call<S['OrderPlaced']>(
      'post',
      '/v1/programs/{programId}/members/{memberId}/redemptions',
      { body: { reward_id: ids.rewardId } },
      201,
    );
    await call(
      'post',
      '/v1/programs/{programId}/members/{memberId}/redemptions',
      { body: { reward_id: 'nope' } },
      400,
    );
    await settle(app.runtime);
    await call('get', '/v1/programs/{programId}/orders', { query: { status: 'redeemed' } }, 200);
    await call('get', '/v1/programs/{programId}/orders', { query: { status: 'lost' } }, 400);
    await call('get', '/v1/programs/{programId}/members/{memberId}/orders', {}, 200);
    ids.orderId = first.body.id;
    await call('get', '/v1/programs/{programId}/orders/{orderId}', {}, 200);
    await call(
      'post',
      '/v1/programs/{programId}/orders/{orderId}/ship',
      { body: { carrier: 'DHL', tracking_number: '1Z' } },
      200,
    );
    await call('post', '/v1/programs/{programId}/orders/{orderId}/deliver', { body: {} }, 200);
    ids.orderId = second.body.id;
    await call(
      'post',
      '/v1/programs/{programId}/orders/{orderId}/cancel',
      { body: { reason: 'changed mind' } },
      200,
    );
    await call(
      'post',
      '/v1/programs/{programId}/orders/{orderId}/ship',
      { body: { carrier: 'DHL', tracking_number: '2Z' } },
      422,
    );
    ids.orderId = 'ord_missing';
    await call('post', '/v1/programs/{programId}/orders/{orderId}/deliver', { body: {} }, 404);
    await call('post', '/v1/programs/{programId}/orders/{orderId}/cancel', { body: {} }, 404);
    await call('get', '/v1/programs/{programId}/orders/{orderId}', {}, 404);
    ids.rewardId = 'rwd_missing';
    await call(
      'patch',
      '/v1/programs/{programId}/rewards/{rewardId}',
      { body: { active: false } },
      404,
    );
    await call('get', '/v1/programs/{programId}/rewards/{rewardId}', {}, 404);
  });

  it('answers the leaderboard routes as documented', async () => {
    const board = await call<S['LeaderboardCreated']>(
      'post',
      '/v1/programs/{programId}/leaderboards',
      { body: { name: 'Top', period: 'weekly' } },
      201,
    );
    ids.leaderboardId = board.body.id;
    await call(
      'post',
      '/v1/programs/{programId}/leaderboards',
      { body: { name: 'Top', period: 'daily' } },
      400,
    );
    await call(
      'post',
      '/v1/programs/{programId}/members/{memberId}/points/award',
      { body: { points: 10, reason: 'score' } },
      201,
    );
    await settle(app.runtime);
    await call('get', '/v1/programs/{programId}/leaderboards', {}, 200);
    await call('get', '/v1/programs/{programId}/leaderboards/{leaderboardId}', {}, 200);
    await call('get', '/v1/programs/{programId}/leaderboards/{leaderboardId}/standings', {}, 200);
    const closed = await call<S['PeriodClosed']>(
      'post',
      '/v1/programs/{programId}/leaderboards/{leaderboardId}/close-period',
      { body: {} },
      200,
    );
    assert.ok(closed.body.ended, closed.text);
    await settle(app.runtime);
    await call('get', '/v1/programs/{programId}/leaderboards/{leaderboardId}/periods', {}, 200);
    ids.periodId = closed.body.ended.period_id;
    await call(
      'get',
      '/v1/programs/{programId}/leaderboards/{leaderboardId}/periods/{periodId}/standings',
      { query: { limit: '10' } },
      200,
    );
    ids.periodId = '20000103T000000.000Z';
    await call(
      'get',
      '/v1/programs/{programId}/leaderboards/{leaderboardId}/periods/{periodId}/standings',
      {},
      404,
    );
    ids.periodId = 'last-week';
    await call(
      'get',
      '/v1/programs/{programId}/leaderboards/{leaderboardId}/periods/{periodId}/standings',
      {},
      400,
    );
    ids.leaderboardId = 'lb_missing';
    await call('get', '/v1/programs/{programId}/leaderboards/{leaderboardId}/standings', {}, 404);
    await call('get', '/v1/programs/{programId}/leaderboards/{leaderboardId}/periods', {}, 404);
    await call('get', '/v1/programs/{programId}/leaderboards/{leaderboardId}', {}, 404);
    await call(
      'post',
      '/v1/programs/{programId}/leaderboards/{leaderboardId}/close-period',
      { body: {} },
      404,
    );
  });

  it('answers the webhook routes as documented', async () => {
    await call('get', '/v1/webhook-event-types', {}, 200);
    const endpoint = await call<S['WebhookEndpointCreated']>(
      'post',
      '/v1/programs/{programId}/webhook-endpoints',
      { body: { url: 'http://127.0.0.1:9/hooks', events: ['*'], rate_limit_per_second: 5 } },
      201,
    );
    ids.endpointId = endpoint.body.id;
    await call(
      'post',
      '/v1/programs/{programId}/webhook-endpoints',
      { body: { url: 'http://127.0.0.1:9/hooks', events: ['no.such'] } },
      400,
    );
    await call('get', '/v1/programs/{programId}/webhook-endpoints', {}, 200);
    await call('get', '/v1/programs/{programId}/webhook-endpoints/{endpointId}', {}, 200);
    await call(
      'patch',
      '/v1/programs/{programId}/webhook-endpoints/{endpointId}',
      { body: { description: 'shop' } },
      200,
    );
    await call('get', '/v1/programs/{programId}/webhook-endpoints/{endpointId}/secret', {}, 200);
    await call(
      'post',
      '/v1/programs/{programId}/webhook-endpoints/{endpointId}/rotate-secret',
      { body: {} },
      200,
    );
    const test = await call<S['TestEventQueued']>(
      'post',
      '/v1/programs/{programId}/webhook-endpoints/{endpointId}/test',
      { body: { type: 'points.awarded' } },
      202,
    );
    await call(
      'post',
      '/v1/programs/{programId}/webhook-endpoints/{endpointId}/replay',
      { body: { since: '2020-01-01T00:00:00Z' } },
      202,
    );
    await call(
      'post',
      '/v1/programs/{programId}/webhook-endpoints/{endpointId}/replay',
      { body: { since: '2020-01-01T00:00:00Z', until: '2019-01-01T00:00:00Z' } },
      400,
    );
    await call(
      'get',
      '/v1/programs/{programId}/webhook-deliveries',
      { query: { endpoint_id: ids.endpointId, limit: '5' } },
      200,
    );
    await call(
      'get',
      '/v1/programs/{programId}/webhook-deliveries',
      { query: { status: 'lost' } },
      400,
    );
    ids.deliveryId = test.body.delivery_id;
    await call('get', '/v1/programs/{programId}/webhook-deliveries/{deliveryId}', {}, 200);
    await call(
      'post',
      '/v1/programs/{programId}/webhook-deliveries/{deliveryId}/redeliver',
      { body: {} },
      202,
    );
    ids.deliveryId = 'wdl_missing';
    await call('get', '/v1/programs/{programId}/webhook-deliveries/{deliveryId}', {}, 404);
    await call(
      'get',
      '/v1/programs/{programId}/webhook-events',
      { query: { type: 'points.awarded' } },
      200,
    );

    // The stream: its headers and the `ready` event, then the client goes away.
    const controller = new AbortController();
    const response = await fetch(`${app.url}/v1/programs/${ids.programId}/webhook-events/stream`, {
      headers: { authorization: `Bearer ${app.rootKey}` },
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    let text = '';
    while (!text.includes('event: ready')) {
      const chunk = await reader.read();
      assert.ok(!chunk.done, 'the stream sends ready before it ends');
      text += Buffer.from(chunk.value).toString('utf8');
    }
    controller.abort();
    responses.check('get', '/v1/programs/{programId}/webhook-events/stream', {
      status: response.status,
      headers: response.headers,
      text,
    });
    assert.equal(response.status, 200);
    await call(
      'get',
      '/v1/programs/{programId}/webhook-events/stream',
      { query: { after: 'x' } },
      400,
    );

    await call('delete', '/v1/programs/{programId}/webhook-endpoints/{endpointId}', {}, 204);
    await call('get', '/v1/programs/{programId}/webhook-endpoints/{endpointId}', {}, 404);
    await call(
      'patch',
      '/v1/programs/{programId}/webhook-endpoints/{endpointId}',
      { body: { enabled: false } },
      404,
    );
    await call('get', '/v1/programs/{programId}/webhook-endpoints/{endpointId}/secret', {}, 404);
    await call(
      'post',
      '/v1/programs/{programId}/webhook-endpoints/{endpointId}/rotate-secret',
      { body: {} },
      404,
    );
    await call(
      'post',
      '/v1/programs/{programId}/webhook-endpoints/{endpointId}/test',
      { body: { type: 'points.awarded' } },
      404,
    );
    await call('delete', '/v1/programs/{programId}/webhook-endpoints/{endpointId}', {}, 404);
  });

  it('answers the audit routes as documented', async () => {
    await checkpointNow();
    await call('get', '/v1/audit/public-key', {}, 200);
    const checkpoints = await call<S['CheckpointList']>(
      'get',
      '/v1/audit/checkpoints',
      { query: { limit: '2' } },
      200,
    );
    const size = String(checkpoints.body.data[0]!.size);
    await call('get', '/v1/audit/proofs/consistency', { query: { from: '1', to: size } }, 200);
    await call(
      'get',
      '/v1/audit/proofs/consistency',
      { query: { from: '1', to: '999999999' } },
      400,
    );
    await call('get', '/v1/programs/{programId}/audit/events', { query: { limit: '5' } }, 200);
    await call('get', '/v1/programs/{programId}/audit/events', { query: { limit: 'many' } }, 400);
    await call('get', '/v1/programs/{programId}/audit/verify', {}, 200);
    await call('get', '/v1/programs/{programId}/members/{memberId}/statement', {}, 200);
    await call(
      'get',
      '/v1/programs/{programId}/members/{memberId}/statement',
      { query: { as_of: 'soon' } },
      400,
    );
  });

  it('generates, from the served document, the types committed in test/support', async () => {
    const generated = await openApiTypes(served);
    assert.ok(
      generated === (await readFile(typesFile, 'utf8')),
      'test/support/openapiTypes.ts is stale: node --import tsx test/support/generateOpenApiTypes.ts',
    );
  });

  it("runs the docs' award flow through a client generated from the document", async () => {
    const client = createClient<paths>({ baseUrl: app.url });
    // Every answer the client gets is checked against the document too.
    client.use({
      onResponse: async ({ request, response, schemaPath }) => {
        const text = await response.clone().text();
        responses.check(request.method, schemaPath, {
          status: response.status,
          headers: response.headers,
          text,
        });
      },
    });
    const root = { Authorization: `Bearer ${app.rootKey}` };
    const program = await client.POST('/v1/programs', {
      headers: root,
      body: {
        name: 'Q2 Sales Incentive',
        tiers: [
          { name: 'Silver', min_points: 0 },
          { name: 'Gold', min_points: 5000 },
        ],
        tier_basis: 'lifetime',
        points_expiry: { mode: 'per_award', days: 365 },
        timezone: 'Europe/Berlin',
        notification_email: 'ops@example.com',
      },
    });
    assert.ok(program.data, JSON.stringify(program.error));
    const programId = program.data.id;
    const key = await client.POST('/v1/programs/{programId}/api-keys', {
      headers: root,
      params: { path: { programId } },
      body: { label: 'crm backend' },
    });
    assert.ok(key.data, JSON.stringify(key.error));
    const auth = { Authorization: `Bearer ${key.data.key}` };
    const member = await client.POST('/v1/programs/{programId}/members', {
      headers: auth,
      params: { path: { programId } },
      body: {
        email: 'ana@example.com',
        name: 'Ana Silva',
        external_id: 'crm-1042',
        attributes: { region: 'EMEA' },
      },
    });
    assert.ok(member.data, JSON.stringify(member.error));
    const memberId = member.data.id;
    const found = await client.GET('/v1/programs/{programId}/members', {
      headers: auth,
      params: {
        path: { programId },
        query: { external_id: 'crm-1042', after_position: member.data.position },
      },
    });
    assert.equal(found.data?.data[0]?.id, memberId);

    const awardRequest = {
      headers: { ...auth, 'Idempotency-Key': 'q2-target-crm-1042' },
      params: { path: { programId, memberId } },
      body: { points: 5500, reason: 'Q2 Sales Target', reference: 'deal-77' },
    };
    const award = await client.POST(
      '/v1/programs/{programId}/members/{memberId}/points/award',
      awardRequest,
    );
    assert.ok(award.data, JSON.stringify(award.error));
    assert.equal(award.data.new_balance, 5500);
    const repeat = await client.POST(
      '/v1/programs/{programId}/members/{memberId}/points/award',
      awardRequest,
    );
    assert.equal(repeat.response.headers.get('Idempotent-Replayed'), 'true');
    assert.equal(repeat.data?.transaction_id, award.data.transaction_id);

    const read = await client.GET('/v1/programs/{programId}/members/{memberId}', {
      headers: auth,
      params: { path: { programId, memberId }, query: { after_position: award.data.position } },
    });
    assert.ok(read.data, JSON.stringify(read.error));
    assert.equal(read.response.headers.get('Incentable-Position-Reached'), 'true');
    assert.deepEqual(
      {
        balance: read.data.balance,
        lifetime_points: read.data.lifetime_points,
        tier: read.data.tier,
      },
      { balance: 5500, lifetime_points: 5500, tier: 'Gold' },
    );

    const deduction = await client.POST(
      '/v1/programs/{programId}/members/{memberId}/points/deduct',
      {
        headers: auth,
        params: { path: { programId, memberId } },
        body: { points: 500, reason: 'Correction' },
      },
    );
    assert.equal(deduction.data?.new_balance, 5000);
    const ledger = await client.GET('/v1/programs/{programId}/members/{memberId}/transactions', {
      headers: auth,
      params: { path: { programId, memberId }, query: { after_position: deduction.data.position } },
    });
    assert.deepEqual(
      ledger.data?.data.map(({ kind, points, balance }) => ({ kind, points, balance })),
      [
        { kind: 'deducted', points: -500, balance: 5000 },
        { kind: 'awarded', points: 5500, balance: 5500 },
      ],
    );

    const tooMuch = await client.POST('/v1/programs/{programId}/members/{memberId}/points/deduct', {
      headers: auth,
      params: { path: { programId, memberId } },
      body: { points: 999_999, reason: 'Too much' },
    });
    assert.equal(tooMuch.response.status, 422);
    assert.equal(tooMuch.error?.error.code, 'insufficient_points');
  });

  // Last: the address stays blocked for a moment afterwards.
  it('answers bad credentials with 401, then 429 with Retry-After', async () => {
    const bad = `key_${'b'.repeat(20)}.${randomBytes(32).toString('base64url')}`;
    let status = 401;
    for (let i = 0; i < 20 && status === 401; i++)
      status = (await call('get', '/v1/programs/{programId}', { key: bad })).status;
    assert.equal(status, 429);
  });

  it('has called every operation of the document with a success', (t) => {
    const missing = responses.operations.filter(
      (operation) => ![...(responses.seen.get(operation) ?? [])].some((s) => s < 300),
    );
    assert.deepEqual(missing, []);
    const pairs = [...responses.seen].map(
      ([operation, statuses]) => `${operation}: ${[...statuses].sort().join(', ')}`,
    );
    t.diagnostic(`answers checked: ${pairs.length} operations\n${pairs.join('\n')}`);
    const withError = responses.operations.filter((operation) =>
      [...(responses.seen.get(operation) ?? [])].some((s) => s >= 400),
    );
    assert.ok(
      withError.length >= responses.operations.length / 2,
      `${withError.length} with an error`,
    );
  });
});
