import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  pointsAccount,
  type PointsAccountCommand,
  type PointsAccountEvent,
} from '../../domain/pointsAccount.ts';

const now = new Date('2025-03-05T12:00:00.000Z');

/** A step: an award, a manual deduction, a redemption, or a reversal of an earlier transaction. */
type Step =
  | { kind: 'award' | 'deduct' | 'redeem'; points: number }
  | { kind: 'reverse'; pick: number; allowNegative: boolean };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constantFrom('award' as const, 'deduct' as const, 'redeem' as const),
    points: fc.integer({ min: 1, max: 1_000 }),
  }),
  fc.record({
    kind: fc.constant('reverse' as const),
    pick: fc.nat(),
    allowNegative: fc.boolean(),
  }),
);

const commandOf = (s: Step, i: number, earlier: readonly string[]): PointsAccountCommand => {
  const transactionId = `txn_${i}`;
  const base = { transactionId, memberId: 'mem_1', now };
  switch (s.kind) {
    case 'award':
      return {
        type: 'AwardPoints',
        data: { ...base, points: s.points, reason: 'Sale', reference: null },
      };
    case 'deduct':
      return {
        type: 'DeductPoints',
        data: { ...base, points: s.points, reason: 'Fix', reference: null },
      };
    case 'redeem':
      return {
        type: 'RedeemReward',
        data: {
          ...base,
          orderId: `ord_${i}`,
          rewardId: 'rwd_1',
          rewardName: 'Mug',
          pointsCost: s.points,
        },
      };
    case 'reverse':
      return {
        type: 'ReverseTransaction',
        data: {
          ...base,
          reversalOf: earlier.length === 0 ? 'txn_none' : earlier[s.pick % earlier.length]!,
          reason: 'Entered in error',
          allowNegative: s.allowNegative,
        },
      };
  }
};

describe('reversals', () => {
  it('leave the balance and lifetime points as if the reversed transactions never happened', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 50 }), (steps) => {
        let state = pointsAccount.initialState();
        const events: PointsAccountEvent[] = [];
        const ids: string[] = [];
        steps.forEach((s, i) => {
          const decision = pointsAccount.decide(commandOf(s, i, ids), state);
          ids.push(`txn_${i}`);
          if (!decision.ok) return;
          for (const event of decision.events) {
            const balanceBefore = state.balance;
            state = pointsAccount.evolve(state, event);
            // Only a reversal sent with allow_negative takes the balance down below zero; one
            // that raises a negative balance (a deduction's) stays below zero and is fine.
            if (
              event.type === 'PointsReversed' &&
              state.balance < 0 &&
              state.balance < balanceBefore
            ) {
              assert.equal(event.data.reversed, 'award');
              assert.ok(s.kind === 'reverse' && s.allowNegative, 'allow_negative was sent');
            }
            events.push(event);
            // The lots hold the balance, or nothing while a reversal holds it below zero.
            assert.equal(
              state.lots.reduce((sum, lot) => sum + lot.points, 0),
              Math.max(0, state.balance),
              `lots after ${event.type}`,
            );
          }
        });
        const reversed = new Set(
          events.flatMap((e) => (e.type === 'PointsReversed' ? [e.data.reversalOf] : [])),
        );
        const count = (type: 'PointsAwarded' | 'PointsDeducted') =>
          events
            .filter((e) => e.type === type && !reversed.has(e.data.transactionId))
            .reduce((n, e) => n + (e.type === type ? e.data.points : 0), 0);
        assert.equal(state.balance, count('PointsAwarded') - count('PointsDeducted'));
        assert.equal(state.lifetimePoints, count('PointsAwarded'));
        const reversals = events.filter((e) => e.type === 'PointsReversed');
        assert.equal(reversals.length, reversed.size, 'each transaction is reversed at most once');
        const redemptions = new Set(
          events.flatMap((e) => (e.type === 'RewardRedeemed' ? [e.data.transactionId] : [])),
        );
        for (const id of reversed) assert.ok(!redemptions.has(id), 'a redemption is not reversed');
      }),
      {
        numRuns: 500,
        // Found by CI: reversing a deduction while an award's reversal holds the balance at -2
        // raises it to -1, which is right (the check once wanted every negative one an award's).
        examples: [
          [
            [
              { kind: 'award', points: 2 },
              { kind: 'deduct', points: 1 },
              { kind: 'redeem', points: 1 },
              { kind: 'reverse', pick: 0, allowNegative: true },
              { kind: 'reverse', pick: 1, allowNegative: false },
            ],
          ],
        ],
      },
    );
  });
});
