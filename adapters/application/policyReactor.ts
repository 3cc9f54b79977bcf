import type { DomainEvent } from '../../domain/events.ts';
import { leaderboard } from '../../domain/leaderboard.ts';
import { member } from '../../domain/member.ts';
import { leaderboardPolicy, tierPolicy } from '../../domain/policies.ts';
import type { RecordedEvent } from '../../domain/recordedEvent.ts';
import type { Clock, CommandHandler } from './commandHandler.ts';
import { streams, type Incentives } from './incentives.ts';
import type { Queries } from './queries.ts';

/** The subscription name of the policy reactor. */
export const policiesSubscription = 'policies';

/**
 * Turns facts into the commands policies call for: tier changes after points move, leaderboard
 * scores after awards, refunds and stock release after a cancellation. Runs as a durable
 * subscription; every command it issues is idempotent (same tier, same transaction id, same
 * order), so a batch handled twice after a crash changes nothing the second time.
 */
export const policyReactor = (deps: {
  handler: CommandHandler;
  incentives: Incentives;
  queries: Queries;
  clock: Clock;
}) => {
  const { handler, incentives, queries, clock } = deps;
  return async (events: readonly RecordedEvent[]): Promise<void> => {
    for (const recorded of events) {
      const event = { type: recorded.type, data: recorded.data } as DomainEvent;
      const programId = recorded.metadata.programId;
      if (!programId) continue;
      const context = {
        programId,
        actor: 'system:policies',
        correlationId: recorded.metadata.correlationId,
        causationId: recorded.id,
      };
      switch (event.type) {
        case 'PointsAwarded':
        case 'PointsDeducted':
        case 'PointsExpired':
        case 'PointsRefunded': {
          const { state: p } = await incentives.loadProgram(programId);
          const memberStream = streams.member(programId, event.data.memberId);
          const { state: m } = await handler.load(member, memberStream);
          if (p.exists && m.exists) {
            const change = tierPolicy({ event, program: p, currentTier: m.tier, now: clock.now() });
            if (change)
              await handler.handle(member, memberStream, change, { ...context, now: clock.now() });
          }
          if (event.type === 'PointsAwarded') {
            const leaderboardIds = await queries.leaderboardIdsOf(programId);
            for (const command of leaderboardPolicy({ event, leaderboardIds, now: clock.now() })) {
              await handler.handle(
                leaderboard,
                streams.leaderboard(programId, command.data.leaderboardId),
                command,
                { ...context, now: clock.now() },
              );
            }
          }
          break;
        }
        case 'OrderCancelled':
          await incentives.settleCancellation(programId, event.data.orderId, context);
          break;
        default:
          break;
      }
    }
  };
};
