import * as crypto from 'node:crypto';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { catalogueEntryOf, webhookEventTypes } from '../../../delivery/catalogue.ts';
import { formatCreatedAt } from '../../../delivery/envelope.ts';
import { validate } from '../../delivery/jsonSchemaSubset.ts';
import {
  award,
  createMember,
  createProgram,
  createReward,
  expectStatus,
  runningClock,
  settle,
  startTestApp,
  type LedgerRow,
  type Page,
  type Redemption,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';
import {
  headerOf,
  startReceiver,
  stringHeaders,
  type Receiver,
  type ReceivedWebhook,
} from '../../support/receiver.ts';
import { docsSnippetAccepts, standardWebhooksAccepts } from '../../support/docsSnippet.ts';

const docsAccept = docsSnippetAccepts;
const standardAccepts = standardWebhooksAccepts;

type Envelope = { id: string; type: string; created_at: string; data: Record<string, unknown> };

const createdAtShape = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const dayMs = 86_400_000;

describe('every webhook type, caused by the real API', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let receiver: Receiver;
  let disabledReceiver: Receiver;
  /** Subscribed to "*": receives every type, the ones added after the docs too. */
  let starReceiver: Receiver;
  let starEndpointId: string;
  const clock = runningClock();
  /** Per type: the endpoint subscribed to that type only, its path on the receiver and secret. */
  const endpoints = new Map<string, { id: string; path: string; secret: string }>();
  /** Per type: the data of every webhook the run must cause, in any order. */
  const expected = new Map<string, Record<string, unknown>[]>();
  const expect = (type: string, data: Record<string, unknown>): void => {
    expected.set(type, [...(expected.get(type) ?? []), data]);
  };
  let programId: string;
  let startedAt: Date;

  before(async () => {
    receiver = await startReceiver();
    disabledReceiver = await startReceiver();
    starReceiver = await startReceiver();
    app = await startTestApp({
      clock,
      env: { WEBHOOK_SECRET_KEY: crypto.randomBytes(32).toString('base64') },
    });
    const { api, runtime } = app;

    // Points expire after a day of inactivity. Standard Webhooks verifiers refuse a timestamp
    // more than five minutes from the real time, so instead of moving the clock past real time
    // we start it three days back, record the activity there, and return to the present, which
    // advances the injected clock by three days before the expiry job runs.
    clock.set(new Date(Date.now() - 3 * dayMs));
    const program = await createProgram(api, { points_expiry_days: 1 });
    programId = program.id;
    const dormant = await createMember(api, programId, { name: 'Dormant Member' });
    await award(api, programId, dormant.id, 100, 'Welcome bonus');
    await settle(runtime);
    await runtime.webhookProjection!.caughtUp();
    clock.set(new Date());
    startedAt = new Date(Math.floor(Date.now() / 1000) * 1000);

    const path = (type: string) => `/hook/${type}`;
    for (const type of webhookEventTypes) {
      const created = expectStatus(
        await api.post<{ id: string; secret: string }>(
          `/v1/programs/${programId}/webhook-endpoints`,
          { url: `${receiver.origin}${path(type)}`, events: [type] },
        ),
        201,
      ).body;
      endpoints.set(type, { id: created.id, path: path(type), secret: created.secret });
    }
    starEndpointId = expectStatus(
      await api.post<{ id: string }>(`/v1/programs/${programId}/webhook-endpoints`, {
        url: starReceiver.url,
        events: ['*'],
      }),
      201,
    ).body.id;
    const disabled = expectStatus(
      await api.post<{ id: string }>(`/v1/programs/${programId}/webhook-endpoints`, {
        url: disabledReceiver.url,
        events: ['*'],
      }),
      201,
    ).body;
    expectStatus(
      await api.patch(`/v1/programs/${programId}/webhook-endpoints/${disabled.id}`, {
        enabled: false,
      }),
      200,
    );

    const board = expectStatus(
      await api.post<{ id: string }>(`/v1/programs/${programId}/leaderboards`, {
        name: 'Q2 Sales',
        period: 'quarterly',
      }),
      201,
    ).body;
    await settle(runtime); // the policy reactor learns the board before the award scores on it

    const ann = await createMember(api, programId, {
      email: 'ann.lee@example.com',
      name: 'Ann Lee',
      external_id: 'crm-10042',
      attributes: { region: 'EMEA' },
    });
    expect('member.created', {
      member_id: ann.id,
      email: 'ann.lee@example.com',
      name: 'Ann Lee',
      external_id: 'crm-10042',
      tier: 'Bronze',
      attributes: { region: 'EMEA' },
    });
    expectStatus(
      await api.patch(`/v1/programs/${programId}/members/${ann.id}`, { name: 'Ann Smith' }),
      200,
    );
    expect('member.updated', { member_id: ann.id, changes: { name: 'Ann Smith' } });

    const awarded = await award(api, programId, ann.id, 600, 'Q2 Sales Target');
    expect('points.awarded', {
      transaction_id: awarded.transaction_id,
      member_id: ann.id,
      points: 600,
      reason: 'Q2 Sales Target',
      new_balance: 600,
      kind: 'award',
      reference: null,
    });
    expect('member.tier_changed', {
      member_id: ann.id,
      previous_tier: 'Bronze',
      new_tier: 'Silver',
      reason: 'Points threshold reached',
    });
    expect('leaderboard.position_changed', {
      leaderboard_id: board.id,
      member_id: ann.id,
      previous_position: null,
      new_position: 1,
      points: 600,
    });

    const deducted = expectStatus(
      await api.post<{ transaction_id: string }>(
        `/v1/programs/${programId}/members/${ann.id}/points/deduct`,
        { points: 100, reason: 'Order correction', reference: 'crm-case-77' },
      ),
      201,
    ).body;
    expect('points.deducted', {
      transaction_id: deducted.transaction_id,
      member_id: ann.id,
      points: 100,
      reason: 'Order correction',
      new_balance: 500,
      kind: 'correction',
      reference: 'crm-case-77',
    });

    const reward = await createReward(api, programId, {
      name: 'Amazon Gift Card $25',
      points_cost: 250,
      kind: 'physical',
    });
    const order = expectStatus(
      await api.post<Redemption>(`/v1/programs/${programId}/members/${ann.id}/redemptions`, {
        reward_id: reward.id,
      }),
      201,
    ).body;
    // A redemption moves points too, so it is also a points.deducted, with the order as reason.
    expect('points.deducted', {
      transaction_id: order.transaction_id,
      member_id: ann.id,
      points: 250,
      reason: 'Redeemed: Amazon Gift Card $25',
      new_balance: 250,
      kind: 'redemption',
      reference: order.id,
    });
    expect('reward.redeemed', {
      order_id: order.id,
      member_id: ann.id,
      reward_id: reward.id,
      reward_name: 'Amazon Gift Card $25',
      points_spent: 250,
    });
    expectStatus(
      await api.post(`/v1/programs/${programId}/orders/${order.id}/ship`, {
        carrier: 'UPS',
        tracking_number: '1Z999AA10123456784',
      }),
      200,
    );
    expect('order.shipped', {
      order_id: order.id,
      member_id: ann.id,
      reward_id: reward.id,
      carrier: 'UPS',
      tracking_number: '1Z999AA10123456784',
    });
    expectStatus(await api.post(`/v1/programs/${programId}/orders/${order.id}/deliver`, {}), 200);

    // A second order, cancelled: order.cancelled, and the refund as a points.awarded of its own
    // kind, so a receiver that sums awards can leave it out.
    const second = expectStatus(
      await api.post<Redemption>(`/v1/programs/${programId}/members/${ann.id}/redemptions`, {
        reward_id: reward.id,
      }),
      201,
    ).body;
    expect('points.deducted', {
      transaction_id: second.transaction_id,
      member_id: ann.id,
      points: 250,
      reason: 'Redeemed: Amazon Gift Card $25',
      new_balance: 0,
      kind: 'redemption',
      reference: second.id,
    });
    expect('reward.redeemed', {
      order_id: second.id,
      member_id: ann.id,
      reward_id: reward.id,
      reward_name: 'Amazon Gift Card $25',
      points_spent: 250,
    });
    expectStatus(
      await api.post(`/v1/programs/${programId}/orders/${second.id}/cancel`, {
        reason: 'Out of stock at the supplier',
      }),
      200,
    );
    expect('order.cancelled', {
      order_id: second.id,
      member_id: ann.id,
      reward_id: reward.id,
      reason: 'Out of stock at the supplier',
      points_refunded: 250,
    });
    await settle(runtime);
    const refund = expectStatus(
      await api.get<Page<LedgerRow>>(`/v1/programs/${programId}/members/${ann.id}/transactions`),
      200,
    ).body.data.find((row) => row.kind === 'refunded');
    assert.ok(refund, 'the ledger shows the refund');
    expect('points.awarded', {
      transaction_id: refund.transaction_id,
      member_id: ann.id,
      points: 250,
      reason: `Refund of order ${second.id}`,
      new_balance: 250,
      kind: 'refund',
      reference: second.id,
    });

    const leaver = await createMember(api, programId, { name: 'Leaving Member' });
    expect('member.created', {
      member_id: leaver.id,
      email: leaver.email,
      name: 'Leaving Member',
      external_id: null,
      tier: 'Bronze',
      attributes: {},
    });
    expectStatus(
      await api.post(`/v1/programs/${programId}/members/${leaver.id}/deactivate`, {}),
      200,
    );
    expect('member.deactivated', { member_id: leaver.id, reason: null });
    expectStatus(
      await api.post(`/v1/programs/${programId}/members/${leaver.id}/reactivate`, {}),
      200,
    );
    expect('member.reactivated', { member_id: leaver.id });

    await settle(app.runtime); // the award is scored (policy reactor) before the period closes
    const closed = expectStatus(
      await api.post<{ ended: { period_id: string; period_start: string; period_end: string } }>(
        `/v1/programs/${programId}/leaderboards/${board.id}/close-period`,
        {},
      ),
      200,
    ).body;
    expect('leaderboard.period_ended', {
      leaderboard_id: board.id,
      period_start: formatCreatedAt(new Date(closed.ended.period_start)),
      period_end: formatCreatedAt(new Date(closed.ended.period_end)),
      standings: [{ position: 1, member_id: ann.id, points: 600 }],
      period_id: closed.ended.period_id,
    });

    const report = await runtime.jobs.expiry();
    assert.deepEqual(report, { job: 'expiry', ran: true, changed: 1 });
    await settle(runtime);
    const ledger = expectStatus(
      await api.get<Page<LedgerRow>>(
        `/v1/programs/${programId}/members/${dormant.id}/transactions`,
      ),
      200,
    ).body;
    const expiredRow = ledger.data.find((row) => row.kind === 'expired');
    assert.ok(expiredRow, 'the ledger shows the expiry');
    expect('points.expired', {
      transaction_id: expiredRow.transaction_id,
      member_id: dormant.id,
      points: 100,
      reason: 'No activity for 1 days (points expiry policy)',
      new_balance: 0,
      kind: 'expiry',
      reference: null,
    });

    const orderView = expectStatus(
      await api.get<{ history: { status: string; at: string }[] }>(
        `/v1/programs/${programId}/orders/${order.id}`,
      ),
      200,
    ).body;
    const deliveredAt = orderView.history.find((h) => h.status === 'delivered')?.at;
    assert.ok(deliveredAt, 'the order history shows the delivery');
    expect('order.delivered', {
      order_id: order.id,
      member_id: ann.id,
      reward_id: reward.id,
      delivered_at: formatCreatedAt(new Date(deliveredAt)),
    });

    await runtime.webhookProjection!.caughtUp();
    // Every delivery the projector queued has been answered and recorded: nothing is in flight.
    await waitFor(
      'every queued delivery to be delivered',
      async () => {
        const rows = await sql<{ n: number }>`
          select count(*)::int as n from webhook_deliveries where status <> 'delivered'`.execute(
          runtime.database.db,
        );
        const total = [...expected.values()].reduce((n, list) => n + list.length, 0);
        return (
          rows.rows[0]!.n === 0 &&
          receiver.received.length >= total &&
          starReceiver.received.length >= total
        );
      },
      15_000,
    );
  });

  after(async () => {
    await app?.stop();
    await receiver?.close();
    await disabledReceiver?.close();
    await starReceiver?.close();
  });

  /** What the endpoint of `type` received: exactly as many webhooks as the run caused. */
  const deliveredOf = (type: string): ReceivedWebhook[] => {
    const got = receiver.at(endpoints.get(type)!.path);
    const want = expected.get(type)?.length ?? 0;
    assert.equal(
      got.length,
      want,
      `${type}: ${want} webhook(s) to its endpoint, got ${got.length}`,
    );
    return got;
  };
  const byJson = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));

  it('queues exactly one delivery per type to the endpoint subscribed to it, none elsewhere', async () => {
    const rows = await sql<{ endpoint_id: string; type: string; n: number }>`
      select d.endpoint_id, v.type, count(*)::int as n
      from webhook_deliveries d join webhook_envelopes v using (envelope_id)
      where d.endpoint_id <> ${starEndpointId}
      group by 1, 2 order by 2`.execute(app.runtime.database.db);
    assert.deepEqual(
      rows.rows.map((r) => [r.endpoint_id, r.type, r.n]),
      [...webhookEventTypes]
        .filter((type) => expected.has(type))
        .sort()
        .map((type) => [endpoints.get(type)!.id, type, expected.get(type)!.length]),
    );
    const total = [...expected.values()].reduce((n, list) => n + list.length, 0);
    assert.equal(receiver.received.length, total, 'no other request arrived');
  });

  it('sends an endpoint subscribed to "*" every webhook, the new types included', () => {
    const types = starReceiver.received.map((got) => (JSON.parse(got.body) as Envelope).type);
    const total = [...expected.values()].reduce((n, list) => n + list.length, 0);
    assert.equal(types.length, total);
    for (const type of ['order.cancelled', 'member.deactivated']) assert.ok(types.includes(type));
  });

  it('sends nothing to a disabled endpoint', () => {
    assert.equal(disabledReceiver.received.length, 0);
  });

  for (const type of webhookEventTypes) {
    describe(type, () => {
      it('arrives with the documented envelope and exactly the data the API call implies', () => {
        const data: unknown[] = [];
        for (const got of deliveredOf(type)) {
          assert.equal(got.method, 'POST');
          assert.equal(headerOf(got, 'content-type'), 'application/json');
          assert.equal(headerOf(got, 'x-incentable-event'), type);
          assert.equal(got.headers['x-incentable-test'], undefined);
          const envelope = JSON.parse(got.body) as Envelope;
          assert.deepEqual(Object.keys(envelope), ['id', 'type', 'created_at', 'data']);
          assert.match(got.body, /^\{"id":"evt_[a-z2-7]{24}","type":"[a-z_.]+","created_at":"/);
          assert.equal(envelope.type, type);
          assert.equal(headerOf(got, 'webhook-id'), envelope.id);
          assert.match(envelope.created_at, createdAtShape);
          const createdAt = new Date(envelope.created_at).getTime();
          assert.ok(
            createdAt >= startedAt.getTime() && createdAt <= got.at,
            `created_at ${envelope.created_at} lies within the run`,
          );
          assert.deepEqual(validate(catalogueEntryOf(type).schema, envelope.data), []);
          data.push(envelope.data);
        }
        assert.deepEqual(data.sort(byJson), [...(expected.get(type) ?? [])].sort(byJson));
      });

      it("is accepted by the docs' snippet and by standardwebhooks, and a tampered body by neither", () => {
        for (const got of deliveredOf(type)) {
          const { secret } = endpoints.get(type)!;
          const signature = headerOf(got, 'x-incentable-signature');
          assert.equal(docsAccept(got.body, signature, secret), true, 'docs snippet');
          assert.equal(standardAccepts(secret, got.body, stringHeaders(got)), true, 'standard');
          const tampered = got.body.replace(/"data":\{/, '"data":{"x":1,');
          assert.notEqual(tampered, got.body);
          assert.equal(docsAccept(tampered, signature, secret), false, 'docs snippet, tampered');
          assert.equal(standardAccepts(secret, tampered, stringHeaders(got)), false, 'tampered');
          const otherSecret = endpoints.get(
            type === 'points.awarded' ? 'points.deducted' : 'points.awarded',
          )!.secret;
          assert.equal(docsAccept(got.body, signature, otherSecret), false, 'another secret');
          assert.equal(standardAccepts(otherSecret, got.body, stringHeaders(got)), false);
        }
      });
    });
  }

  it('records the captured payloads for docs/webhooks.md', () => {
    const captured = Object.fromEntries(
      webhookEventTypes.map((type) => [
        type,
        deliveredOf(type).map((got) => JSON.parse(got.body) as Envelope),
      ]),
    );
    mkdirSync('test-results', { recursive: true });
    writeFileSync('test-results/webhook-payloads.json', `${JSON.stringify(captured, null, 2)}\n`);
    assert.equal(Object.keys(captured).length, webhookEventTypes.length);
  });

  it('causes every type', () => {
    assert.deepEqual(
      webhookEventTypes.filter((type) => !expected.has(type)),
      [],
    );
  });
});
