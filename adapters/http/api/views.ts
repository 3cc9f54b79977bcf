import { defaultTopN, type LeaderboardEvent } from '../../../domain/leaderboard.ts';
import type { MemberEvent } from '../../../domain/member.ts';
import type { Order } from '../../../domain/order.ts';
import { periodIdOf } from '../../../domain/periods.ts';
import type { PointsAccountEvent } from '../../../domain/pointsAccount.ts';
import type { ProgramEvent, ProgramSettings, Tier } from '../../../domain/program.ts';
import type { RewardEvent } from '../../../domain/reward.ts';
import { pointsExpiryView } from '../../../projections/queries.ts';
import type * as r from './responses.ts';
import type { Body, CommandView, NothingToShow } from './responses.ts';

/**
 * The API's answers to commands, in wire (snake_case) form: one view per resource, built from
 * the events or the state a command returned. Reads come from projections/queries.ts.
 */

type EventData<E extends { type: string }, T extends E['type']> =
  Extract<E, { type: T }> extends { data: infer D } ? D : never;

/** The first event when it has the type the command records; null otherwise (nothing to show). */
const first = <E extends { type: string; data: unknown }, T extends E['type']>(
  events: readonly E[],
  type: T,
): EventData<E, T> | null => {
  const event = events[0];
  return event?.type === type ? (event.data as EventData<E, T>) : null;
};

const tiersView = (tiers: readonly Tier[]) =>
  tiers.map((t) => ({ name: t.name, min_points: t.minPoints }));

/** A program as GET, PATCH and (with its creation time) POST answer with it. */
export const programView = (
  program: ProgramSettings & { programId: string },
): Body<typeof r.programSchema> => ({
  id: program.programId,
  name: program.name,
  tiers: tiersView(program.tiers),
  tier_basis: program.tierBasis,
  ...pointsExpiryView(program.pointsExpiryDays, program.pointsExpiryMode),
  timezone: program.timezone,
  notification_email: program.notificationEmail,
});

export const programCreatedView = ({
  events,
}: {
  events: readonly ProgramEvent[];
}): CommandView<typeof r.programCreatedSchema> | NothingToShow => {
  const created = first(events, 'ProgramCreated');
  return created ? { ...programView(created), created_at: created.at } : {};
};

export const memberRegisteredView = ({
  events,
}: {
  events: readonly MemberEvent[];
}): CommandView<typeof r.memberRegisteredSchema> | NothingToShow => {
  const d = first(events, 'MemberRegistered');
  if (!d) return {};
  return {
    id: d.memberId,
    email: d.email,
    name: d.name,
    external_id: d.externalId,
    attributes: d.attributes,
    tier: d.tier,
    balance: 0,
    lifetime_points: 0,
    status: 'active',
    created_at: d.at,
  };
};

export const reversalView = (
  value: { events: readonly PointsAccountEvent[] } | undefined,
): CommandView<typeof r.reversalSchema> | NothingToShow => {
  const d = first(value?.events ?? [], 'PointsReversed');
  if (!d) return {};
  return {
    transaction_id: d.transactionId,
    reversal_of: d.reversalOf,
    reversed: d.reversed,
    member_id: d.memberId,
    points: d.points,
    reason: d.reason,
    new_balance: d.newBalance,
    lifetime_points: d.lifetimePoints,
    created_at: d.at,
  };
};

export const movementView = (
  value: { events: readonly PointsAccountEvent[] } | undefined,
): CommandView<typeof r.movementSchema> | NothingToShow => {
  const d =
    first(value?.events ?? [], 'PointsAwarded') ?? first(value?.events ?? [], 'PointsDeducted');
  if (!d) return {};
  return {
    transaction_id: d.transactionId,
    member_id: d.memberId,
    points: d.points,
    reason: d.reason,
    reference: d.reference,
    new_balance: d.newBalance,
    created_at: d.at,
  };
};

export const rewardCreatedView = ({
  events,
}: {
  events: readonly RewardEvent[];
}): CommandView<typeof r.rewardCreatedSchema> | NothingToShow => {
  const d = first(events, 'RewardCreated');
  if (!d) return {};
  return {
    id: d.rewardId,
    name: d.name,
    points_cost: d.pointsCost,
    stock: d.stock,
    kind: d.kind,
    active: true,
    created_at: d.at,
  };
};

/** An order's state after a fulfilment step: ship, deliver or cancel. */
export const orderStateView =
  (orderId: string) =>
  ({ state }: { state: Order }): CommandView<typeof r.orderStepSchema> | NothingToShow =>
    state.exists
      ? { id: orderId, status: state.status, member_id: state.memberId, reward_id: state.rewardId }
      : {};

export const leaderboardCreatedView = ({
  events,
}: {
  events: readonly LeaderboardEvent[];
}): CommandView<typeof r.leaderboardCreatedSchema> | NothingToShow => {
  const d = first(events, 'LeaderboardCreated');
  if (!d) return {};
  return {
    id: d.leaderboardId,
    name: d.name,
    period: d.period,
    timezone: d.timezone,
    top_n: d.topN ?? defaultTopN,
    period_start: d.periodStart,
    period_end: d.periodEnd,
    created_at: d.at,
  };
};

/** An ended period as close-period answers with it. */
export const endedPeriodView = (ended: {
  periodStart: string;
  periodEnd: string;
  standings: readonly { position: number; memberId: string; points: number }[];
}): Body<typeof r.endedPeriodSchema> => ({
  period_id: periodIdOf(ended.periodStart),
  period_start: ended.periodStart,
  period_end: ended.periodEnd,
  standings: ended.standings.map((x) => ({
    position: x.position,
    member_id: x.memberId,
    points: x.points,
  })),
});
