/** The points account's commands, events and refusals (the decider is pointsAccount.ts). */

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

export type PointsMovement = {
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
