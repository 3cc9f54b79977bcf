/**
 * Policies react to recorded facts with commands of their own (DESIGN.md: nothing writes to a
 * read model except its projector). Pure: the caller supplies the program settings and time.
 */
import type { LeaderboardCommand } from './leaderboard.ts';
import type { MemberCommand } from './member.ts';
import {
  isMovementEvent,
  type PointsAccountEvent,
  type PointsMovementEvent,
} from './pointsAccount.ts';
import { tierFor, type ProgramChanges, type Tier, type TierBasis } from './program.ts';

export type ChangeTier = Extract<MemberCommand, { type: 'ChangeTier' }>;
export type RecordScore = Extract<LeaderboardCommand, { type: 'RecordScore' }>;
export type ReverseScore = Extract<LeaderboardCommand, { type: 'ReverseScore' }>;

export const tierReasons = {
  up: 'Points threshold reached',
  down: 'Points fell below threshold',
  awardReversed: 'Award reversed',
  deductionReversed: 'Deduction reversed',
  rulesChanged: 'Tier rules changed',
} as const;

/**
 * Whether a program update changes which tier a member's points give: the tier table (thresholds,
 * names, tiers added or removed) or the basis. Such a change re-evaluates every member.
 */
export const tierRulesChanged = (changes: ProgramChanges): boolean =>
  changes.tiers !== undefined || changes.tierBasis !== undefined;

/** The value tiers are measured against after the event. */
export const basisValueOf = (event: PointsMovementEvent, tierBasis: TierBasis): number =>
  tierBasis === 'lifetime' ? event.data.lifetimePoints : event.data.newBalance;

/** Index in the ordered tier table; no tier, or one the table no longer has, ranks lowest. */
const rankOf = (tiers: readonly Tier[], tier: string | null): number =>
  tier === null ? -1 : tiers.findIndex((t) => t.name === tier);

/** The ChangeTier a points event calls for, or null when the member's tier is already right. */
export const tierPolicy = (input: {
  event: PointsAccountEvent;
  program: { tiers: readonly Tier[]; tierBasis: TierBasis };
  currentTier: string | null;
  now: Date;
}): ChangeTier | null => {
  const { event, program, currentTier, now } = input;
  if (!isMovementEvent(event)) return null;
  const newTier = tierFor(program.tiers, basisValueOf(event, program.tierBasis));
  if (newTier === currentTier) return null;
  const up = rankOf(program.tiers, newTier) > rankOf(program.tiers, currentTier);
  const reason =
    event.type === 'PointsReversed'
      ? event.data.reversed === 'award'
        ? tierReasons.awardReversed
        : tierReasons.deductionReversed
      : up
        ? tierReasons.up
        : tierReasons.down;
  return {
    type: 'ChangeTier',
    data: { memberId: event.data.memberId, newTier, reason, now },
  };
};

/**
 * One RecordScore per leaderboard for an award. Only awards score: deductions, redemptions,
 * expiry and refunds (a refund returns spent points, it is not earned) leave standings alone.
 * The transaction id makes a replayed award count once.
 */
export const leaderboardPolicy = (input: {
  event: PointsAccountEvent;
  leaderboardIds: readonly string[];
  now: Date;
}): RecordScore[] => {
  const { event, leaderboardIds, now } = input;
  if (event.type !== 'PointsAwarded') return [];
  const { memberId, points, transactionId, at } = event.data;
  // The award's time, not `now`: a reactor that gets to it after midnight must still count it
  // in the period it was made in.
  const awardedAt = new Date(at);
  return leaderboardIds.map((leaderboardId) => ({
    type: 'RecordScore',
    data: { leaderboardId, memberId, points, transactionId, awardedAt, now },
  }));
};

/**
 * One ReverseScore per leaderboard for the reversal of an award: each board takes the award's
 * points back from the period that counted them (the open one, or an ended one as a correction),
 * and a board that never counted it does nothing.
 */
export const reversalPolicy = (input: {
  event: PointsAccountEvent;
  leaderboardIds: readonly string[];
  now: Date;
}): ReverseScore[] => {
  const { event, leaderboardIds, now } = input;
  if (event.type !== 'PointsReversed' || event.data.reversed !== 'award') return [];
  const { memberId, transactionId, reversalOf } = event.data;
  return leaderboardIds.map((leaderboardId) => ({
    type: 'ReverseScore',
    data: { leaderboardId, memberId, transactionId, reversalOf, now },
  }));
};
