import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  consumeOldestFirst,
  pointsAccount,
  type PointsAccountCommand,
  type PointsAccountEvent,
  type PointsExpiryMode,
  type PointsLot,
} from '../../domain/pointsAccount.ts';
import { eventsOf, refusalOf, specOf } from './given.ts';

const { given, stateAfter } = specOf(pointsAccount);
const now = new Date('2024-06-15T14:30:00.000Z');
const at = '2024-06-15T14:30:00.000Z';
const dayMs = 86_400_000;

const award = (
  points: number,
  extra: { reason?: string; reference?: string | null; now?: Date } = {},
): PointsAccountCommand => ({
  type: 'AwardPoints',
  data: {
    transactionId: 'txn_a',
    memberId: 'mem_1',
    points,
    reason: extra.reason ?? 'Q2 sales bonus',
    reference: extra.reference === undefined ? 'deal-7' : extra.reference,
    now: extra.now ?? now,
  },
});
const deduct = (
  points: number,
  extra: { reason?: string; reference?: string | null; now?: Date } = {},
): PointsAccountCommand => ({
  type: 'DeductPoints',
  data: {
    transactionId: 'txn_d',
    memberId: 'mem_1',
    points,
    reason: extra.reason ?? 'Correction',
    reference: extra.reference === undefined ? null : extra.reference,
    now: extra.now ?? now,
  },
});
const redeem = (pointsCost: number, rewardName = 'Headphones'): PointsAccountCommand => ({
  type: 'RedeemReward',
  data: {
    transactionId: 'txn_r',
    orderId: 'ord_1',
    memberId: 'mem_1',
    rewardId: 'rwd_1',
    rewardName,
    pointsCost,
    now,
  },
});
const refund = (points: number, orderId = 'ord_1'): PointsAccountCommand => ({
  type: 'RefundOrder',
  data: { transactionId: 'txn_f', orderId, memberId: 'mem_1', points, now },
});
const expire = (
  expiryDays: number,
  when: Date,
  mode: PointsExpiryMode = 'inactivity',
): PointsAccountCommand => ({
  type: 'ExpirePoints',
  data: { transactionId: 'txn_e', memberId: 'mem_1', mode, expiryDays, now: when },
});

/** Runs commands in order, each against the events so far; the history they build. */
const historyOf = (...commands: PointsAccountCommand[]): PointsAccountEvent[] =>
  commands.reduce<PointsAccountEvent[]>(
    (events, command) => [...events, ...eventsOf(given(events).when(command))],
    [],
  );

const awarded100 = historyOf(award(100));

describe('points account', () => {
  describe('with no history', () => {
    it('awards points and states the totals', () => {
      assert.deepEqual(given().when(award(100)), {
        ok: true,
        events: [
          {
            type: 'PointsAwarded',
            data: {
              transactionId: 'txn_a',
              memberId: 'mem_1',
              points: 100,
              reason: 'Q2 sales bonus',
              reference: 'deal-7',
              newBalance: 100,
              lifetimePoints: 100,
              at,
            },
          },
        ],
      });
    });

    it('awards the largest amount, with emoji in the reason and no reference', () => {
      const [event] = eventsOf(
        given().when(award(1_000_000_000, { reason: 'Top seller 🏆', reference: null })),
      );
      assert.equal(event?.type === 'PointsAwarded' && event.data.newBalance, 1_000_000_000);
      assert.equal(event?.type === 'PointsAwarded' && event.data.reference, null);
    });

    const badPoints: [string, number][] = [
      ['zero', 0],
      ['a negative amount', -5],
      ['a fraction', 1.5],
      ['more than 1000000000', 1_000_000_001],
      ['NaN', Number.NaN],
      ['infinity', Number.POSITIVE_INFINITY],
    ];
    for (const [what, points] of badPoints) {
      it(`refuses to award ${what}`, () => {
        assert.deepEqual(refusalOf(given().when(award(points))), {
          rejection: 'invalid_points',
          field: 'points',
        });
      });
    }

    const badReasons: [string, string][] = [
      ['an empty reason', ''],
      ['a blank reason', '   '],
      ['a reason of 501 characters', 'r'.repeat(501)],
      ['a reason with a NUL', 'bonus\u0000'],
      ['a reason with a tab', 'bonus\tQ2'],
    ];
    for (const [what, reason] of badReasons) {
      it(`refuses ${what}`, () => {
        assert.deepEqual(refusalOf(given().when(award(10, { reason }))), {
          rejection: 'invalid_reason',
          field: 'reason',
        });
      });
    }

    it('accepts a reason of 500 characters', () => {
      assert.equal(given().when(award(10, { reason: 'r'.repeat(500) })).ok, true);
    });

    it('refuses an empty or overlong reference', () => {
      for (const reference of ['', 'x'.repeat(201)]) {
        assert.deepEqual(refusalOf(given().when(award(10, { reference }))), {
          rejection: 'invalid_reference',
          field: 'reference',
        });
      }
    });

    it('refuses to deduct from an empty balance', () => {
      assert.deepEqual(refusalOf(given().when(deduct(1))), {
        rejection: 'insufficient_points',
        field: 'points',
      });
    });

    it('expires nothing from an empty balance', () => {
      assert.deepEqual(given().when(expire(30, now)), { ok: true, events: [] });
    });
  });

  describe('with 100 points awarded', () => {
    it('deducts points', () => {
      assert.deepEqual(given(awarded100).when(deduct(40, { reference: 'fix-1' })), {
        ok: true,
        events: [
          {
            type: 'PointsDeducted',
            data: {
              transactionId: 'txn_d',
              memberId: 'mem_1',
              points: 40,
              reason: 'Correction',
              reference: 'fix-1',
              kind: 'correction',
              newBalance: 60,
              lifetimePoints: 100,
              at,
            },
          },
        ],
      });
    });

    it('deducts the whole balance', () => {
      const [event] = eventsOf(given(awarded100).when(deduct(100)));
      assert.equal(event?.type === 'PointsDeducted' && event.data.newBalance, 0);
    });

    it('refuses to deduct more than the balance', () => {
      assert.deepEqual(refusalOf(given(awarded100).when(deduct(101))), {
        rejection: 'insufficient_points',
        field: 'points',
      });
    });

    it('validates a deduction like an award', () => {
      assert.deepEqual(refusalOf(given(awarded100).when(deduct(0))), {
        rejection: 'invalid_points',
        field: 'points',
      });
      assert.deepEqual(refusalOf(given(awarded100).when(deduct(5, { reason: '' }))), {
        rejection: 'invalid_reason',
        field: 'reason',
      });
    });

    it('redeems a reward as a deduction then a redemption in one decision', () => {
      assert.deepEqual(given(awarded100).when(redeem(70)), {
        ok: true,
        events: [
          {
            type: 'PointsDeducted',
            data: {
              transactionId: 'txn_r',
              memberId: 'mem_1',
              points: 70,
              reason: 'Redeemed: Headphones',
              reference: 'ord_1',
              kind: 'redemption',
              newBalance: 30,
              lifetimePoints: 100,
              at,
            },
          },
          {
            type: 'RewardRedeemed',
            data: {
              transactionId: 'txn_r',
              orderId: 'ord_1',
              memberId: 'mem_1',
              rewardId: 'rwd_1',
              rewardName: 'Headphones',
              pointsSpent: 70,
              newBalance: 30,
              lifetimePoints: 100,
              at,
            },
          },
        ],
      });
    });

    it('leaves the balance reduced once, not twice, after a redemption', () => {
      assert.equal(stateAfter(historyOf(award(100), redeem(70))).balance, 30);
    });

    it('refuses to redeem more than the balance', () => {
      assert.deepEqual(refusalOf(given(awarded100).when(redeem(101))), {
        rejection: 'insufficient_points',
        field: 'points_cost',
      });
    });

    it('refuses a redemption with an invalid cost or reward name', () => {
      assert.deepEqual(refusalOf(given(awarded100).when(redeem(0))), {
        rejection: 'invalid_points_cost',
        field: 'points_cost',
      });
      assert.deepEqual(refusalOf(given(awarded100).when(redeem(10, ''))), {
        rejection: 'invalid_name',
        field: 'reward_name',
      });
    });

    it('refuses an award that would pass the largest safe integer', () => {
      const nearlyFull: PointsAccountEvent[] = [
        {
          type: 'PointsAwarded',
          data: {
            transactionId: 'txn_x',
            memberId: 'mem_1',
            points: 1,
            reason: 'imported',
            reference: null,
            newBalance: Number.MAX_SAFE_INTEGER - 5,
            lifetimePoints: Number.MAX_SAFE_INTEGER - 5,
            at,
          },
        },
      ];
      assert.equal(given(nearlyFull).when(award(5)).ok, true);
      assert.deepEqual(refusalOf(given(nearlyFull).when(award(6))), {
        rejection: 'balance_overflow',
        field: 'points',
      });
      assert.deepEqual(refusalOf(given(nearlyFull).when(refund(6))), {
        rejection: 'balance_overflow',
        field: 'points',
      });
    });
  });

  describe('refunds', () => {
    const redeemed = historyOf(award(100), redeem(70));

    it('returns the points without touching lifetime points', () => {
      assert.deepEqual(given(redeemed).when(refund(70)), {
        ok: true,
        events: [
          {
            type: 'PointsRefunded',
            data: {
              transactionId: 'txn_f',
              orderId: 'ord_1',
              memberId: 'mem_1',
              points: 70,
              reason: 'Refund of order ord_1',
              newBalance: 100,
              lifetimePoints: 100,
              at,
            },
          },
        ],
      });
    });

    it('refunds an order once', () => {
      const refunded = historyOf(award(100), redeem(70), refund(70));
      assert.deepEqual(given(refunded).when(refund(70)), { ok: true, events: [] });
      assert.equal(given(refunded).when(refund(70, 'ord_2')).ok, true);
    });

    it('refuses an invalid refund amount', () => {
      assert.deepEqual(refusalOf(given(redeemed).when(refund(-70))), {
        rejection: 'invalid_points',
        field: 'points',
      });
    });
  });

  describe('expiry', () => {
    const lastActivity = new Date('2024-01-01T00:00:00.000Z');
    const active = historyOf(award(100, { now: lastActivity }));

    it('keeps the balance until the period of inactivity has passed', () => {
      const justBefore = new Date(lastActivity.getTime() + 30 * dayMs - 1);
      assert.deepEqual(given(active).when(expire(30, justBefore)), { ok: true, events: [] });
    });

    it('expires the whole balance once the period has passed', () => {
      const deadline = new Date(lastActivity.getTime() + 30 * dayMs);
      assert.deepEqual(given(active).when(expire(30, deadline)), {
        ok: true,
        events: [
          {
            type: 'PointsExpired',
            data: {
              transactionId: 'txn_e',
              memberId: 'mem_1',
              points: 100,
              reason: 'No activity for 30 days (points expiry policy)',
              newBalance: 0,
              lifetimePoints: 100,
              at: deadline.toISOString(),
            },
          },
        ],
      });
    });

    it('counts from the last award, deduction or redemption', () => {
      const later = new Date(lastActivity.getTime() + 20 * dayMs);
      const history = historyOf(award(100, { now: lastActivity }), deduct(10, { now: later }));
      assert.equal(stateAfter(history).lastActivityAt, later.toISOString());
      const day31 = new Date(lastActivity.getTime() + 31 * dayMs);
      assert.deepEqual(given(history).when(expire(30, day31)), { ok: true, events: [] });
    });

    it('does not count a refund or an expiry as activity', () => {
      const history = historyOf(
        award(100),
        redeem(70),
        refund(70),
        expire(1, new Date(now.getTime() + dayMs)),
      );
      assert.equal(stateAfter(history).lastActivityAt, at);
      assert.equal(stateAfter(history).balance, 0);
      assert.equal(stateAfter(history).lifetimePoints, 100);
    });

    it('refuses an invalid number of days', () => {
      for (const days of [0, 3651, 2.5]) {
        assert.deepEqual(refusalOf(given(active).when(expire(days, now))), {
          rejection: 'invalid_points_expiry_days',
          field: 'expiry_days',
        });
      }
    });
  });
  describe('per-award expiry (lots)', () => {
    const day = (n: number) => new Date(Date.parse('2024-01-01T00:00:00.000Z') + n * dayMs);
    const awardOn = (n: number, points: number, transactionId: string): PointsAccountCommand => {
      const command = award(points, { now: day(n) });
      return { ...command, data: { ...command.data, transactionId } } as PointsAccountCommand;
    };
    const lots = (history: PointsAccountEvent[]) =>
      stateAfter(history).lots.map((lot) => [lot.transactionId, lot.points]);

    it('keeps each award as a lot dated by the award', () => {
      const history = historyOf(awardOn(0, 100, 'txn_1'), awardOn(10, 50, 'txn_2'));
      assert.deepEqual(stateAfter(history).lots, [
        { transactionId: 'txn_1', at: day(0).toISOString(), points: 100 },
        { transactionId: 'txn_2', at: day(10).toISOString(), points: 50 },
      ]);
    });

    it('spends the oldest lots first, on deductions and redemptions alike', () => {
      const history = historyOf(
        awardOn(0, 100, 'txn_1'),
        awardOn(10, 50, 'txn_2'),
        deduct(80, { now: day(11) }),
        redeem(30),
      );
      assert.deepEqual(lots(history), [['txn_2', 40]]);
    });

    it('expires exactly the lots past their date, in one event', () => {
      const history = historyOf(
        awardOn(0, 100, 'txn_1'),
        awardOn(1, 20, 'txn_2'),
        awardOn(10, 50, 'txn_3'),
        deduct(30, { now: day(5) }),
      );
      const decision = given(history).when(expire(365, day(366), 'per_award'));
      const after = [...history, ...eventsOf(decision)];
      assert.deepEqual(decision, {
        ok: true,
        events: [
          {
            type: 'PointsExpired',
            data: {
              transactionId: 'txn_e',
              memberId: 'mem_1',
              points: 90,
              reason: 'Awarded more than 365 days ago (points expiry policy)',
              newBalance: 50,
              lifetimePoints: 170,
              at: day(366).toISOString(),
            },
          },
        ],
      });
      assert.deepEqual(lots(after), [['txn_3', 50]]);
    });

    it('expires nothing before the oldest lot is due, and does not count activity', () => {
      const history = historyOf(awardOn(0, 100, 'txn_1'), deduct(1, { now: day(300) }));
      const justBefore = new Date(day(365).getTime() - 1);
      assert.deepEqual(given(history).when(expire(365, justBefore, 'per_award')), {
        ok: true,
        events: [],
      });
      assert.equal(eventsOf(given(history).when(expire(365, day(365), 'per_award'))).length, 1);
    });

    it('gives a refund a new lot dated by the refund', () => {
      const history = historyOf(awardOn(0, 100, 'txn_1'), redeem(70), refund(70));
      assert.deepEqual(stateAfter(history).lots, [
        { transactionId: 'txn_1', at: day(0).toISOString(), points: 30 },
        { transactionId: 'txn_f', at, points: 70 },
      ]);
    });

    it('empties the whole balance from the lots when the inactivity rule expires it', () => {
      const history = historyOf(awardOn(0, 100, 'txn_1'), awardOn(1, 5, 'txn_2'));
      const expired = eventsOf(given(history).when(expire(30, day(40))));
      assert.deepEqual(stateAfter([...history, ...expired]).lots, []);
    });
  });

  describe('consumeOldestFirst', () => {
    const lotsOf = (...points: number[]): PointsLot[] =>
      points.map((p, i) => ({ transactionId: `txn_${i}`, at: `2024-01-0${i + 1}`, points: p }));

    it('takes from the oldest lot, then the next', () => {
      const result = consumeOldestFirst(lotsOf(10, 20, 30), 25);
      assert.deepEqual(
        result.lots.map((lot) => [lot.transactionId, lot.points]),
        [
          ['txn_1', 5],
          ['txn_2', 30],
        ],
      );
      assert.deepEqual(
        result.taken.map((lot) => [lot.transactionId, lot.points]),
        [
          ['txn_0', 10],
          ['txn_1', 15],
        ],
      );
      assert.equal(result.short, 0);
    });

    it('empties the named lot first, then goes oldest first (undoing an award)', () => {
      const result = consumeOldestFirst(lotsOf(10, 20, 30), 35, { firstFrom: 'txn_2' });
      assert.deepEqual(
        result.lots.map((lot) => [lot.transactionId, lot.points]),
        [
          ['txn_0', 5],
          ['txn_1', 20],
        ],
      );
      assert.deepEqual(
        result.taken.map((lot) => [lot.transactionId, lot.points]),
        [
          ['txn_2', 30],
          ['txn_0', 5],
        ],
      );
    });

    it('says how much the lots could not cover, and leaves its input alone', () => {
      const input = lotsOf(10);
      const result = consumeOldestFirst(input, 15);
      assert.deepEqual(result, { lots: [], taken: [input[0]], short: 5 });
      assert.equal(input[0]!.points, 10);
    });
  });
});
