import { leaderboard } from '../../domain/leaderboard.ts';
import type { Period } from '../../domain/periods.ts';
import type { CommandContext } from '../commandHandler.ts';
import { reactorCaughtUp, type ReactorProgress } from '../policyReactor.ts';
import { refused, run, streams, type CommandKit } from './kit.ts';

export type LeaderboardDeps = {
  /** How far the policy reactor has got: a forced period close waits for it. */
  reactor: ReactorProgress;
  /** How long a forced close waits for the reactor before refusing with `scores_pending`. */
  reactorWaitMs: number;
};

/** Leaderboards: creating one, and closing its current period. */
export const leaderboardCommands = (kit: CommandKit, deps: LeaderboardDeps) => ({
  async createLeaderboard(
    programId: string,
    input: { name: string; period: Period; topN: number },
    context: CommandContext,
  ) {
    const found = await kit.existingProgram(programId);
    if (!found.ok) return found.refusal;
    const leaderboardId = kit.idFor('leaderboard', context, 'leaderboard');
    const c = kit.ctx(context);
    return run(
      await kit.handler.handle(
        leaderboard,
        streams.leaderboard(programId, leaderboardId),
        {
          type: 'CreateLeaderboard',
          data: {
            leaderboardId,
            name: input.name,
            period: input.period,
            timezone: found.state.timezone,
            topN: input.topN,
            now: c.now,
          },
        },
        c,
      ),
    );
  },

  /**
   * Ends the current period: at its natural end (`force` false: the scheduler, which waits for
   * the policy reactor itself), or now. A forced close first waits for the reactor to have
   * handled the log as it stands, so every award made before the call is on the board, and
   * takes its `now` after that wait.
   */
  async closePeriod(
    programId: string,
    leaderboardId: string,
    force: boolean,
    context: CommandContext,
  ) {
    // An unknown board is a 404 at once, not a wait for the reactor that ends in a 503.
    const { state: board } = await kit.handler.load(
      leaderboard,
      streams.leaderboard(programId, leaderboardId),
    );
    if (!board.exists)
      return refused<never>({
        ok: false,
        rejection: 'leaderboard_not_found',
        message: 'no such leaderboard',
        field: 'leaderboard_id',
      });
    if (force && !(await reactorCaughtUp(deps.reactor, deps.reactorWaitMs)))
      return refused<never>({
        ok: false,
        rejection: 'scores_pending',
        message: 'awards made before now are still being scored on the leaderboard; retry shortly',
      });
    const c = kit.ctx(context);
    return run(
      await kit.handler.handle(
        leaderboard,
        streams.leaderboard(programId, leaderboardId),
        { type: 'ClosePeriod', data: { leaderboardId, now: c.now, force } },
        c,
      ),
    );
  },
});
