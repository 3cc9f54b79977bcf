import { accept, reject, type Decider, type Decision } from './decider.ts';
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
export type PointsDeducted = {
  type: 'PointsDeducted';
  data: {
    transactionId: string;
    memberId: string;
    points: number;
    reason: string;
    reference: string | null;
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

export type PointsAccountEvent =
  PointsAwarded | PointsDeducted | PointsExpired | RewardRedeemed | PointsRefunded;

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
  | 'balance_overflow';

export type PointsAccount = {
  balance: number;
  /** Everything ever awarded; refunds, deductions and expiry leave it alone. */
  lifetimePoints: number;
  /** Last award, deduction or redemption (ISO); expiry counts from here. */
  lastActivityAt: string | null;
  /** Orders already refunded, so a repeated refund is a no-op. */
  refundedOrderIds: string[];
  /**
   * The balance split by arrival, oldest first; their points always sum to `balance`. Kept in
   * every mode (they are folded from the stream's own events), so a program that switches to
   * `per_award` expires each point by the date it arrived.
   */
  lots: PointsLot[];
};

const dayMs = 86_400_000;

export const initialState = (): PointsAccount => ({
  balance: 0,
  lifetimePoints: 0,
  lastActivityAt: null,
  refundedOrderIds: [],
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
    if (left <= 0) break;
    const lot = lots[index]!;
    const take = Math.min(lot.points, left);
    remaining[index] = lot.points - take;
    left -= take;
    taken.push({ ...lot, points: take });
  }
  return {
    lots: lots
      .map((lot, index) => ({ ...lot, points: remaining[index]! }))
      .filter((lot) => lot.points > 0),
    taken,
    short: left,
  };
};

/** Adds a lot in arrival order (after any lot of the same instant). */
export const addLot = (lots: readonly PointsLot[], lot: PointsLot): PointsLot[] => {
  let index = lots.length;
  while (index > 0 && lots[index - 1]!.at > lot.at) index--;
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
            reason: `Redeemed: ${rewardName}`,
            reference: orderId,
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
      if (state.balance === 0 || state.lastActivityAt === null) return accept([]);
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
  }
};

export const evolve = (state: PointsAccount, event: PointsAccountEvent): PointsAccount => {
  const totals = { balance: event.data.newBalance, lifetimePoints: event.data.lifetimePoints };
  return { ...state, ...totals, ...changeOf(state, event) };
};

/** What an event changes besides the totals it states. */
const changeOf = (state: PointsAccount, event: PointsAccountEvent): Partial<PointsAccount> => {
  const lots = lotsAfter(state.lots, event);
  switch (event.type) {
    case 'PointsAwarded':
    case 'PointsDeducted':
    case 'RewardRedeemed':
      return { lastActivityAt: event.data.at, lots };
    case 'PointsExpired':
      return { lots };
    case 'PointsRefunded':
      return { refundedOrderIds: [...state.refundedOrderIds, event.data.orderId], lots };
  }
};

/**
 * The lots after one points event: awards and refunds add a lot dated by the event; deductions
 * (redemptions included, through the PointsDeducted beside each) and expiry take their points
 * oldest first. The read models fold the same way (projections/readModels.ts).
 */
export const lotsAfter = (lots: readonly PointsLot[], event: PointsAccountEvent): PointsLot[] => {
  switch (event.type) {
    case 'PointsAwarded':
    case 'PointsRefunded':
      return addLot(lots, {
        transactionId: event.data.transactionId,
        at: event.data.at,
        points: event.data.points,
      });
    case 'PointsDeducted':
    case 'PointsExpired':
      return consumeOldestFirst(lots, event.data.points).lots;
    case 'RewardRedeemed':
      // The points left with the PointsDeducted appended beside it.
      return [...lots];
  }
};

export const pointsAccount: Decider<
  PointsAccountCommand,
  PointsAccountEvent,
  PointsAccount,
  PointsAccountRejection
> = { initialState, decide, evolve };
