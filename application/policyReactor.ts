import type { DomainEvent } from '../domain/events.ts';
import { leaderboard } from '../domain/leaderboard.ts';
import { member, tierLocked } from '../domain/member.ts';
import {
  leaderboardPolicy,
  reversalPolicy,
  tierPolicy,
  tierRulesChanged,
} from '../domain/policies.ts';
import { comparePositions, type Position, type RecordedEvent } from '../domain/recordedEvent.ts';
import type { CommandContext, CommandHandler } from './commandHandler.ts';
import type { Clock } from './ports.ts';
import { streams, type Incentives } from './incentives.ts';
import { sql, type Kysely } from 'kysely';
import type { ApplicationTables } from './policyTables.ts';
import type { TraceContext } from './tracing.ts';

/** The subscription name of the policy reactor. */
export const policiesSubscription = 'policies';

/**
 * Where the event log ends and how far the policy reactor has got, in whichever process runs it.
 * A leaderboard period closes only once the reactor has scored every award recorded before the
 * close, or those awards would be counted in the next period.
 */
export type ReactorProgress = {
  /** The position of the last event committed now; null for an empty log. */
  head: () => Promise<Position | null>;
  /** The last position the policy reactor has handled; null before its first batch. */
  handled: () => Promise<Position | null>;
};

/**
 * Resolves true once the reactor has handled the log as it stood at the call, false if it has
 * not within `waitMs` (real time: the application clock may be a test's, standing still).
 */
export const reactorCaughtUp = async (
  progress: ReactorProgress,
  waitMs: number,
): Promise<boolean> => {
  const target = await progress.head();
  if (target === null) return true;
  const deadline = performance.now() + waitMs;
  for (let pauseMs = 2; ; pauseMs = Math.min(pauseMs * 2, 50)) {
    const handled = await progress.handled();
    if (handled !== null && comparePositions(handled, target) >= 0) return true;
    const leftMs = deadline - performance.now();
    if (leftMs <= 0) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(pauseMs, leftMs)));
  }
};

/**
 * Records the rule-change job of a ProgramUpdated that changed the tiers or their basis, in the
 * reactor's transaction, so it is recorded exactly when the event counts as handled. The same
 * event handled again changes nothing; a later change supersedes the job (a new pass from the
 * first member: the members already evaluated were evaluated against rules that no longer hold);
 * an earlier one never replaces a later one. The `tiers` job works through it (jobs.ts).
 */
const recordTierReevaluation = async (
  tx: Kysely<ApplicationTables>,
  programId: string,
  recorded: RecordedEvent,
  now: Date,
): Promise<void> => {
  const row = {
    program_id: programId,
    event_id: recorded.id,
    commit_position: recorded.position.commit.toString(),
    prepare_position: recorded.position.prepare.toString(),
    requested_at: now,
    cursor: '',
    handled: 0,
    moved: 0,
    total: null,
    finished_at: null,
  };
  await tx
    .insertInto('policy_tier_reevaluations')
    .values(row)
    .onConflict((oc) =>
      oc
        .column('program_id')
        .doUpdateSet(row)
        .where(
          sql<boolean>`(policy_tier_reevaluations.commit_position,
          policy_tier_reevaluations.prepare_position)
          < (excluded.commit_position, excluded.prepare_position)`,
        ),
    )
    .execute();
};

/** What the reactions to one batch share: the dependencies and the batch's cached reads. */
type Batch = {
  handler: CommandHandler;
  incentives: Incentives;
  clock: Clock;
  programOf: (programId: string) => ReturnType<Incentives['loadProgram']>;
  leaderboardsOf: (programId: string) => Promise<string[]>;
};

type Reaction<E> = { programId: string; event: E; context: CommandContext };

type PointsEvent = Extract<
  DomainEvent,
  {
    type:
      'PointsAwarded' | 'PointsDeducted' | 'PointsExpired' | 'PointsRefunded' | 'PointsReversed';
  }
>;

/** A points event moves the member's tier by the rules, and scores it on the open boards. */
const scorePoints = async (batch: Batch, { programId, event, context }: Reaction<PointsEvent>) => {
  const { handler, clock, programOf, leaderboardsOf } = batch;
  const { state: p } = await programOf(programId);
  const memberStream = streams.member(programId, event.data.memberId);
  const { state: m } = await handler.load(member, memberStream);
  // An operator's override holds the tier until its hold lapses (the tier job then
  // applies the rules again).
  if (p.exists && m.exists && !tierLocked(m, clock.now())) {
    const change = tierPolicy({ event, program: p, currentTier: m.tier, now: clock.now() });
    if (change)
      await handler.handle(member, memberStream, change, { ...context, now: clock.now() });
  }
  const leaderboardIds = await leaderboardsOf(programId);
  const commands = [
    ...leaderboardPolicy({ event, leaderboardIds, now: clock.now() }),
    ...reversalPolicy({ event, leaderboardIds, now: clock.now() }),
  ];
  for (const command of commands) {
    await handler.handle(
      leaderboard,
      streams.leaderboard(programId, command.data.leaderboardId),
      command,
      { ...context, now: clock.now() },
    );
  }
};

/**
 * A deactivated member leaves every open period, and a reactivated one gets back the score they
 * left with where that period is still open. Freezing the points (and paying the refunds that
 * waited) is done by the command; repeated here, as the member is now, it heals a crash between
 * the two appends.
 */
const followActivation = async (
  batch: Batch,
  {
    programId,
    event,
    context,
  }: Reaction<Extract<DomainEvent, { type: 'MemberDeactivated' | 'MemberReactivated' }>>,
) => {
  const { handler, incentives, clock, leaderboardsOf } = batch;
  const { memberId } = event.data;
  const type = event.type === 'MemberDeactivated' ? 'WithdrawMember' : 'ReinstateMember';
  for (const leaderboardId of await leaderboardsOf(programId)) {
    await handler.handle(
      leaderboard,
      streams.leaderboard(programId, leaderboardId),
      { type, data: { leaderboardId, memberId, now: clock.now() } },
      { ...context, now: clock.now() },
    );
  }
  await incentives.settleActivation(programId, memberId, context);
};

/**
 * The program's latest zone, not the event's: a change handled again after a later one must not
 * bring an old zone back.
 */
const followTimezone = async (
  batch: Batch,
  { programId, context }: Omit<Reaction<unknown>, 'event'>,
) => {
  const { handler, clock, programOf, leaderboardsOf } = batch;
  const { state: p } = await programOf(programId);
  if (!p.exists) return;
  for (const leaderboardId of await leaderboardsOf(programId)) {
    await handler.handle(
      leaderboard,
      streams.leaderboard(programId, leaderboardId),
      {
        type: 'ChangeTimezone',
        data: { leaderboardId, timezone: p.timezone, now: clock.now() },
      },
      { ...context, now: clock.now() },
    );
  }
};

/**
 * Turns facts into the commands policies call for: tier changes after points move, leaderboard
 * scores after awards, refunds and stock release after a cancellation. Runs as a durable
 * subscription; every command it issues is idempotent (same tier, same transaction id, same
 * order), so a batch handled twice after a crash changes nothing the second time.
 */
export const policyReactor = (deps: {
  handler: CommandHandler;
  incentives: Incentives;
  clock: Clock;
}) => {
  const { handler, incentives, clock } = deps;
  return async (
    events: readonly RecordedEvent[],
    tx: Kysely<ApplicationTables>,
    trace?: TraceContext,
  ): Promise<void> => {
    // Read once per batch, not once per event: a program's settings (its latest state, as before)
    // and its leaderboards (forgotten when this batch creates one, which is remembered below).
    const programs = new Map<string, ReturnType<Incentives['loadProgram']>>();
    const leaderboards = new Map<string, Promise<string[]>>();
    const programOf = (programId: string) => {
      let loaded = programs.get(programId);
      if (loaded === undefined) {
        loaded = incentives.loadProgram(programId);
        programs.set(programId, loaded);
      }
      return loaded;
    };
    const leaderboardsOf = (programId: string) => {
      let ids = leaderboards.get(programId);
      if (ids === undefined) {
        ids = tx
          .selectFrom('policy_leaderboards')
          .select('leaderboard_id')
          .where('program_id', '=', programId)
          .execute()
          .then((rows) => rows.map((row) => row.leaderboard_id));
        leaderboards.set(programId, ids);
      }
      return ids;
    };
    const batch: Batch = { handler, incentives, clock, programOf, leaderboardsOf };
    for (const recorded of events) {
      const event = { type: recorded.type, data: recorded.data } as DomainEvent;
      const programId = recorded.metadata.programId;
      if (!programId) continue;
      const context = {
        programId,
        actor: 'system:policies',
        correlationId: recorded.metadata.correlationId,
        causationId: recorded.id,
        ...(trace && { trace }),
      };
      switch (event.type) {
        case 'PointsAwarded':
        case 'PointsDeducted':
        case 'PointsExpired':
        case 'PointsRefunded':
        case 'PointsReversed': {
          await scorePoints(batch, { programId, event, context });
          break;
        }
        case 'MemberDeactivated':
        case 'MemberReactivated': {
          await followActivation(batch, { programId, event, context });
          break;
        }
        case 'LeaderboardCreated':
          // Remembered here, in order, so an award right after it is scored on it.
          await tx
            .insertInto('policy_leaderboards')
            .values({ program_id: programId, leaderboard_id: event.data.leaderboardId })
            .onConflict((oc) => oc.doNothing())
            .execute();
          leaderboards.delete(programId);
          break;
        case 'OrderCancelled':
          await incentives.settleCancellation(programId, event.data.orderId, context);
          break;
        case 'ProgramUpdated': {
          if (tierRulesChanged(event.data.changes))
            await recordTierReevaluation(tx, programId, recorded, clock.now());
          if (event.data.changes.timezone !== undefined)
            await followTimezone(batch, { programId, context });
          break;
        }
        case 'ProgramCreated':
        case 'MemberRegistered':
        case 'MemberUpdated':
        case 'MemberTierChanged':
        case 'MemberTierLocked':
        case 'MemberReservationRevoked':
        case 'IdentifierReserved':
        case 'IdentifierReleased':
        case 'PointsFrozen':
        case 'PointsUnfrozen':
        case 'RefundDeferred':
        case 'RewardRedeemed':
        case 'RewardCreated':
        case 'RewardChanged':
        case 'StockReserved':
        case 'StockReleased':
        case 'OrderPlaced':
        case 'OrderShipped':
        case 'OrderDelivered':
        case 'ScoreRecorded':
        case 'ScoreReversed':
        case 'PeriodCorrected':
        case 'MemberWithdrawn':
        case 'MemberReinstated':
        case 'PositionChanged':
        case 'PeriodEnded':
        case 'PeriodOpened':
        case 'LeaderboardTimezoneChanged':
          // No policy reacts to these.
          break;
      }
    }
  };
};
