import type { PointsAccountEvent, PointsLot } from './pointsAccountEvents.ts';
import { isMovementEvent } from './pointsAccountEvents.ts';

/** Points lots: the balance split by arrival, as `per_award` expiry spends and expires it. */

const dayMs = 86_400_000;

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
