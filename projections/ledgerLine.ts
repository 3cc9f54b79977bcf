import type { PointsAccountEvent, PointsMovementEvent } from '../domain/pointsAccount.ts';

/** The points events that write a ledger line (RewardRedeemed repeats its deduction's). */
export type LedgerEvent = Exclude<PointsMovementEvent, { type: 'RewardRedeemed' }>;

export const ledgerKinds = {
  PointsAwarded: 'awarded',
  PointsDeducted: 'deducted',
  PointsExpired: 'expired',
  PointsRefunded: 'refunded',
  PointsReversed: 'reversed',
} as const satisfies Record<LedgerEvent['type'], string>;

export type LedgerKind = (typeof ledgerKinds)[LedgerEvent['type']];

export const isLedgerEvent = (type: string): type is LedgerEvent['type'] =>
  Object.hasOwn(ledgerKinds, type);

/**
 * What a ledger line says of a points event, the same in the live projector, the replay and the
 * audit's history: its kind, its points signed as they moved the balance, and its reference (a
 * refund's order; a reversal's the transaction it undid).
 */
export const ledgerLineOf = (
  event: LedgerEvent,
): { kind: LedgerKind; points: number; reference: string | null } => {
  const d = event.data;
  switch (event.type) {
    case 'PointsAwarded':
      return { kind: 'awarded', points: d.points, reference: event.data.reference };
    case 'PointsDeducted':
      return { kind: 'deducted', points: -d.points, reference: event.data.reference };
    case 'PointsExpired':
      return { kind: 'expired', points: -d.points, reference: null };
    case 'PointsRefunded':
      return { kind: 'refunded', points: d.points, reference: event.data.orderId };
    case 'PointsReversed':
      return {
        kind: 'reversed',
        points: event.data.reversed === 'award' ? -d.points : d.points,
        reference: event.data.reversalOf,
      };
  }
};

/** Awards and deductions (a redemption's too) are activity; expiry counts from the last one. */
export const isActivity = (event: PointsAccountEvent): boolean =>
  event.type === 'PointsAwarded' ||
  event.type === 'PointsDeducted' ||
  event.type === 'RewardRedeemed';
