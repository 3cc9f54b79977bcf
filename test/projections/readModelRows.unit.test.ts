import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DomainEvent, DomainEventType } from '../../domain/events.ts';
import { tableColumns, type ReadModelTable } from '../../projections/readModelColumns.ts';
import {
  entityKeys,
  rowChangeOf,
  type FoldedEvent,
  type Row,
  type RowChange,
} from '../../projections/readModelRows.ts';

type DataOf<T extends DomainEventType> = Extract<DomainEvent, { type: T }>['data'];

const at = '2026-03-01T10:00:00.000Z';
const totals = { newBalance: 70, lifetimePoints: 120, at };

/** One event of every type: a type missing here fails to compile. */
const samples: { [T in DomainEventType]: DataOf<T> } = {
  ProgramCreated: {
    programId: 'p1',
    name: 'Coffee club',
    tiers: [{ name: 'gold', minPoints: 100 }],
    tierBasis: 'lifetime',
    pointsExpiryDays: 365,
    timezone: 'Europe/Paris',
    notificationEmail: 'ops@example.test',
    at,
  },
  ProgramUpdated: { programId: 'p1', changes: { name: 'Tea club', pointsExpiryDays: null }, at },
  MemberRegistered: {
    programId: 'p1',
    memberId: 'm1',
    email: 'ada@example.test',
    name: 'Ada',
    externalId: null,
    attributes: { city: 'Paris' },
    tier: null,
    at,
  },
  MemberUpdated: { memberId: 'm1', changes: { email: 'ada@new.test', attributes: {} }, at },
  MemberTierChanged: { memberId: 'm1', previousTier: null, newTier: 'gold', reason: 'rules', at },
  MemberTierLocked: { memberId: 'm1', lockedUntil: '2026-04-01T00:00:00.000Z', at },
  MemberDeactivated: { memberId: 'm1', at },
  MemberReactivated: { memberId: 'm1', at },
  MemberReservationRevoked: { memberId: 'm1', kind: 'email', reservationId: 'r1', at },
  IdentifierReserved: {
    kind: 'email',
    memberId: 'm1',
    reservationId: 'r1',
    replaces: null,
    at,
  },
  IdentifierReleased: {
    kind: 'email',
    memberId: 'm1',
    reservationId: 'r1',
    at,
  },
  PointsAwarded: {
    transactionId: 't1',
    memberId: 'm1',
    points: 100,
    reason: 'purchase',
    reference: 'receipt-9',
    ...totals,
  },
  PointsDeducted: {
    transactionId: 't2',
    memberId: 'm1',
    points: 30,
    reason: 'correction',
    reference: null,
    ...totals,
  },
  PointsExpired: { transactionId: 't3', memberId: 'm1', points: 5, reason: 'expiry', ...totals },
  PointsRefunded: {
    transactionId: 't4',
    orderId: 'o1',
    memberId: 'm1',
    points: 50,
    reason: 'order cancelled',
    ...totals,
  },
  PointsReversed: {
    transactionId: 't5',
    reversalOf: 't1',
    reversed: 'award',
    memberId: 'm1',
    points: 100,
    reason: 'fraud',
    reference: null,
    ...totals,
  },
  RewardRedeemed: {
    transactionId: 't6',
    orderId: 'o1',
    memberId: 'm1',
    rewardId: 'w1',
    rewardName: 'Mug',
    pointsSpent: 50,
    ...totals,
  },
  PointsFrozen: { memberId: 'm1', at },
  PointsUnfrozen: { memberId: 'm1', at },
  RefundDeferred: { orderId: 'o1', memberId: 'm1', points: 50, at },
  RewardCreated: { rewardId: 'w1', name: 'Mug', pointsCost: 50, stock: 3, kind: 'physical', at },
  RewardChanged: { rewardId: 'w1', changes: { stock: null, active: false }, at },
  StockReserved: { rewardId: 'w1', orderId: 'o1', remaining: 2, at },
  StockReleased: { rewardId: 'w1', orderId: 'o1', remaining: 3, at },
  OrderPlaced: {
    orderId: 'o1',
    memberId: 'm1',
    rewardId: 'w1',
    rewardName: 'Mug',
    kind: 'physical',
    pointsSpent: 50,
    transactionId: 't6',
    at,
  },
  OrderShipped: {
    orderId: 'o1',
    memberId: 'm1',
    rewardId: 'w1',
    carrier: 'UPS',
    trackingNumber: '1Z',
    at,
  },
  OrderDelivered: { orderId: 'o1', memberId: 'm1', rewardId: 'w1', at },
  OrderCancelled: {
    orderId: 'o1',
    memberId: 'm1',
    rewardId: 'w1',
    pointsSpent: 50,
    reason: 'lost',
    at,
  },
  LeaderboardCreated: {
    leaderboardId: 'b1',
    name: 'March',
    period: 'monthly',
    timezone: 'UTC',
    periodStart: '2026-03-01T00:00:00.000Z',
    periodEnd: '2026-04-01T00:00:00.000Z',
    at,
  },
  ScoreRecorded: {
    leaderboardId: 'b1',
    memberId: 'm1',
    points: 100,
    score: 140,
    transactionId: 't1',
    at,
  },
  PositionChanged: {
    leaderboardId: 'b1',
    memberId: 'm1',
    previousPosition: null,
    newPosition: 1,
    points: 140,
    at,
  },
  PeriodEnded: {
    leaderboardId: 'b1',
    periodStart: '2026-03-01T00:00:00.000Z',
    periodEnd: '2026-04-01T00:00:00.000Z',
    standings: [{ position: 1, memberId: 'm1', points: 140 }],
    at,
  },
  PeriodOpened: {
    leaderboardId: 'b1',
    periodStart: '2026-04-01T00:00:00.000Z',
    periodEnd: '2026-05-01T00:00:00.000Z',
    at,
  },
  ScoreReversed: {
    leaderboardId: 'b1',
    memberId: 'm1',
    points: 100,
    score: 40,
    transactionId: 't5',
    reversalOf: 't1',
    at,
  },
  PeriodCorrected: {
    leaderboardId: 'b1',
    periodStart: '2026-03-01T00:00:00.000Z',
    memberId: 'm1',
    points: 100,
    transactionId: 't5',
    reversalOf: 't1',
    at,
  },
  MemberWithdrawn: { leaderboardId: 'b1', memberId: 'm1', score: 40, at },
  MemberReinstated: { leaderboardId: 'b1', memberId: 'm1', score: 40, at },
  LeaderboardTimezoneChanged: { leaderboardId: 'b1', timezone: 'Asia/Tokyo', at },
};

const folded = (type: string, data: unknown): FoldedEvent => ({
  id: '00000000-0000-4000-8000-000000000001',
  type,
  data,
  revision: 7n,
  programId: 'p1',
});

const changeOf = <T extends DomainEventType>(type: T, data: unknown = samples[type]) =>
  rowChangeOf(folded(type, data));

/** Each type's change, by kind and table: what the live projector and the replay both apply. */
const expected: Record<DomainEventType, string | null> = {
  ProgramCreated: 'create rm_programs',
  ProgramUpdated: 'update rm_programs',
  MemberRegistered: 'create rm_members',
  MemberUpdated: 'update rm_members',
  MemberTierChanged: 'update rm_members',
  MemberTierLocked: 'update rm_members',
  MemberDeactivated: 'update rm_members',
  MemberReactivated: 'update rm_members',
  MemberReservationRevoked: null,
  IdentifierReserved: null,
  IdentifierReleased: null,
  PointsAwarded: 'points',
  PointsDeducted: 'points',
  PointsExpired: 'points',
  PointsRefunded: 'points',
  PointsReversed: 'points',
  RewardRedeemed: 'update rm_members',
  PointsFrozen: null,
  PointsUnfrozen: null,
  RefundDeferred: null,
  RewardCreated: 'create rm_rewards',
  RewardChanged: 'update rm_rewards',
  StockReserved: 'update rm_rewards',
  StockReleased: 'update rm_rewards',
  OrderPlaced: 'create rm_orders',
  OrderShipped: 'orderStatus',
  OrderDelivered: 'orderStatus',
  OrderCancelled: 'orderStatus',
  LeaderboardCreated: 'create rm_leaderboards',
  ScoreRecorded: 'score',
  PositionChanged: null,
  PeriodEnded: 'periodEnded',
  PeriodOpened: 'update rm_leaderboards',
  ScoreReversed: 'standing',
  PeriodCorrected: 'periodCorrected',
  MemberWithdrawn: 'standing',
  MemberReinstated: 'standing',
  LeaderboardTimezoneChanged: 'update rm_leaderboards',
};

const describeChange = (change: RowChange | null): string | null => {
  if (change === null) return null;
  return change.op === 'create' || change.op === 'update'
    ? `${change.op} ${change.table}`
    : change.op;
};

/** The rows a change writes, each with the table it goes to. */
const rowsOf = (change: RowChange): [ReadModelTable, Row][] => {
  switch (change.op) {
    case 'create':
      return [[change.table, change.row]];
    case 'update':
      return [[change.table, change.set]];
    case 'points':
      return [
        ['rm_ledger', change.ledger],
        ['rm_members', change.set],
      ];
    case 'orderStatus':
      return [['rm_orders', change.set]];
    case 'score':
      return [['rm_standings', change.row]];
    case 'standing':
      return [['rm_standings', change.set]];
    case 'periodEnded':
      return [['rm_leaderboard_periods', change.row]];
    case 'periodCorrected':
      return [['rm_period_corrections', change.row]];
  }
};

describe('read-model rows', () => {
  const types = Object.keys(samples) as DomainEventType[];

  it('gives every event type its change', () => {
    for (const type of types)
      assert.equal(describeChange(changeOf(type)), expected[type], `the change of ${type}`);
  });

  it('writes only columns its tables have', () => {
    for (const type of types) {
      const change = changeOf(type);
      if (change === null) continue;
      for (const [table, row] of rowsOf(change)) {
        const columns = new Set(tableColumns[table].map(([name]) => name));
        for (const column of Object.keys(row))
          assert.ok(columns.has(column), `${type} writes ${table}.${column}, which is no column`);
      }
    }
  });

  it('creates whole rows, keyed by their key column', () => {
    for (const type of types) {
      const change = changeOf(type);
      if (change?.op !== 'create') continue;
      const columns = tableColumns[change.table].map(([name]) => name);
      assert.deepEqual(Object.keys(change.row).sort(), [...columns].sort(), `${type}'s row`);
      assert.equal(change.row[entityKeys[change.table]], change.key, `${type}'s key`);
    }
  });

  it('reads the event without changing it, the same each time', () => {
    for (const type of types) {
      const data = structuredClone(samples[type]);
      assert.deepEqual(changeOf(type, data), changeOf(type), type);
      assert.deepEqual(data, samples[type], `${type}'s data after the fold`);
    }
  });

  it('ignores an event type it does not know', () => {
    assert.equal(rowChangeOf(folded('PointsTeleported', { memberId: 'm1' })), null);
  });

  describe('updates', () => {
    it('set only the changed columns, and updated_at', () => {
      assert.deepEqual(changeOf('ProgramUpdated'), {
        op: 'update',
        table: 'rm_programs',
        key: 'p1',
        set: { name: 'Tea club', points_expiry_days: null, updated_at: at },
      });
      assert.deepEqual(changeOf('MemberUpdated'), {
        op: 'update',
        table: 'rm_members',
        key: 'm1',
        set: { email: 'ada@new.test', attributes: {}, updated_at: at },
      });
      assert.deepEqual(changeOf('RewardChanged'), {
        op: 'update',
        table: 'rm_rewards',
        key: 'w1',
        set: { stock: null, active: false, updated_at: at },
      });
    });

    it('count a redemption as activity without moving the balance', () => {
      assert.deepEqual(changeOf('RewardRedeemed'), {
        op: 'update',
        table: 'rm_members',
        key: 'm1',
        set: { last_activity_at: at },
      });
    });
  });

  describe('points', () => {
    it('sign the ledger line as the balance moved and name its reference', () => {
      const lines = (
        ['PointsAwarded', 'PointsDeducted', 'PointsExpired', 'PointsRefunded'] as const
      )
        .map((type) => changeOf(type))
        .map((change) => (change?.op === 'points' ? change.ledger : null));
      assert.deepEqual(
        lines.map((line) => [line?.kind, line?.points, line?.reference]),
        [
          ['awarded', 100, 'receipt-9'],
          ['deducted', -30, null],
          ['expired', -5, null],
          ['refunded', 50, 'o1'],
        ],
      );
      const reversal = changeOf('PointsReversed', { ...samples.PointsReversed });
      assert.equal(reversal?.op === 'points' && reversal.ledger.points, -100);
      const ofDeduction = changeOf('PointsReversed', {
        ...samples.PointsReversed,
        reversed: 'deduction',
      });
      assert.equal(ofDeduction?.op === 'points' && ofDeduction.ledger.points, 100);
    });

    it('take the ledger row from the recorded event and its program', () => {
      const change = changeOf('PointsAwarded');
      assert.ok(change?.op === 'points');
      assert.equal(change.ledger.event_id, '00000000-0000-4000-8000-000000000001');
      assert.equal(change.ledger.program_id, 'p1');
      assert.equal(change.ledger.balance_after, 70);
      assert.equal(change.event.type, 'PointsAwarded');
    });

    it('move last_activity_at for awards and deductions only', () => {
      const activity = (
        type: 'PointsAwarded' | 'PointsDeducted' | 'PointsExpired' | 'PointsRefunded',
      ) => {
        const change = changeOf(type);
        return change?.op === 'points' ? 'last_activity_at' in change.set : undefined;
      };
      assert.deepEqual(
        [
          activity('PointsAwarded'),
          activity('PointsDeducted'),
          activity('PointsExpired'),
          activity('PointsRefunded'),
        ],
        [true, true, false, false],
      );
    });
  });

  describe('orders', () => {
    it('start the history at redeemed and add carrier and tracking when shipped', () => {
      const placed = changeOf('OrderPlaced');
      assert.ok(placed?.op === 'create');
      assert.deepEqual(placed.row.history, [{ status: 'redeemed', at }]);
      assert.deepEqual(changeOf('OrderShipped'), {
        op: 'orderStatus',
        key: 'o1',
        status: 'shipped',
        at,
        set: { carrier: 'UPS', tracking_number: '1Z' },
      });
    });
  });

  describe('leaderboards', () => {
    it('give boards made before top_n the default', () => {
      const created = changeOf('LeaderboardCreated');
      assert.ok(created?.op === 'create');
      assert.equal(created.row.top_n, 10);
      const withTop = changeOf('LeaderboardCreated', { ...samples.LeaderboardCreated, topN: 3 });
      assert.ok(withTop?.op === 'create');
      assert.equal(withTop.row.top_n, 3);
    });

    it('order equal scores by the revision that reached them', () => {
      const score = changeOf('ScoreRecorded');
      assert.ok(score?.op === 'score');
      assert.equal(score.row.points, 140);
      assert.equal(score.row.reached_seq, 7);
      assert.equal(score.row.withdrawn, false);
    });

    it('withdraw and reinstate a standing with its score', () => {
      assert.deepEqual(changeOf('MemberWithdrawn'), {
        op: 'standing',
        key: samples.MemberWithdrawn,
        set: { withdrawn: true, points: 40 },
      });
      const reinstated = changeOf('MemberReinstated');
      assert.ok(reinstated?.op === 'standing');
      assert.deepEqual(reinstated.set, { withdrawn: false, points: 40 });
    });

    it('correct an ended period by the points taken back', () => {
      const corrected = changeOf('PeriodCorrected');
      assert.ok(corrected?.op === 'periodCorrected');
      assert.deepEqual(
        {
          leaderboardId: corrected.correction.leaderboardId,
          memberId: corrected.correction.memberId,
          periodStart: corrected.correction.periodStart,
          points: corrected.correction.points,
        },
        {
          leaderboardId: 'b1',
          memberId: 'm1',
          periodStart: '2026-03-01T00:00:00.000Z',
          points: 100,
        },
      );
    });
  });
});
