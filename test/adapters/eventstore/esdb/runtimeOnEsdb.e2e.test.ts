import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startStandIn, type StandIn } from '../../../esdbStandIn/server.ts';
import { startTestApp, type TestApp } from '../../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../../support/postgres.ts';
import { startReceiver, type Receiver } from '../../../support/receiver.ts';

/**
 * The whole service with EVENTSTORE=esdb against the stand-in (the real client over real gRPC):
 * the API appends to EventStoreDB, the persistent subscriptions project read models, run the
 * policies and emit webhooks, with Postgres for everything but the events.
 */
describe('the service on EventStoreDB (stand-in)', { skip: skipWithoutPostgres }, () => {
  let standIn: StandIn;
  let app: TestApp;
  let receiver: Receiver;
  before(async () => {
    standIn = await startStandIn();
    receiver = await startReceiver();
    app = await startTestApp({
      env: { EVENTSTORE: 'esdb', ESDB_CONNECTION_STRING: standIn.connectionString },
    });
  });
  after(async () => {
    await app?.stop();
    await receiver?.close();
    await standIn?.stop();
  });

  it('awards points, moves the tier and delivers the signed webhooks', async () => {
    const program = await app.api.post<{ id: string }>('/v1/programs', {
      name: 'On ESDB',
      tiers: [
        { name: 'Silver', min_points: 0 },
        { name: 'Gold', min_points: 100 },
      ],
      notification_email: 'ops@example.com',
    });
    assert.equal(program.status, 201);
    const p = program.body.id;
    const endpoint = await app.api.post<{ id: string }>(`/v1/programs/${p}/webhook-endpoints`, {
      url: receiver.url,
      events: ['points.awarded', 'member.tier_changed'],
    });
    assert.equal(endpoint.status, 201);
    const member = await app.api.post<{ id: string }>(`/v1/programs/${p}/members`, {
      email: 'e@example.com',
      name: 'E',
    });
    assert.equal(member.status, 201);
    const award = await app.api.post<{ new_balance: number; position: string }>(
      `/v1/programs/${p}/members/${member.body.id}/points/award`,
      { points: 150, reason: 'On ESDB' },
    );
    assert.equal(award.status, 201);
    assert.equal(award.body.new_balance, 150);

    const read = await app.api.get<{ balance: number }>(
      `/v1/programs/${p}/members/${member.body.id}?after_position=${award.body.position}`,
    );
    assert.equal(read.body.balance, 150);
    await waitFor('the tier policy to move the member to Gold', async () => {
      const m = await app.api.get<{ tier: string }>(`/v1/programs/${p}/members/${member.body.id}`);
      return m.body.tier === 'Gold';
    });
    await receiver.waitForCount(2, { timeoutMs: 15_000 });
    assert.deepEqual(receiver.received.map((r) => r.headers['x-incentable-event']).sort(), [
      'member.tier_changed',
      'points.awarded',
    ]);
  });

  it('keeps external ids unique through reservation streams on EventStoreDB', async () => {
    const program = await app.api.post<{ id: string }>('/v1/programs', {
      name: 'Unique on ESDB',
      notification_email: 'ops@example.com',
    });
    const p = `/v1/programs/${program.body.id}`;
    const body = { email: 'crm@example.com', name: 'CRM', external_id: 'crm-1' };
    const first = await app.api.post<{ id: string }>(`${p}/members`, body);
    assert.equal(first.status, 201, first.text);
    const again = await app.api.post<{ error: { code: string; member_id: string } }>(
      `${p}/members`,
      { ...body, email: 'CRM@example.com', external_id: 'crm-2' },
    );
    assert.equal(again.status, 409, again.text);
    assert.deepEqual(
      [again.body.error.code, again.body.error.member_id],
      ['member_exists', first.body.id],
    );
    const moved = await app.api.patch(`${p}/members/${first.body.id}`, { external_id: 'crm-2' });
    assert.equal(moved.status, 200, moved.text);
    const successor = await app.api.post(`${p}/members`, {
      email: 'next@example.com',
      name: 'Next',
      external_id: 'crm-1',
    });
    assert.equal(successor.status, 201, successor.text);
  });

  it("closes a leaderboard period once the reactor's esdb checkpoint has reached $all's head", async () => {
    const program = await app.api.post<{ id: string }>('/v1/programs', {
      name: 'Boards on ESDB',
      notification_email: 'ops@example.com',
    });
    const p = program.body.id;
    const board = await app.api.post<{ id: string }>(`/v1/programs/${p}/leaderboards`, {
      name: 'Weekly',
      period: 'weekly',
    });
    assert.equal(board.status, 201);
    const member = await app.api.post<{ id: string }>(`/v1/programs/${p}/members`, {
      email: 'lb@example.com',
      name: 'L',
    });
    const award = await app.api.post(`/v1/programs/${p}/members/${member.body.id}/points/award`, {
      points: 10,
      reason: 'On ESDB',
    });
    assert.equal(award.status, 201);
    const closed = await app.api.post<{ ended: { standings: { points: number }[] } }>(
      `/v1/programs/${p}/leaderboards/${board.body.id}/close-period`,
      {},
    );
    assert.equal(closed.status, 200, closed.text);
    // The close waited for the reactor: the award just made is in the ended period.
    assert.deepEqual(
      closed.body.ended.standings.map((s) => s.points),
      [10],
    );
  });
});
