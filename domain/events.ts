import type { LeaderboardEvent } from './leaderboard.ts';
import type { MemberEvent } from './member.ts';
import type { ReservationEvent } from './memberReservation.ts';
import type { OrderEvent } from './order.ts';
import type { PointsAccountEvent } from './pointsAccount.ts';
import type { ProgramEvent } from './program.ts';
import type { RewardEvent } from './reward.ts';

/** Every domain event there is: what projections and the webhook mapping switch over. */
export type DomainEvent =
  | ProgramEvent
  | MemberEvent
  | ReservationEvent
  | PointsAccountEvent
  | RewardEvent
  | OrderEvent
  | LeaderboardEvent;

export type DomainEventType = DomainEvent['type'];
