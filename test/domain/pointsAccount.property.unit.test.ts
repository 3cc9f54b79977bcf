import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fold } from '../../domain/decider.ts';
import { member, type MemberEvent } from '../../domain/member.ts';
import {
  isMovementEvent,
  pointsAccount,
  type PointsAccount,
  type PointsAccountCommand,
  type PointsAccountEvent,
  type PointsExpiryMode,
} from '../../domain/pointsAccount.ts';
import { tierPolicy } from '../../domain/policies.ts';
import { tierFor, type Tier, type TierBasis } from '../../domain/program.ts';

const start = Date.parse('2024-01-01T00:00:00.000Z');
const hourMs = 3_600_000;

/** Mostly valid amounts, with the invalid ones the decider must refuse mixed in. */
const amount = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 1, max: 2_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: -100, max: 0 }) },
  { weight: 1, arbitrary: fc.constantFrom(1.5, Number.NaN, 1_000_000_001, 1_000_000_000) },
);
const reason = fc.oneof(
  { weight: 9, arbitrary: fc.constantFrom('Bonus', 'Sale 🎉', 'Correction') },
  { weight: 1, arbitrary: fc.constantFrom('', '  ', 'bad\u0001') },
);
const orderId = fc.constantFrom('ord_1', 'ord_2', 'ord_3');

type Step = { command: (txn: string, now: Date) => PointsAccountCommand; elapsedHours: number };

const step: fc.Arbitrary<Step> = fc.record({
  elapsedHours: fc.integer({ min: 0, max: 24 * 40 }),
  command: fc.oneof(
    fc
      .record({ points: amount, reason })
      .map(({ points, reason }) => (transactionId: string, now: Date): PointsAccountCommand => ({
        type: 'AwardPoints',
        data: { transactionId, memberId: 'mem_1', points, reason, reference: null, now },
      })),
    fc
      .record({ points: amount, reason })
      .map(({ points, reason }) => (transactionId: string, now: Date): PointsAccountCommand => ({
        type: 'DeductPoints',
        data: { transactionId, memberId: 'mem_1', points, reason, reference: 'ref', now },
      })),
    fc
      .record({ pointsCost: amount, orderId })
      .map(
        ({ pointsCost, orderId }) =>
          (transactionId: string, now: Date): PointsAccountCommand => ({
            type: 'RedeemReward',
            data: {
              transactionId,
              orderId,
              memberId: 'mem_1',
              rewardId: 'rwd_1',
              rewardName: 'Mug',
              pointsCost,
              now,
            },
          }),
      ),
    fc
      .record({ points: amount, orderId })
      .map(({ points, orderId }) => (transactionId: string, now: Date): PointsAccountCommand => ({
        type: 'RefundOrder',
        data: { transactionId, orderId, memberId: 'mem_1', points, now },
      })),
    fc
      .record({
        expiryDays: fc.integer({ min: 0, max: 60 }),
        mode: fc.constantFrom<PointsExpiryMode>('inactivity', 'per_award'),
      })
      .map(({ expiryDays, mode }) => (transactionId: string, now: Date): PointsAccountCommand => ({
        type: 'ExpirePoints',
        data: { transactionId, memberId: 'mem_1', mode, expiryDays, now },
      })),
  ),
});

/** Runs the steps through the decider and returns every accepted event, in order. */
const run = (
  steps: Step[],
  onEvent: (event: PointsAccountEvent, now: Date, state: PointsAccount) => void = () => {},
) => {
  const events: PointsAccountEvent[] = [];
  let state = pointsAccount.initialState();
  let clock = start;
  steps.forEach((s, i) => {
    clock += s.elapsedHours * hourMs;
    const now = new Date(clock);
    const decision = pointsAccount.decide(s.command(`txn_${i}`, now), state);
    if (!decision.ok) return;
    for (const event of decision.events) {
      state = pointsAccount.evolve(state, event);
      events.push(event);
      onEvent(event, now, state);
    }
  });
  return { events, state };
};

const sum = (
  events: PointsAccountEvent[],
  type: PointsAccountEvent['type'],
  pick: (e: PointsAccountEvent) => number,
) => events.filter((e) => e.type === type).reduce((total, e) => total + pick(e), 0);

const pointsOf = (e: PointsAccountEvent): number =>
  e.type === 'RewardRedeemed'
    ? e.data.pointsSpent
    : e.type === 'PointsFrozen' || e.type === 'PointsUnfrozen'
      ? 0
      : e.data.points;

const tierTable: fc.Arbitrary<Tier[]> = fc
  .uniqueArray(fc.integer({ min: 0, max: 5_000 }), { maxLength: 5 })
  .map((mins) =>
    [...mins].sort((a, b) => a - b).map((minPoints, i) => ({ name: `T${i} ✨`, minPoints })),
  );

describe('points account properties', () => {
  it('keeps the balance equal to awarded - deducted - expired - spent + refunded, and never negative', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const { events, state } = run(steps);
        const awarded = sum(events, 'PointsAwarded', pointsOf);
        const allDeducted = sum(events, 'PointsDeducted', pointsOf);
        const expired = sum(events, 'PointsExpired', pointsOf);
        const spent = sum(events, 'RewardRedeemed', pointsOf);
        const refunded = sum(events, 'PointsRefunded', pointsOf);
        // A redemption records its spend twice by design: PointsDeducted (the ledger line) and
        // RewardRedeemed (the business fact). Deductions proper are the rest.
        const redemptionTxns = new Set(
          events.filter((e) => e.type === 'RewardRedeemed').map((e) => e.data.transactionId),
        );
        const deducted = events
          .filter((e) => e.type === 'PointsDeducted' && !redemptionTxns.has(e.data.transactionId))
          .reduce((total, e) => total + pointsOf(e), 0);

        assert.equal(allDeducted, deducted + spent);
        assert.equal(state.balance, awarded - deducted - expired - spent + refunded);
        assert.equal(state.lifetimePoints, awarded);
        assert.ok(state.balance >= 0);

        let running = 0;
        let lifetime = 0;
        for (const event of events) {
          if (!isMovementEvent(event)) continue;
          if (event.type === 'PointsAwarded') lifetime += event.data.points;
          if (event.type === 'PointsAwarded' || event.type === 'PointsRefunded')
            running += event.data.points;
          if (event.type === 'PointsDeducted' || event.type === 'PointsExpired')
            running -= event.data.points;
          assert.equal(event.data.newBalance, running, `newBalance after ${event.type}`);
          assert.equal(event.data.lifetimePoints, lifetime);
          assert.ok(event.data.newBalance >= 0);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps the balance equal to the sum of the lots, oldest first, after every event', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        run(steps, (event, _now, account) => {
          const lotSum = account.lots.reduce((total, lot) => total + lot.points, 0);
          assert.equal(lotSum, account.balance, `lots after ${event.type}`);
          assert.ok(
            account.lots.every((lot) => Number.isSafeInteger(lot.points) && lot.points > 0),
          );
          const dates = account.lots.map((lot) => lot.at);
          assert.deepEqual(dates, [...dates].sort());
        });
      }),
      { numRuns: 300 },
    );
  });

  it('expires in per-award mode only lots older than the window, oldest first', () => {
    fc.assert(
      fc.property(
        fc.array(step, { maxLength: 60 }),
        fc.integer({ min: 1, max: 60 }),
        (steps, days) => {
          const { state } = run(steps);
          const now = new Date(start + 24 * 40 * 60 * hourMs);
          const decision = pointsAccount.decide(
            {
              type: 'ExpirePoints',
              data: {
                transactionId: 'txn_x',
                memberId: 'mem_1',
                mode: 'per_award',
                expiryDays: days,
                now,
              },
            },
            state,
          );
          assert.ok(decision.ok);
          const due = state.lots
            .filter((lot) => Date.parse(lot.at) + days * 24 * hourMs <= now.getTime())
            .reduce((total, lot) => total + lot.points, 0);
          const expired = decision.events.reduce(
            (total, e) => total + (e.type === 'PointsExpired' ? e.data.points : 0),
            0,
          );
          assert.equal(expired, due);
          const after = decision.events.reduce(pointsAccount.evolve, state);
          assert.ok(
            after.lots.every((lot) => Date.parse(lot.at) + days * 24 * hourMs > now.getTime()),
          );
          assert.equal(after.balance, state.balance - due);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refunds each order at most once', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const refundedOrders = run(steps)
          .events.filter((e) => e.type === 'PointsRefunded')
          .map((e) => e.data.orderId);
        assert.equal(new Set(refundedOrders).size, refundedOrders.length);
      }),
      { numRuns: 200 },
    );
  });

  it('keeps the member on tierFor(tiers, basis) when tierPolicy runs after each event', () => {
    fc.assert(
      fc.property(
        fc.array(step, { maxLength: 60 }),
        tierTable,
        fc.constantFrom<TierBasis>('lifetime', 'balance'),
        (steps, tiers, tierBasis) => {
          const memberEvents: MemberEvent[] = [
            {
              type: 'MemberRegistered',
              data: {
                memberId: 'mem_1',
                programId: 'prg_1',
                email: 'a@example.com',
                name: 'A',
                externalId: null,
                attributes: {},
                tier: null,
                at: new Date(start).toISOString(),
              },
            },
          ];
          const tierNow = () => fold(member.evolve, member.initialState(), memberEvents).tier;
          run(steps, (event, now, account) => {
            const command = tierPolicy({
              event,
              program: { tiers, tierBasis },
              currentTier: tierNow(),
              now,
            });
            if (command) {
              const decision = member.decide(
                command,
                fold(member.evolve, member.initialState(), memberEvents),
              );
              assert.ok(decision.ok, 'the member accepts the policy command');
              memberEvents.push(...decision.events);
            }
            const basis = tierBasis === 'lifetime' ? account.lifetimePoints : account.balance;
            assert.equal(tierNow(), tierFor(tiers, basis));
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});
