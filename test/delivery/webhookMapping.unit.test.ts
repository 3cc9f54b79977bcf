import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { catalogueEntryOf, webhookEventTypes } from '../../delivery/catalogue.ts';
import { toWebhookEvent } from '../../delivery/webhookMapping.ts';
import type { DomainEvent } from '../../domain/events.ts';
import { validate } from './jsonSchemaSubset.ts';

const at = '2024-06-15T14:30:00.123Z';
const totals = { newBalance: 5500, lifetimePoints: 9000, at };

const mapped: DomainEvent[] = [
  {
    type: 'PointsAwarded',
    data: {
      transactionId: 'txn_1',
      memberId: 'mem_1',
      points: 500,
      reason: 'Q2 Sales Target',
      reference: null,
      ...totals,
    },
  },
  {
    type: 'PointsDeducted',
    data: {
      transactionId: 'txn_2',
      memberId: 'mem_1',
      points: 200,
      reason: 'Correction',
      reference: 'r',
      ...totals,
    },
  },
  {
    type: 'PointsExpired',
    data: { transactionId: 'txn_3', memberId: 'mem_1', points: 300, reason: 'Inactive', ...totals },
  },
  {
    type: 'PointsRefunded',
    data: {
      transactionId: 'txn_4',
      orderId: 'ord_1',
      memberId: 'mem_1',
      points: 2500,
      reason: 'Order cancelled',
      ...totals,
    },
  },
  {
    type: 'MemberRegistered',
    data: {
      memberId: 'mem_1',
      programId: 'prg_1',
      email: 'jane@example.com',
      name: 'Jane',
      externalId: null,
      attributes: { region: 'EMEA' },
      tier: null,
      at,
    },
  },
  {
    type: 'MemberUpdated',
    data: { memberId: 'mem_1', changes: { name: 'Jane Smith', externalId: 'crm-1' }, at },
  },
  {
    type: 'MemberTierChanged',
    data: {
      memberId: 'mem_1',
      previousTier: 'Silver',
      newTier: 'Gold',
      reason: 'Points threshold reached',
      at,
    },
  },
  {
    type: 'RewardRedeemed',
    data: {
      transactionId: 'txn_5',
      orderId: 'ord_1',
      memberId: 'mem_1',
      rewardId: 'rwd_1',
      rewardName: 'Gift Card',
      pointsSpent: 2500,
      ...totals,
    },
  },
  {
    type: 'OrderShipped',
    data: {
      orderId: 'ord_1',
      memberId: 'mem_1',
      rewardId: 'rwd_1',
      carrier: 'UPS',
      trackingNumber: '1Z999',
      at,
    },
  },
  { type: 'OrderDelivered', data: { orderId: 'ord_1', memberId: 'mem_1', rewardId: 'rwd_1', at } },
  {
    type: 'PositionChanged',
    data: {
      leaderboardId: 'lb_1',
      memberId: 'mem_1',
      previousPosition: null,
      newPosition: 1,
      points: 500,
      at,
    },
  },
  {
    type: 'PeriodEnded',
    data: {
      leaderboardId: 'lb_1',
      periodStart: '2024-04-01T00:00:00.000Z',
      periodEnd: '2024-07-01T00:00:00.000Z',
      standings: [{ position: 1, memberId: 'mem_1', points: 500 }],
      at,
    },
  },
  {
    type: 'OrderCancelled',
    data: {
      orderId: 'ord_1',
      memberId: 'mem_1',
      rewardId: 'rwd_1',
      pointsSpent: 2500,
      reason: 'Out of stock',
      at,
    },
  },
  { type: 'MemberDeactivated', data: { memberId: 'mem_1', at } },
  { type: 'MemberReactivated', data: { memberId: 'mem_1', at } },
  {
    type: 'PointsReversed',
    data: {
      transactionId: 'txn_r1',
      reversalOf: 'txn_1',
      reversed: 'award',
      memberId: 'mem_1',
      points: 500,
      reason: 'Entered in error',
      reference: null,
      newBalance: -100,
      lifetimePoints: 0,
      at,
    },
  },
];

/** Catalogue types no domain event causes yet. */
const awaitingDomainEvent: readonly string[] = [];

const deduction = (data: {
  reason: string;
  reference: string | null;
  kind?: 'correction' | 'redemption';
}): DomainEvent => ({
  type: 'PointsDeducted',
  data: { transactionId: 'txn_9', memberId: 'mem_1', points: 250, ...data, ...totals },
});
const orderId = 'ord_0123456789abcdefghij';

describe('the webhook mapping', () => {
  it('maps every mapped domain event to data its catalogue schema accepts', () => {
    for (const event of mapped) {
      const webhook = toWebhookEvent(event);
      assert.ok(webhook, event.type);
      assert.deepEqual(
        validate(catalogueEntryOf(webhook.type).schema, webhook.data),
        [],
        event.type,
      );
      assert.equal(webhook.createdAt.toISOString(), at);
    }
  });

  it('covers every catalogue type', () => {
    const types = new Set(mapped.map((e) => toWebhookEvent(e)?.type));
    assert.deepEqual(
      [...webhookEventTypes].filter((t) => !types.has(t)),
      awaitingDomainEvent,
    );
  });

  it('sends a refund as points.awarded of kind refund, the order as its reference', () => {
    const webhook = toWebhookEvent(mapped[3]!);
    assert.equal(webhook?.type, 'points.awarded');
    assert.deepEqual(webhook?.data, {
      transaction_id: 'txn_4',
      member_id: 'mem_1',
      points: 2500,
      reason: 'Order cancelled',
      new_balance: 5500,
      kind: 'refund',
      reference: 'ord_1',
    });
  });

  it('names the kind and reference of an award, a correction and an expiry', () => {
    const pick = (n: number) => {
      const data = toWebhookEvent(mapped[n]!)?.data;
      return [data?.kind, data?.reference];
    };
    assert.deepEqual(pick(0), ['award', null]);
    assert.deepEqual(pick(1), ['correction', 'r']);
    assert.deepEqual(pick(2), ['expiry', null]);
  });

  it('tells a redemption from a correction by the kind the event records', () => {
    const kindOf = (event: DomainEvent) => toWebhookEvent(event)?.data.kind;
    const redeemed = { reason: 'Redeemed: Mug', reference: orderId };
    assert.equal(kindOf(deduction({ ...redeemed, kind: 'redemption' })), 'redemption');
    assert.equal(kindOf(deduction({ ...redeemed, kind: 'correction' })), 'correction');
  });

  it('infers the kind of a deduction recorded before kinds, from what RedeemReward wrote', () => {
    const kindOf = (data: { reason: string; reference: string | null }) =>
      toWebhookEvent(deduction(data))?.data.kind;
    assert.equal(kindOf({ reason: 'Redeemed: Mug', reference: orderId }), 'redemption');
    assert.equal(kindOf({ reason: 'Redeemed: Mug', reference: null }), 'correction');
    assert.equal(kindOf({ reason: 'Redeemed: Mug', reference: 'crm-7' }), 'correction');
    assert.equal(kindOf({ reason: 'Order correction', reference: orderId }), 'correction');
  });

  it('maps a cancellation to order.cancelled with the points it refunds', () => {
    assert.deepEqual(toWebhookEvent(mapped[12]!), {
      type: 'order.cancelled',
      createdAt: new Date(at),
      data: {
        order_id: 'ord_1',
        member_id: 'mem_1',
        reward_id: 'rwd_1',
        reason: 'Out of stock',
        points_refunded: 2500,
      },
    });
  });

  it('maps a deactivation to member.deactivated with no reason', () => {
    assert.deepEqual(toWebhookEvent(mapped[13]!)?.data, { member_id: 'mem_1', reason: null });
  });

  it('names member changes in snake_case and only those that changed', () => {
    assert.deepEqual(toWebhookEvent(mapped[5]!)?.data, {
      member_id: 'mem_1',
      changes: { name: 'Jane Smith', external_id: 'crm-1' },
    });
  });

  it('prints timestamps inside data as the docs do', () => {
    assert.equal(toWebhookEvent(mapped[9]!)?.data.delivered_at, '2024-06-15T14:30:00Z');
    assert.equal(toWebhookEvent(mapped[11]!)?.data.period_start, '2024-04-01T00:00:00Z');
  });

  it('keeps period_ended at its documented top-ten fields, plus the period_id of the rest', () => {
    assert.deepEqual(toWebhookEvent(mapped[11]!)?.data, {
      leaderboard_id: 'lb_1',
      period_start: '2024-04-01T00:00:00Z',
      period_end: '2024-07-01T00:00:00Z',
      standings: [{ position: 1, member_id: 'mem_1', points: 500 }],
      period_id: '20240401T000000.000Z',
    });
  });

  it('maps events customers are not told about to null', () => {
    assert.equal(
      toWebhookEvent({
        type: 'ScoreRecorded',
        data: {
          leaderboardId: 'lb_1',
          memberId: 'mem_1',
          points: 1,
          score: 1,
          transactionId: 'txn_1',
          at,
        },
      }),
      null,
    );
  });
});
