import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DomainEvent, DomainEventType } from '../../domain/events.ts';
import { defaultTopN } from '../../domain/leaderboard.ts';
import { tableColumns } from '../../projections/readModelColumns.ts';
import {
  readModelRows,
  type ProjectedEvent,
  type RowMutation,
} from '../../projections/readModelRows.ts';

const at = '2026-03-01T10:00:00.000Z';
const totals = { newBalance: 70, lifetimePoints: 120, at };

/**
 * An example of every domain event, by type. Typed over DomainEventType, so a new event type
 * fails to compile here until it has an example, and then fails below until its rows are said.
 */
const examples: { [K in DomainEventType]: Extract<DomainEvent, { type: K }>['data'] } = {
  ProgramCreated: {
    programId: 'prg_1',
    name: 'Club',
    tiers: [{ name: 'Gold', minPoints: 100 }],
    tierBasis: 'lifetime',
    pointsExpiryDays: null,
    timezone: 'Europe/Berlin',
    notificationEmail: 'ops@example.com',
    at,
  },
  ProgramUpdated: { programId: 'prg_1', changes: { name: 'Club+', pointsExpiryDays: 30 }, at },
  MemberRegistered: {
    memberId: 'mem_1',
    programId: 'prg_1',
    email: 'a@example.com',
    name: 'Ada',
    externalId: null,
    attributes: { region: 'north' },
    tier: null,
    at,
  },
  MemberUpdated: { memberId: 'mem_1', changes: { name: 'Ada L.' }, at },
  MemberTierChanged: {
    memberId: 'mem_1',
    previousTier: null,
    newTier: 'Gold',
    reason: 'rules',
    at,
  },
  MemberTierLocked: { memberId: 'mem_1', lockedUntil: '2026-06-01T00:00:00.000Z', at },
  MemberDeactivated: { memberId: 'mem_1', at },
  MemberReactivated: { memberId: 'mem_1', at },
  MemberReservationRevoked: { memberId: 'mem_1', kind: 'email', reservationId: 'res_1', at },
  IdentifierReserved: {
    kind: 'email',
    memberId: 'mem_1',
    reservationId: 'res_1',
    replaces: null,
    at,
  },
  IdentifierReleased: { kind: 'email', memberId: 'mem_1', reservationId: 'res_1', at },
  PointsFrozen: { memberId: 'mem_1', at },
  PointsUnfrozen: { memberId: 'mem_1', at },
  RefundDeferred: { orderId: 'ord_1', memberId: 'mem_1', points: 30, at },
  PointsAwarded: {
    transactionId: 'txn_1',
    memberId: 'mem_1',
    points: 100,
    reason: 'purchase',
    reference: 'inv_1',
    ...totals,
  },
  PointsDeducted: {
    transactionId: 'txn_2',
    memberId: 'mem_1',
    points: 30,
    reason: 'correction',
    reference: null,
    ...totals,
  },
  PointsExpired: {
    transactionId: 'txn_3',
    memberId: 'mem_1',
    points: 5,
    reason: 'expiry',
    ...totals,
  },
  RewardRedeemed: {
    transactionId: 'txn_4',
    orderId: 'ord_1',
    memberId: 'mem_1',
    rewardId: 'rwd_1',
    rewardName: 'Mug',
    pointsSpent: 30,
    ...totals,
  },
  PointsRefunded: {
    transactionId: 'txn_5',
    orderId: 'ord_1',
    memberId: 'mem_1',
    points: 30,
    reason: 'order cancelled',
    ...totals,
  },
  PointsReversed: {
    transactionId: 'txn_6',
    reversalOf: 'txn_1',
    reversed: 'award',
    memberId: 'mem_1',
    points: 100,
    reason: 'fraud',
    reference: null,
    ...totals,
  },
  RewardCreated: {
    rewardId: 'rwd_1',
    name: 'Mug',
    pointsCost: 30,
    stock: 10,
    kind: 'physical',
    at,
  },
  RewardChanged: { rewardId: 'rwd_1', changes: { stock: 5, active: false }, at },
  StockReserved: { rewardId: 'rwd_1', orderId: 'ord_1', remaining: 9, at },
  StockReleased: { rewardId: 'rwd_1', orderId: 'ord_1', remaining: 10, at },
  OrderPlaced: {
    orderId: 'ord_1',
    memberId: 'mem_1',
    rewardId: 'rwd_1',
    rewardName: 'Mug',
    kind: 'physical',
    pointsSpent: 30,
    transactionId: 'txn_4',
    at,
  },
  OrderShipped: {
    orderId: 'ord_1',
    memberId: 'mem_1',
    rewardId: 'rwd_1',
    carrier: 'DHL',
    trackingNumber: 'T1',
    at,
  },
  OrderDelivered: { orderId: 'ord_1', memberId: 'mem_1', rewardId: 'rwd_1', at },
  OrderCancelled: {
    orderId: 'ord_1',
    memberId: 'mem_1',
    rewardId: 'rwd_1',
    pointsSpent: 30,
    reason: 'out of stock',
    at,
  },
  LeaderboardCreated: {
    leaderboardId: 'ldb_1',
    name: 'March',
    period: 'monthly',
    timezone: 'UTC',
    periodStart: '2026-03-01T00:00:00.000Z',
    periodEnd: '2026-04-01T00:00:00.000Z',
    at,
  },
  ScoreRecorded: {
    leaderboardId: 'ldb_1',
    memberId: 'mem_1',
    points: 100,
    score: 250,
    transactionId: 'txn_1',
    at,
  },
  PositionChanged: {
    leaderboardId: 'ldb_1',
    memberId: 'mem_1',
    previousPosition: null,
    newPosition: 1,
    points: 250,
    at,
  },
  PeriodEnded: {
    leaderboardId: 'ldb_1',
    periodStart: '2026-03-01T00:00:00.000Z',
    periodEnd: '2026-04-01T00:00:00.000Z',
    standings: [{ position: 1, memberId: 'mem_1', points: 250 }],
    at,
  },
  PeriodOpened: {
    leaderboardId: 'ldb_1',
    periodStart: '2026-04-01T00:00:00.000Z',
    periodEnd: '2026-05-01T00:00:00.000Z',
    at,
  },
  ScoreReversed: {
    leaderboardId: 'ldb_1',
    memberId: 'mem_1',
    points: 100,
    score: 150,
    transactionId: 'txn_6',
    reversalOf: 'txn_1',
    at,
  },
  PeriodCorrected: {
    leaderboardId: 'ldb_1',
    periodStart: '2026-03-01T00:00:00.000Z',
    memberId: 'mem_1',
    points: 100,
    transactionId: 'txn_6',
    reversalOf: 'txn_1',
    at,
  },
  MemberWithdrawn: { leaderboardId: 'ldb_1', memberId: 'mem_1', score: 150, at },
  MemberReinstated: { leaderboardId: 'ldb_1', memberId: 'mem_1', score: 150, at },
  LeaderboardTimezoneChanged: { leaderboardId: 'ldb_1', timezone: 'Asia/Tokyo', at },
};

/** What each event writes, in short: `kind table`, a first-time-only effect after `then`. */
const expected: Record<DomainEventType, string[]> = {
  ProgramCreated: ['insert rm_programs'],
  ProgramUpdated: ['update rm_programs'],
  MemberRegistered: ['insert rm_members'],
  MemberUpdated: ['update rm_members'],
  MemberTierChanged: ['update rm_members'],
  MemberTierLocked: ['update rm_members'],
  MemberDeactivated: ['update rm_members'],
  MemberReactivated: ['update rm_members'],
  MemberReservationRevoked: [],
  IdentifierReserved: [],
  IdentifierReleased: [],
  PointsFrozen: [],
  PointsUnfrozen: [],
  RefundDeferred: [],
  PointsAwarded: ['insert rm_ledger then foldLots', 'update rm_members'],
  PointsDeducted: ['insert rm_ledger then foldLots', 'update rm_members'],
  PointsExpired: ['insert rm_ledger then foldLots', 'update rm_members'],
  RewardRedeemed: ['update rm_members'],
  PointsRefunded: ['insert rm_ledger then foldLots', 'update rm_members'],
  PointsReversed: ['insert rm_ledger then foldLots', 'update rm_members'],
  RewardCreated: ['insert rm_rewards'],
  RewardChanged: ['update rm_rewards'],
  StockReserved: ['update rm_rewards'],
  StockReleased: ['update rm_rewards'],
  OrderPlaced: ['insert rm_orders'],
  OrderShipped: ['update rm_orders'],
  OrderDelivered: ['update rm_orders'],
  OrderCancelled: ['update rm_orders'],
  LeaderboardCreated: ['insert rm_leaderboards'],
  ScoreRecorded: ['upsert rm_standings'],
  PositionChanged: [],
  PeriodEnded: ['insert rm_leaderboard_periods then rankPeriod', 'delete rm_standings'],
  PeriodOpened: ['update rm_leaderboards'],
  ScoreReversed: ['update rm_standings'],
  PeriodCorrected: ['insert rm_period_corrections then correctPeriod'],
  MemberWithdrawn: ['update rm_standings'],
  MemberReinstated: ['update rm_standings'],
  LeaderboardTimezoneChanged: ['update rm_leaderboards'],
};

const recorded = <K extends DomainEventType>(type: K, data = examples[type]): ProjectedEvent =>
  ({ type, data, id: `evt_${type}`, revision: 7n, programId: 'prg_1' }) as ProjectedEvent;

const rowsOf = <K extends DomainEventType>(type: K, data = examples[type]) =>
  readModelRows(recorded(type, data));

const summary = (mutation: RowMutation): string => {
  if (!('table' in mutation)) return mutation.kind;
  const then =
    mutation.kind === 'insert' && mutation.then
      ? ` then ${mutation.then.map(summary).join(', ')}`
      : '';
  return `${mutation.kind} ${mutation.table}${then}`;
};

const types = Object.keys(examples) as DomainEventType[];

/** The columns a mutation names, by table, for checking them against the column lists. */
const namedColumns = (mutation: RowMutation): [string, string[]][] => {
  switch (mutation.kind) {
    case 'insert':
      return [
        [mutation.table, Object.keys(mutation.row)],
        ...(mutation.then ?? []).flatMap(namedColumns),
      ];
    case 'update':
      return [
        [
          mutation.table,
          [
            ...Object.keys(mutation.key),
            ...Object.keys(mutation.set),
            ...Object.keys(mutation.unless ?? {}),
            ...Object.keys(mutation.append ?? {}),
          ],
        ],
      ];
    case 'upsert':
      return [[mutation.table, [...Object.keys(mutation.row), ...Object.keys(mutation.set)]]];
    case 'delete':
      return [[mutation.table, Object.keys(mutation.where)]];
    case 'foldLots':
    case 'rankPeriod':
    case 'correctPeriod':
      return [];
  }
};

describe('read-model rows', () => {
  describe('of every domain event type', () => {
    for (const type of types)
      it(`${type} writes ${expected[type].join('; ') || 'nothing'}`, () => {
        assert.deepEqual(rowsOf(type).map(summary), expected[type]);
      });

    it('inserts whole rows, with every column a replay writes', () => {
      for (const type of types)
        for (const mutation of rowsOf(type))
          if (mutation.kind === 'insert' || mutation.kind === 'upsert')
            assert.deepEqual(
              Object.keys(mutation.row).sort(),
              tableColumns[mutation.table].map(([name]) => name).sort(),
              `${type} into ${mutation.table}`,
            );
    });

    it('names only columns of the table it writes', () => {
      for (const type of types)
        for (const [table, columns] of rowsOf(type).flatMap(namedColumns)) {
          const known = new Set<string>(
            tableColumns[table as keyof typeof tableColumns].map(([name]) => name),
          );
          for (const column of columns) assert.ok(known.has(column), `${type}: ${table}.${column}`);
        }
    });
  });

  describe('ledger rows', () => {
    const ledgerOf = (mutations: readonly RowMutation[]) => {
      const [first] = mutations;
      assert.ok(first?.kind === 'insert' && first.table === 'rm_ledger');
      return first.row;
    };

    it('sign the points as they moved the balance, with each kind and reference', () => {
      const lines = {
        PointsAwarded: ledgerOf(rowsOf('PointsAwarded')),
        PointsDeducted: ledgerOf(rowsOf('PointsDeducted')),
        PointsExpired: ledgerOf(rowsOf('PointsExpired')),
        PointsRefunded: ledgerOf(rowsOf('PointsRefunded')),
        awardReversed: ledgerOf(rowsOf('PointsReversed')),
        deductionReversed: ledgerOf(
          rowsOf('PointsReversed', { ...examples.PointsReversed, reversed: 'deduction' }),
        ),
      };
      assert.deepEqual(
        Object.values(lines).map(({ kind, points, reference }) => [kind, points, reference]),
        [
          ['awarded', 100, 'inv_1'],
          ['deducted', -30, null],
          ['expired', -5, null],
          ['refunded', 30, 'ord_1'],
          ['reversed', -100, 'txn_1'],
          ['reversed', 100, 'txn_1'],
        ],
      );
    });

    it('carry the event id, program, member, reason, balance after and time', () => {
      assert.deepEqual(ledgerOf(rowsOf('PointsAwarded')), {
        event_id: 'evt_PointsAwarded',
        program_id: 'prg_1',
        member_id: 'mem_1',
        transaction_id: 'txn_1',
        kind: 'awarded',
        points: 100,
        reference: 'inv_1',
        reason: 'purchase',
        balance_after: 70,
        occurred_at: at,
      });
    });

    it('fold the lots only as the then of the ledger row (once per event)', () => {
      const [ledger] = rowsOf('PointsExpired');
      assert.ok(ledger?.kind === 'insert');
      assert.deepEqual(ledger.then, [
        { kind: 'foldLots', memberId: 'mem_1', event: { ...recorded('PointsExpired') } },
      ]);
    });
  });

  describe('the member row of a points event', () => {
    const setOf = (mutations: readonly RowMutation[]) =>
      mutations.find((m) => m.kind === 'update' && m.table === 'rm_members');

    it('takes the totals after it; awards and deductions count as activity', () => {
      for (const type of ['PointsAwarded', 'PointsDeducted'] as const)
        assert.deepEqual(setOf(rowsOf(type)), {
          kind: 'update',
          table: 'rm_members',
          key: { member_id: 'mem_1' },
          set: { balance: 70, lifetime_points: 120, last_activity_at: at, updated_at: at },
        });
    });

    it('leaves last_activity_at alone for expiry, refunds and reversals', () => {
      for (const type of ['PointsExpired', 'PointsRefunded', 'PointsReversed'] as const)
        assert.deepEqual(setOf(rowsOf(type)), {
          kind: 'update',
          table: 'rm_members',
          key: { member_id: 'mem_1' },
          set: { balance: 70, lifetime_points: 120, updated_at: at },
        });
    });

    it('of a redemption is its activity only (the deduction beside it moved the balance)', () => {
      assert.deepEqual(rowsOf('RewardRedeemed'), [
        {
          kind: 'update',
          table: 'rm_members',
          key: { member_id: 'mem_1' },
          set: { last_activity_at: at },
        },
      ]);
    });
  });

  describe('defaults of events recorded before a field existed', () => {
    it('a program without an expiry mode counts by inactivity', () => {
      const [insert] = rowsOf('ProgramCreated');
      assert.ok(insert?.kind === 'insert' && insert.table === 'rm_programs');
      assert.equal(insert.row.points_expiry_mode, 'inactivity');
    });

    it(`a leaderboard without top_n has the default ${defaultTopN}`, () => {
      const [insert] = rowsOf('LeaderboardCreated');
      assert.ok(insert?.kind === 'insert' && insert.table === 'rm_leaderboards');
      assert.equal(insert.row.top_n, defaultTopN);
      const [withTopN] = rowsOf('LeaderboardCreated', { ...examples.LeaderboardCreated, topN: 3 });
      assert.ok(withTopN?.kind === 'insert' && withTopN.table === 'rm_leaderboards');
      assert.equal(withTopN.row.top_n, 3);
    });
  });

  describe('changes', () => {
    it('set only the fields a change names, and when', () => {
      assert.deepEqual(rowsOf('ProgramUpdated'), [
        {
          kind: 'update',
          table: 'rm_programs',
          key: { program_id: 'prg_1' },
          set: { name: 'Club+', points_expiry_days: 30, updated_at: at },
        },
      ]);
      assert.deepEqual(rowsOf('RewardChanged'), [
        {
          kind: 'update',
          table: 'rm_rewards',
          key: { reward_id: 'rwd_1' },
          set: { stock: 5, active: false, updated_at: at },
        },
      ]);
    });

    it('an order status is appended to its history once, not again when repeated', () => {
      assert.deepEqual(rowsOf('OrderShipped'), [
        {
          kind: 'update',
          table: 'rm_orders',
          key: { order_id: 'ord_1' },
          set: { carrier: 'DHL', tracking_number: 'T1', status: 'shipped', updated_at: at },
          unless: { status: 'shipped' },
          append: { history: [{ status: 'shipped', at }] },
        },
      ]);
    });

    it('a score takes the stream revision as the moment it was reached', () => {
      assert.deepEqual(rowsOf('ScoreRecorded'), [
        {
          kind: 'upsert',
          table: 'rm_standings',
          row: {
            leaderboard_id: 'ldb_1',
            member_id: 'mem_1',
            points: 250,
            reached_seq: 7,
            withdrawn: false,
          },
          set: { points: 250, reached_seq: 7 },
        },
      ]);
    });

    it('an ended period ranks its standings once, then clears them', () => {
      const [period, clear] = rowsOf('PeriodEnded');
      assert.ok(period?.kind === 'insert');
      assert.deepEqual(period.then, [
        { kind: 'rankPeriod', leaderboardId: 'ldb_1', periodStart: '2026-03-01T00:00:00.000Z' },
      ]);
      assert.deepEqual(clear, {
        kind: 'delete',
        table: 'rm_standings',
        where: { leaderboard_id: 'ldb_1' },
      });
    });
  });
});
