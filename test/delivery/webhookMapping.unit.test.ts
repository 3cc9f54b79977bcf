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
];

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
      [],
    );
  });

  it('sends a refund as points.awarded with the refund reason', () => {
    const webhook = toWebhookEvent(mapped[3]!);
    assert.equal(webhook?.type, 'points.awarded');
    assert.deepEqual(webhook?.data, {
      transaction_id: 'txn_4',
      member_id: 'mem_1',
      points: 2500,
      reason: 'Order cancelled',
      new_balance: 5500,
    });
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
    assert.equal(
      toWebhookEvent({ type: 'MemberDeactivated', data: { memberId: 'mem_1', at } }),
      null,
    );
  });
});
