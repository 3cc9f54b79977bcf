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
      data: { transactionId: string; memberId: string; expiryDays: number; now: Date };
    };

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
};

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
      const { transactionId, memberId, expiryDays, now } = command.data;
      if (!isIntegerBetween(expiryDays, 1, 3650)) {
        return reject(
          'invalid_points_expiry_days',
          'expiryDays must be an integer from 1 to 3650',
          'expiry_days',
        );
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
  switch (event.type) {
    case 'PointsAwarded':
    case 'PointsDeducted':
    case 'RewardRedeemed':
      return { ...state, ...totals, lastActivityAt: event.data.at };
    case 'PointsExpired':
      return { ...state, ...totals };
    case 'PointsRefunded':
      return {
        ...state,
        ...totals,
        refundedOrderIds: [...state.refundedOrderIds, event.data.orderId],
      };
  }
};

export const pointsAccount: Decider<
  PointsAccountCommand,
  PointsAccountEvent,
  PointsAccount,
  PointsAccountRejection
> = { initialState, decide, evolve };
