import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PointsAccountEvent } from '../../domain/pointsAccount.ts';
import { leaderboardPolicy, tierPolicy } from '../../domain/policies.ts';
import type { Tier } from '../../domain/program.ts';

const now = new Date('2024-06-15T14:30:00.000Z');
const at = now.toISOString();
const tiers: Tier[] = [
  { name: 'Bronze', minPoints: 0 },
  { name: 'Silver', minPoints: 1000 },
  { name: 'Gold', minPoints: 5000 },
];

const awarded = (
  points: number,
  newBalance: number,
  lifetimePoints: number,
): PointsAccountEvent => ({
  type: 'PointsAwarded',
  data: {
    transactionId: 'txn_1',
    memberId: 'mem_1',
    points,
    reason: 'Bonus',
    reference: null,
    newBalance,
    lifetimePoints,
    at,
  },
});
const deducted = (
  points: number,
  newBalance: number,
  lifetimePoints: number,
): PointsAccountEvent => ({
  type: 'PointsDeducted',
  data: {
    transactionId: 'txn_2',
    memberId: 'mem_1',
    points,
    reason: 'Correction',
    reference: null,
    newBalance,
    lifetimePoints,
    at,
  },
});
const refunded: PointsAccountEvent = {
  type: 'PointsRefunded',
  data: {
    transactionId: 'txn_3',
    orderId: 'ord_1',
    memberId: 'mem_1',
    points: 500,
    reason: 'Refund of order ord_1',
    newBalance: 1200,
    lifetimePoints: 1500,
    at,
  },
};

describe('tier policy', () => {
  it('promotes when the lifetime total reaches a threshold', () => {
    assert.deepEqual(
      tierPolicy({
        event: awarded(200, 1000, 1000),
        program: { tiers, tierBasis: 'lifetime' },
        currentTier: 'Bronze',
        now,
      }),
      {
        type: 'ChangeTier',
        data: { memberId: 'mem_1', newTier: 'Silver', reason: 'Points threshold reached', now },
      },
    );
  });

  it('skips tiers when a big award passes several thresholds', () => {
    const command = tierPolicy({
      event: awarded(6000, 6000, 6000),
      program: { tiers, tierBasis: 'lifetime' },
      currentTier: null,
      now,
    });
    assert.equal(command?.data.newTier, 'Gold');
    assert.equal(command?.data.reason, 'Points threshold reached');
  });

  it('issues nothing when the tier is already right', () => {
    assert.equal(
      tierPolicy({
        event: awarded(10, 1500, 1500),
        program: { tiers, tierBasis: 'lifetime' },
        currentTier: 'Silver',
        now,
      }),
      null,
    );
  });

  it('keeps a lifetime tier when the balance falls', () => {
    assert.equal(
      tierPolicy({
        event: deducted(900, 100, 1000),
        program: { tiers, tierBasis: 'lifetime' },
        currentTier: 'Silver',
        now,
      }),
      null,
    );
  });

  it('demotes on a balance basis when the balance falls below the threshold', () => {
    assert.deepEqual(
      tierPolicy({
        event: deducted(900, 100, 1000),
        program: { tiers, tierBasis: 'balance' },
        currentTier: 'Silver',
        now,
      }),
      {
        type: 'ChangeTier',
        data: { memberId: 'mem_1', newTier: 'Bronze', reason: 'Points fell below threshold', now },
      },
    );
  });

  it('removes the tier when the value is below every threshold', () => {
    const command = tierPolicy({
      event: deducted(100, 50, 300),
      program: { tiers: [{ name: 'Silver', minPoints: 100 }], tierBasis: 'balance' },
      currentTier: 'Silver',
      now,
    });
    assert.deepEqual(command?.data, {
      memberId: 'mem_1',
      newTier: null,
      reason: 'Points fell below threshold',
      now,
    });
  });

  it('promotes on a balance basis when a refund lifts the balance over a threshold', () => {
    assert.deepEqual(
      tierPolicy({
        event: refunded,
        program: { tiers, tierBasis: 'balance' },
        currentTier: 'Bronze',
        now,
      }),
      {
        type: 'ChangeTier',
        data: { memberId: 'mem_1', newTier: 'Silver', reason: 'Points threshold reached', now },
      },
    );
  });

  it('issues nothing with an empty tier table and no tier', () => {
    assert.equal(
      tierPolicy({
        event: awarded(10, 10, 10),
        program: { tiers: [], tierBasis: 'lifetime' },
        currentTier: null,
        now,
      }),
      null,
    );
  });
});

describe('leaderboard policy', () => {
  it("records an award on every leaderboard, at the award's own time", () => {
    const later = new Date(now.getTime() + 3_600_000);
    assert.deepEqual(
      leaderboardPolicy({
        event: awarded(250, 250, 250),
        leaderboardIds: ['lb_1', 'lb_2'],
        now: later,
      }),
      [
        {
          type: 'RecordScore',
          data: {
            leaderboardId: 'lb_1',
            memberId: 'mem_1',
            points: 250,
            transactionId: 'txn_1',
            awardedAt: now,
            now: later,
          },
        },
        {
          type: 'RecordScore',
          data: {
            leaderboardId: 'lb_2',
            memberId: 'mem_1',
            points: 250,
            transactionId: 'txn_1',
            awardedAt: now,
            now: later,
          },
        },
      ],
    );
  });

  it('records nothing without leaderboards', () => {
    assert.deepEqual(
      leaderboardPolicy({ event: awarded(250, 250, 250), leaderboardIds: [], now }),
      [],
    );
  });

  it('ignores refunds and deductions', () => {
    assert.deepEqual(leaderboardPolicy({ event: refunded, leaderboardIds: ['lb_1'], now }), []);
    assert.deepEqual(
      leaderboardPolicy({ event: deducted(5, 5, 10), leaderboardIds: ['lb_1'], now }),
      [],
    );
  });
});
