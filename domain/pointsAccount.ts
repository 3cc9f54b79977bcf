import { accept, reject, type Decider, type Decision } from './decider.ts';
import { isId } from './ids.ts';
import { isIntegerBetween, isName, isPoints, isReason, isText, isoOf } from './validation.ts';

export * from './pointsAccountEvents.ts';
export * from './pointsLots.ts';
import { lotExpiresAt, lotsAfter } from './pointsLots.ts';
import type {
  PointsAccountCommand,
  PointsAccountEvent,
  PointsAccountRejection,
  PointsDeducted,
  PointsLot,
  PointsMovementEvent,
  PointsMovement,
  DeductionKind,
} from './pointsAccountEvents.ts';
import { isMovementEvent } from './pointsAccountEvents.ts';

/** A transaction of the account, as a reversal needs it; newest first. */
export type Movement = {
  transactionId: string;
  kind: 'award' | 'deduction' | 'redemption' | 'expiry' | 'refund' | 'reversal';
  points: number;
  /** The reversal that undid it, once one has. */
  reversedBy: string | null;
};

/**
 * The account's transactions as an immutable list, newest first: a fold appends in constant time
 * and shares the rest, where an array or map copied per event would cost the square of the
 * stream's length. Only a reversal walks it.
 */
type Movements = { readonly head: Movement; readonly rest: Movements } | null;

const findMovement = (movements: Movements, transactionId: string): Movement | null => {
  for (let node = movements; node !== null; node = node.rest)
    if (node.head.transactionId === transactionId) return node.head;
  return null;
};

/** The list with `transactionId`'s movement replaced by `change(movement)`. */
const updateMovement = (
  movements: Movements,
  transactionId: string,
  change: (movement: Movement) => Movement,
): Movements => {
  const before: Movement[] = [];
  for (let node = movements; node !== null; node = node.rest) {
    if (node.head.transactionId === transactionId) {
      let rebuilt: Movements = { head: change(node.head), rest: node.rest };
      for (const head of before.reverse()) rebuilt = { head, rest: rebuilt };
      return rebuilt;
    }
    before.push(node.head);
  }
  return movements;
};

export type PointsAccount = {
  balance: number;
  /** Everything ever awarded; refunds, deductions and expiry leave it alone. */
  lifetimePoints: number;
  /** Last award, deduction or redemption (ISO); expiry counts from here. */
  lastActivityAt: string | null;
  /** Orders already refunded, so a repeated refund is a no-op. */
  refundedOrderIds: string[];
  /** Every transaction, newest first: what a reversal looks up. */
  movements: Movements;
  /** The member is deactivated: nothing expires, and refunds wait in `deferredRefunds`. */
  frozen: boolean;
  deferredRefunds: readonly { orderId: string; points: number }[];
  /**
   * The balance split by arrival, oldest first; their points always sum to `balance` (to zero
   * while a reversal sent with allow_negative holds it below zero). Kept in every mode (they are
   * folded from the stream's own events), so a program that switches to `per_award` expires
   * each point by the date it arrived.
   */
  lots: PointsLot[];
};

/** The transaction `transactionId` of the account, or null. */
export const movementOf = (state: PointsAccount, transactionId: string): Movement | null =>
  findMovement(state.movements, transactionId);

const dayMs = 86_400_000;

const redemptionReason = (rewardName: string): string => `Redeemed: ${rewardName}`;

/**
 * The kind of a deduction, also of one recorded before `kind` existed: RedeemReward has always
 * written the reason `Redeemed: <reward name>` with the order's id as the reference, so such an
 * event is a redemption and any other a correction. Deterministic, so a replay derives the same
 * webhooks and read models from the history. (A manual deduction recorded back then with exactly
 * that reason and an order id as its reference reads as a redemption; newer events say.)
 */
export const deductionKindOf = (data: PointsDeducted['data']): DeductionKind =>
  data.kind ??
  (data.reason.startsWith(redemptionReason('')) &&
  data.reference !== null &&
  isId('order', data.reference)
    ? 'redemption'
    : 'correction');

export const initialState = (): PointsAccount => ({
  balance: 0,
  lifetimePoints: 0,
  lastActivityAt: null,
  refundedOrderIds: [],
  movements: null,
  frozen: false,
  deferredRefunds: [],
  lots: [],
});

const invalidPoints = () =>
  reject<PointsAccountRejection>(
    'invalid_points',
    'points must be a positive integer no larger than 1000000000',
    'points',
  );
const invalidReason = () =>
  reject<PointsAccountRejection>(
    'invalid_reason',
    'reason must be 1-500 characters without control characters',
    'reason',
  );
const overflow = (field: string) =>
  reject<PointsAccountRejection>(
    'balance_overflow',
    'the balance would exceed the largest safe integer',
    field,
  );

const validateMovement = (data: PointsMovement) => {
  if (!isPoints(data.points)) return invalidPoints();
  if (!isReason(data.reason)) return invalidReason();
  if (data.reference !== null && !isText(data.reference, { min: 1, max: 200 })) {
    return reject<PointsAccountRejection>(
      'invalid_reference',
      'reference must be null or 1-200 characters without control characters',
      'reference',
    );
  }
  return null;
};

// A decider's flat switch, one case per command: split, its cases would only be harder to
// compare with one another.
// eslint-disable-next-line max-lines-per-function
export const decide = (
  command: PointsAccountCommand,
  state: PointsAccount,
): Decision<PointsAccountEvent, PointsAccountRejection> => {
  switch (command.type) {
    case 'AwardPoints': {
      const refusal = validateMovement(command.data);
      if (refusal) return refusal;
      const { transactionId, memberId, points, reason, reference, now } = command.data;
      const newBalance = state.balance + points;
      const lifetimePoints = state.lifetimePoints + points;
      if (!Number.isSafeInteger(newBalance) || !Number.isSafeInteger(lifetimePoints)) {
        return overflow('points');
      }
      return accept([
        {
          type: 'PointsAwarded',
          data: {
            transactionId,
            memberId,
            points,
            reason,
            reference,
            newBalance,
            lifetimePoints,
            at: isoOf(now),
          },
        },
      ]);
    }
    case 'DeductPoints': {
      const refusal = validateMovement(command.data);
      if (refusal) return refusal;
      const { transactionId, memberId, points, reason, reference, now } = command.data;
      if (points > state.balance) {
        return reject('insufficient_points', `the balance is ${state.balance} points`, 'points');
      }
      return accept([
        {
          type: 'PointsDeducted',
          data: {
            transactionId,
            memberId,
            points,
            reason,
            reference,
            kind: 'correction',
            newBalance: state.balance - points,
            lifetimePoints: state.lifetimePoints,
            at: isoOf(now),
          },
        },
      ]);
    }
    case 'RedeemReward': {
      const { transactionId, orderId, memberId, rewardId, rewardName, pointsCost, now } =
        command.data;
      if (!isPoints(pointsCost)) {
        return reject(
          'invalid_points_cost',
          'pointsCost must be a positive integer no larger than 1000000000',
          'points_cost',
        );
      }
      if (!isName(rewardName)) {
        return reject(
          'invalid_name',
          'rewardName must be 1-200 characters without control characters',
          'reward_name',
        );
      }
      if (pointsCost > state.balance) {
        return reject(
          'insufficient_points',
          `the reward costs ${pointsCost} points and the balance is ${state.balance}`,
          'points_cost',
        );
      }
      const newBalance = state.balance - pointsCost;
      const totals = { newBalance, lifetimePoints: state.lifetimePoints, at: isoOf(now) };
      return accept([
        {
          type: 'PointsDeducted',
          data: {
            transactionId,
            memberId,
            points: pointsCost,
            reason: redemptionReason(rewardName),
            reference: orderId,
            kind: 'redemption',
            ...totals,
          },
        },
        {
          type: 'RewardRedeemed',
          data: {
            transactionId,
            orderId,
            memberId,
            rewardId,
            rewardName,
            pointsSpent: pointsCost,
            ...totals,
          },
        },
      ]);
    }
    case 'RefundOrder': {
      const { transactionId, orderId, memberId, points, now } = command.data;
      if (!isPoints(points)) return invalidPoints();
      if (state.refundedOrderIds.includes(orderId)) return accept([]);
      if (state.frozen) {
        if (state.deferredRefunds.some((r) => r.orderId === orderId)) return accept([]);
        return accept([
          { type: 'RefundDeferred', data: { orderId, memberId, points, at: isoOf(now) } },
        ]);
      }
      const newBalance = state.balance + points;
      if (!Number.isSafeInteger(newBalance)) return overflow('points');
      return accept([
        {
          type: 'PointsRefunded',
          data: {
            transactionId,
            orderId,
            memberId,
            points,
            reason: `Refund of order ${orderId}`,
            newBalance,
            lifetimePoints: state.lifetimePoints,
            at: isoOf(now),
          },
        },
      ]);
    }
    case 'ExpirePoints': {
      const { transactionId, memberId, mode, expiryDays, now } = command.data;
      if (!isIntegerBetween(expiryDays, 1, 3650)) {
        return reject(
          'invalid_points_expiry_days',
          'expiryDays must be an integer from 1 to 3650',
          'expiry_days',
        );
      }
      // A deactivated member's points are frozen.
      if (state.frozen) return accept([]);
      if (mode === 'per_award') {
        // The due lots are the oldest ones, so expiring their sum oldest-first (as evolve does)
        // removes exactly them. One event for all of a member's due lots: one sweep, one batch.
        let due = 0;
        for (const lot of state.lots) {
          if (lotExpiresAt(lot, expiryDays).getTime() > now.getTime()) break;
          due += lot.points;
        }
        if (due === 0) return accept([]);
        return accept([
          {
            type: 'PointsExpired',
            data: {
              transactionId,
              memberId,
              points: due,
              reason: `Awarded more than ${expiryDays} days ago (points expiry policy)`,
              newBalance: state.balance - due,
              lifetimePoints: state.lifetimePoints,
              at: isoOf(now),
            },
          },
        ]);
      }
      // Without any activity there is no date to count from; such a balance can only come from
      // refunds, which are not activity, so it is left alone.
      if (state.frozen || state.balance <= 0 || state.lastActivityAt === null) return accept([]);
      const expiresAtMs = Date.parse(state.lastActivityAt) + expiryDays * dayMs;
      if (expiresAtMs > now.getTime()) return accept([]);
      return accept([
        {
          type: 'PointsExpired',
          data: {
            transactionId,
            memberId,
            points: state.balance,
            reason: `No activity for ${expiryDays} days (points expiry policy)`,
            newBalance: 0,
            lifetimePoints: state.lifetimePoints,
            at: isoOf(now),
          },
        },
      ]);
    }
    case 'FreezePoints': {
      if (state.frozen) return accept([]);
      return accept([
        {
          type: 'PointsFrozen',
          data: { memberId: command.data.memberId, at: isoOf(command.data.now) },
        },
      ]);
    }
    case 'UnfreezePoints': {
      if (!state.frozen) return accept([]);
      const { memberId, refundTransactionId, now } = command.data;
      const at = isoOf(now);
      const events: PointsAccountEvent[] = [{ type: 'PointsUnfrozen', data: { memberId, at } }];
      let balance = state.balance;
      for (const { orderId, points } of state.deferredRefunds) {
        balance += points;
        if (!Number.isSafeInteger(balance)) return overflow('points');
        events.push({
          type: 'PointsRefunded',
          data: {
            transactionId: refundTransactionId(orderId),
            orderId,
            memberId,
            points,
            reason: `Refund of order ${orderId}`,
            newBalance: balance,
            lifetimePoints: state.lifetimePoints,
            at,
          },
        });
      }
      return accept(events);
    }
    case 'ReverseTransaction': {
      const { transactionId, reversalOf, memberId, reason, allowNegative, now } = command.data;
      if (!isReason(reason)) return invalidReason();
      const original = findMovement(state.movements, reversalOf);
      if (original === null)
        return reject(
          'transaction_not_found',
          `no transaction ${reversalOf} for this member`,
          'transaction_id',
        );
      if (original.kind !== 'award' && original.kind !== 'deduction')
        return reject(
          'not_reversible',
          `a ${original.kind} cannot be reversed${
            original.kind === 'redemption' ? ': cancel the order instead' : ''
          }`,
          'transaction_id',
        );
      if (original.reversedBy !== null)
        return reject(
          'already_reversed',
          `transaction ${reversalOf} was reversed by ${original.reversedBy}`,
          'transaction_id',
        );
      const award = original.kind === 'award';
      const newBalance = award ? state.balance - original.points : state.balance + original.points;
      if (!Number.isSafeInteger(newBalance)) return overflow('transaction_id');
      if (award && newBalance < 0 && !allowNegative)
        return reject(
          'insufficient_points',
          `reversing ${original.points} points would take the balance of ${state.balance} below zero; send allow_negative: true to allow it`,
          'allow_negative',
        );
      return accept([
        {
          type: 'PointsReversed',
          data: {
            transactionId,
            reversalOf,
            reversed: award ? 'award' : 'deduction',
            memberId,
            points: original.points,
            reason,
            reference: null,
            newBalance,
            lifetimePoints: award ? state.lifetimePoints - original.points : state.lifetimePoints,
            at: isoOf(now),
          },
        },
      ]);
    }
  }
};

const recorded = (state: PointsAccount, movement: Omit<Movement, 'reversedBy'>): Movements => ({
  head: { ...movement, reversedBy: null },
  rest: state.movements,
});

export const evolve = (state: PointsAccount, event: PointsAccountEvent): PointsAccount => {
  if (isMovementEvent(event)) return evolveMovement(state, event);
  switch (event.type) {
    case 'PointsFrozen':
      return { ...state, frozen: true };
    case 'PointsUnfrozen':
      return { ...state, frozen: false };
    case 'RefundDeferred':
      return {
        ...state,
        deferredRefunds: [
          ...state.deferredRefunds,
          { orderId: event.data.orderId, points: event.data.points },
        ],
      };
  }
};

const evolveMovement = (state: PointsAccount, event: PointsMovementEvent): PointsAccount => {
  const totals = { balance: event.data.newBalance, lifetimePoints: event.data.lifetimePoints };
  const lots = lotsAfter(state.lots, event);
  const { transactionId } = event.data;
  switch (event.type) {
    case 'PointsAwarded':
      return {
        ...state,
        ...totals,
        lots,
        lastActivityAt: event.data.at,
        movements: recorded(state, { transactionId, kind: 'award', points: event.data.points }),
      };
    case 'PointsDeducted':
      // A redemption's deduction is followed by its RewardRedeemed, which marks it as one.
      return {
        ...state,
        ...totals,
        lots,
        lastActivityAt: event.data.at,
        movements: recorded(state, {
          transactionId,
          kind: deductionKindOf(event.data) === 'redemption' ? 'redemption' : 'deduction',
          points: event.data.points,
        }),
      };
    case 'RewardRedeemed':
      return {
        ...state,
        ...totals,
        lots,
        lastActivityAt: event.data.at,
        movements: updateMovement(state.movements, transactionId, (m) => ({
          ...m,
          kind: 'redemption',
        })),
      };
    case 'PointsExpired':
      return {
        ...state,
        ...totals,
        lots,
        movements: recorded(state, { transactionId, kind: 'expiry', points: event.data.points }),
      };
    case 'PointsRefunded':
      return {
        ...state,
        ...totals,
        lots,
        refundedOrderIds: [...state.refundedOrderIds, event.data.orderId],
        deferredRefunds: state.deferredRefunds.filter((r) => r.orderId !== event.data.orderId),
        movements: recorded(state, { transactionId, kind: 'refund', points: event.data.points }),
      };
    case 'PointsReversed': {
      const undone = updateMovement(state.movements, event.data.reversalOf, (m) => ({
        ...m,
        reversedBy: transactionId,
      }));
      return {
        ...state,
        ...totals,
        lots,
        movements: {
          head: { transactionId, kind: 'reversal', points: event.data.points, reversedBy: null },
          rest: undone,
        },
      };
    }
  }
};

export const pointsAccount: Decider<
  PointsAccountCommand,
  PointsAccountEvent,
  PointsAccount,
  PointsAccountRejection
> = { initialState, decide, evolve };
