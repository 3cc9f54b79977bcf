import { streamName, type IdKind } from '../../domain/ids.ts';
import type { LeaderboardRejection } from '../../domain/leaderboard.ts';
import { member, type MemberRejection } from '../../domain/member.ts';
import type { OrderRejection } from '../../domain/order.ts';
import type { PointsAccountRejection } from '../../domain/pointsAccount.ts';
import { program, type ProgramRejection } from '../../domain/program.ts';
import type { RewardRejection } from '../../domain/reward.ts';
import { comparePositions, type Position } from '../../domain/recordedEvent.ts';
import type { CommandContext, CommandHandler, CommandResult } from '../commandHandler.ts';
import { reservationStream } from '../memberIdentifiers.ts';
import type { Clock, Ids } from '../ports.ts';

/**
 * What every use case of commands/ shares: the streams, the outcome type the API maps to HTTP,
 * and a kit of the dependencies and guards the commands are written with.
 */

/** Every refusal the API can answer with; mapped to HTTP in one exhaustive table. */
export type Rejection =
  | ProgramRejection
  | MemberRejection
  | PointsAccountRejection
  | RewardRejection
  | OrderRejection
  | LeaderboardRejection
  | 'concurrency_conflict'
  /** A close must wait for the policy reactor to score the awards made before it. */
  | 'scores_pending';

export type Refused = {
  ok: false;
  rejection: Rejection;
  message: string;
  field?: string;
  /** With `member_exists`: the member that has the email or external id. */
  memberId?: string;
};

export type Outcome<T> = { ok: true; value: T; position: Position | null } | Refused;

export const streams = {
  program: (programId: string) => streamName('program', programId, programId),
  member: (programId: string, memberId: string) => streamName('member', programId, memberId),
  points: (programId: string, memberId: string) => streamName('points', programId, memberId),
  reward: (programId: string, rewardId: string) => streamName('reward', programId, rewardId),
  order: (programId: string, orderId: string) => streamName('order', programId, orderId),
  leaderboard: (programId: string, leaderboardId: string) =>
    streamName('leaderboard', programId, leaderboardId),
  /** One per program and email or external id: see memberIdentifiers.ts. */
  reservation: reservationStream,
};

/** A refusal as an outcome of any type (only the fields the API reads are kept). */
export const refused = <T>(result: Refused): Outcome<T> => ({
  ok: false,
  rejection: result.rejection,
  message: result.message,
  ...(result.field !== undefined && { field: result.field }),
  ...(result.memberId !== undefined && { memberId: result.memberId }),
});

/** A single-stream command's result as an outcome: its events and state, or its refusal. */
export const run = <E extends { type: string; data: unknown }, S, R extends string>(
  result: CommandResult<E, S, R>,
): Outcome<{ events: E[]; state: S }> =>
  result.ok
    ? { ok: true, value: { events: result.events, state: result.state }, position: result.position }
    : refused(result as Refused);

/** An outcome that changed nothing. */
export const unchanged = () => ({ ok: true as const, value: { events: [] }, position: null });

/** The later of two positions (null: nothing was appended). */
export const later = (a: Position | null, b: Position | null): Position | null => {
  if (!a) return b;
  if (!b) return a;
  return comparePositions(a, b) >= 0 ? a : b;
};

/** A member command that lost its reservation to a takeover this many times gives up. */
export const reservationRounds = 3;

export const lostReservations = <T>(): Outcome<T> => ({
  ok: false,
  rejection: 'concurrency_conflict',
  message: `the reservations kept being taken over: gave up after ${reservationRounds} rounds`,
});

export type CommandKit = ReturnType<typeof commandKit>;

/**
 * How old a cached member state the award and deduct guard accepts: the same 5 s as a revoked
 * API key's window in another process. At one second the guard re-read the member stream on
 * most awards (a member awarded less than once a second), one query in two on the award path
 * (BENCHMARKS.md, "Where an award's time goes").
 */
export const memberGuardMaxAgeMs = 5_000;

export const commandKit = (deps: { handler: CommandHandler; clock: Clock; ids: Ids }) => {
  const { handler, clock, ids } = deps;
  const loadProgram = (programId: string) => handler.load(program, streams.program(programId));
  const loadMember = (programId: string, memberId: string) =>
    handler.load(member, streams.member(programId, memberId));
  return {
    handler,
    clock,
    ids,
    /** The command's context with its `now`, read once. */
    ctx: (context: CommandContext) => ({ ...context, now: clock.now() }),
    /**
     * A new entity's id: random, or derived from the request's Idempotency-Key (and what the id
     * is for), so that a retry of a command that died half-way names the same entities again.
     */
    idFor: (kind: IdKind, context: CommandContext, purpose: string): string =>
      context.idempotency
        ? ids.derivedId(kind, `${context.idempotency.key}:${purpose}`)
        : ids.newId(kind),
    loadProgram,
    loadMember,
    /** Programs are never deleted: a program this process has seen exists without a read. */
    programExists: async (programId: string): Promise<boolean> => {
      const cached = await handler.load(program, streams.program(programId), {
        maxAgeMs: Infinity,
      });
      return cached.state.exists || (await loadProgram(programId)).state.exists;
    },
    /**
     * A guard, not a decision: a member state checked within `memberGuardMaxAgeMs` will do. Every
     * write to the member's stream from this process updates the cached fold, so the window
     * only bounds how long a deactivation made by another process goes unseen here. A member
     * seen missing is read again (another process may have just registered them).
     */
    activeMember: async (programId: string, memberId: string): Promise<Outcome<null>> => {
      let { state } = await handler.load(member, streams.member(programId, memberId), {
        maxAgeMs: memberGuardMaxAgeMs,
      });
      if (!state.exists) ({ state } = await loadMember(programId, memberId));
      if (!state.exists)
        return refused({
          ok: false,
          rejection: 'member_not_found',
          message: `no member ${memberId} in this program`,
          field: 'member_id',
        });
      if (!state.active)
        return refused({
          ok: false,
          rejection: 'member_inactive',
          message: `member ${memberId} is deactivated`,
          field: 'member_id',
        });
      return { ok: true, value: null, position: null };
    },
    /** The program, or a `program_not_found` refusal. */
    existingProgram: async (programId: string) => {
      const { state } = await loadProgram(programId);
      return state.exists
        ? ({ ok: true, state } as const)
        : ({
            ok: false,
            refusal: refused<never>({
              ok: false,
              rejection: 'program_not_found',
              message: `no program ${programId}`,
            }),
          } as const);
    },
  };
};
