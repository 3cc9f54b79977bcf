import { accept, reject, type Decider, type Decision } from './decider.ts';
import { isId } from './ids.ts';
import { isIntegerBetween, isName, isPoints, isReason, isText, isoOf } from './validation.ts';

/** Every points event states the balance and lifetime total after it, so readers need no fold. */
type Totals = { newBalance: number; lifetimePoints: number; at: string };

export type PointsAwarded = {
  type: 'PointsAwarded';
  data: {
    transactionId: string;
    memberId: string;
    points: number;
    reason: string;
    reference: string | null;
  } & Totals;
};
/**
 * Why points were deducted: a manual `correction` (DeductPoints) or the cost of a `redemption`
 * (RedeemReward). Events recorded before the field existed lack it; `deductionKindOf` tells.
 */
export type DeductionKind = 'correction' | 'redemption';

export type PointsDeducted = {
  type: 'PointsDeducted';
  data: {
    transactionId: string;
    memberId: string;
    points: number;
    reason: string;
    reference: string | null;
    kind?: DeductionKind;
  } & Totals;
};
export type PointsExpired = {
  type: 'PointsExpired';
  data: { transactionId: string; memberId: string; points: number; reason: string } & Totals;
};
export type RewardRedeemed = {
  type: 'RewardRedeemed';
  data: {
    transactionId: string;
    orderId: string;
    memberId: string;
    rewardId: string;
    rewardName: string;
    pointsSpent: number;
  } & Totals;
};
export type PointsRefunded = {
  type: 'PointsRefunded';
  data: {
    transactionId: string;
    orderId: string;
    memberId: string;
    points: number;
    reason: string;
  } & Totals;
};

/**
 * Undoes one award or manual deduction completely: an award's points leave the balance and the
 * lifetime total, a deduction's come back to the balance. Its `transactionId` is its own.
 */
export type PointsReversed = {
  type: 'PointsReversed';
  data: {
    transactionId: string;
    /** The transaction undone. */
    reversalOf: string;
    /** What the undone transaction was. */
    reversed: 'award' | 'deduction';
    memberId: string;
    /** The undone transaction's points (positive). */
    points: number;
    reason: string;
    reference: string | null;
  } & Totals;
};

/** The member was deactivated: their points are frozen (no expiry, refunds wait). */
export type PointsFrozen = { type: 'PointsFrozen'; data: { memberId: string; at: string } };
/** The member was reactivated: refunds that waited are paid in the same append. */
export type PointsUnfrozen = { type: 'PointsUnfrozen'; data: { memberId: string; at: string } };
/** A cancelled order's refund, held while the account is frozen. */
export type RefundDeferred = {
  type: 'RefundDeferred';
  data: { orderId: string; memberId: string; points: number; at: string };
};

export type PointsAccountEvent =
  | PointsFrozen
  | PointsUnfrozen
  | RefundDeferred
  | PointsAwarded
  | PointsDeducted
  | PointsExpired
  | RewardRedeemed
  | PointsRefunded
  | PointsReversed;

/** The events that move points (and state the totals after them). */
export type PointsMovementEvent = Exclude<
  PointsAccountEvent,
  PointsFrozen | PointsUnfrozen | RefundDeferred
>;

export const isMovementEvent = (event: PointsAccountEvent): event is PointsMovementEvent =>
  event.type !== 'PointsFrozen' &&
  event.type !== 'PointsUnfrozen' &&
  event.type !== 'RefundDeferred';

type PointsMovement = {
  transactionId: string;
  memberId: string;
  points: number;
  reason: string;
  reference: string | null;
  now: Date;
};

export type PointsAccountCommand =
  | { type: 'AwardPoints'; data: PointsMovement }
  | { type: 'DeductPoints'; data: PointsMovement }
  | {
      type: 'RedeemReward';
      data: {
        transactionId: string;
        orderId: string;
        memberId: string;
        rewardId: string;
        rewardName: string;
        pointsCost: number;
        now: Date;
      };
    }
  | {
      type: 'RefundOrder';
      data: { transactionId: string; orderId: string; memberId: string; points: number; now: Date };
    }
  | {
      type: 'ExpirePoints';
      data: {
        transactionId: string;
        memberId: string;
        /** The program's `points_expiry` at the time of the sweep. */
        mode: PointsExpiryMode;
        expiryDays: number;
        now: Date;
      };
    }
  | { type: 'FreezePoints'; data: { memberId: string; now: Date } }
  | {
      type: 'UnfreezePoints';
      /** `transactionIds` names the refunds that waited, by order id. */
      data: { memberId: string; refundTransactionId: (orderId: string) => string; now: Date };
    }
  | {
      type: 'ReverseTransaction';
      data: {
        /** The reversal's own transaction id. */
        transactionId: string;
        /** The award or manual deduction to undo: a transaction of this account. */
        reversalOf: string;
        memberId: string;
        reason: string;
        /** Lets the reversal of an award take the balance below zero. */
        allowNegative: boolean;
        now: Date;
      };
    };

/**
 * `inactivity`: the whole balance expires `days` after the last activity. `per_award`: each lot
 * (an award, or a refund) expires `days` after its own time.
 */
export type PointsExpiryMode = 'inactivity' | 'per_award';

/**
 * Points that arrived together and expire together in `per_award` mode: an award's, or a
 * refund's. `at` is when they arrived (ISO); the lot expires `days` after it, with the days the
 * program has when the sweep runs, so every lot is dated by the same rule and the oldest lot
 * always expires first.
 */
export type PointsLot = { transactionId: string; at: string; points: number };

export type PointsAccountRejection =
  | 'invalid_points'
  | 'invalid_points_cost'
  | 'invalid_reason'
  | 'invalid_reference'
  | 'invalid_name'
  | 'invalid_points_expiry_days'
  | 'insufficient_points'
  | 'balance_overflow'
  | 'transaction_not_found'
  | 'not_reversible'
  | 'already_reversed';

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

/**
 * Takes `points` from `lots`, oldest first (FIFO by arrival, which is FIFO by expiry): spending,
 * and expiry, which removes exactly the oldest lots that are due. With `firstFrom` set, the lot
 * of that transaction is emptied first and the rest comes oldest first: what undoing an award
 * needs (its own points go before anyone else's). Pure; the lots given are not changed.
 * Returns the lots left and what was taken from each; `short` is how many points the lots did
 * not hold (0 whenever `points` is at most their sum).
 */
export const consumeOldestFirst = (
  lots: readonly PointsLot[],
  points: number,
  options: { firstFrom?: string } = {},
): { lots: PointsLot[]; taken: PointsLot[]; short: number } => {
  const first = lots.findIndex((lot) => lot.transactionId === options.firstFrom);
  const order = [...lots.keys()];
  if (first > 0) order.unshift(...order.splice(first, 1));
  const remaining = lots.map((lot) => lot.points);
  const taken: PointsLot[] = [];
  let left = points;
  for (const index of order) {
    const lot = lots[index];
    if (left <= 0 || lot === undefined) break;
    const take = Math.min(lot.points, left);
    remaining[index] = lot.points - take;
    left -= take;
    taken.push({ ...lot, points: take });
  }
  return {
    lots: lots
      .map((lot, index) => ({ ...lot, points: remaining[index] ?? lot.points }))
      .filter((lot) => lot.points > 0),
    taken,
    short: left,
  };
};

/** Adds a lot in arrival order (after any lot of the same instant). */
export const addLot = (lots: readonly PointsLot[], lot: PointsLot): PointsLot[] => {
  let index = lots.length;
  while (index > 0 && (lots[index - 1]?.at ?? '') > lot.at) index--;
  return [...lots.slice(0, index), lot, ...lots.slice(index)];
};

/** The instant a lot expires in `per_award` mode. */
export const lotExpiresAt = (lot: PointsLot, expiryDays: number): Date =>
  new Date(Date.parse(lot.at) + expiryDays * dayMs);

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

/**
 * The lots after one points event: awards and refunds add a lot dated by the event; deductions
 * (redemptions included, through the PointsDeducted beside each) and expiry take their points
 * oldest first. Reversing an award takes its points from its own lot first, then oldest first;
 * reversing a deduction gives its points back as a lot dated by the reversal. Points owed below
 * zero (a reversal sent with allow_negative) are paid off by the next points that arrive, so the
 * lots always sum to the balance, or to zero below it. The read models fold the same way
 * (projections/readModels.ts).
 */
export const lotsAfter = (lots: readonly PointsLot[], event: PointsAccountEvent): PointsLot[] => {
  const owedFirst = (added: PointsLot[]): PointsLot[] => {
    if (!isMovementEvent(event)) return added;
    const excess =
      added.reduce((sum, lot) => sum + lot.points, 0) - Math.max(0, event.data.newBalance);
    return excess > 0
      ? consumeOldestFirst(added, excess, { firstFrom: event.data.transactionId }).lots
      : added;
  };
  switch (event.type) {
    case 'PointsAwarded':
    case 'PointsRefunded':
      return owedFirst(
        addLot(lots, {
          transactionId: event.data.transactionId,
          at: event.data.at,
          points: event.data.points,
        }),
      );
    case 'PointsDeducted':
    case 'PointsExpired':
      return consumeOldestFirst(lots, event.data.points).lots;
    case 'PointsReversed':
      return event.data.reversed === 'award'
        ? consumeOldestFirst(lots, event.data.points, { firstFrom: event.data.reversalOf }).lots
        : owedFirst(
            addLot(lots, {
              transactionId: event.data.transactionId,
              at: event.data.at,
              points: event.data.points,
            }),
          );
    case 'RewardRedeemed':
      // The points left with the PointsDeducted appended beside it.
      return [...lots];
    case 'PointsFrozen':
    case 'PointsUnfrozen':
    case 'RefundDeferred':
      return [...lots];
  }
};

export const pointsAccount: Decider<
  PointsAccountCommand,
  PointsAccountEvent,
  PointsAccount,
  PointsAccountRejection
> = { initialState, decide, evolve };
