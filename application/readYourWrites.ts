import { comparePositions, type Position } from '../domain/recordedEvent.ts';

/**
 * How far the projections a read depends on have got, in whichever process runs them: the
 * read-model projector, and the policy reactor, whose follow-up events (tier changes, leaderboard
 * scores) the read models project in turn.
 */
export type ProjectionProgress = {
  /** Whether the read-model projector has handled `position`. */
  readModelsReached: (position: Position) => Promise<boolean>;
  /** Whether the policy reactor has handled `position`. */
  reactorReached: (position: Position) => Promise<boolean>;
  /** The position of the last event committed now; null for an empty log. */
  head: () => Promise<Position | null>;
};

/**
 * Read-your-writes for `?after_position` (issue 14 item 6): resolves true once a read sees
 * everything `position` implies, false if it does not within `waitMs` (real time: the
 * application clock may be a test's, standing still).
 *
 * First the policy reactor has handled `position`: it appends its follow-ups of an event before it
 * records the event as handled, so from then on every follow-up of the events up to `position` is
 * in the log, at or before its head. Then the read models have reached that head (or `position`,
 * whichever is later). The head is read once: later events do not prolong the wait. One hop only:
 * a follow-up of a follow-up (a tier change after a refund the reactor issued) is not waited for.
 */
export const readYourWrites =
  (progress: ProjectionProgress, waitMs: number) =>
  async (position: Position): Promise<boolean> => {
    const deadline = performance.now() + waitMs;
    const until = async (reached: () => Promise<boolean>): Promise<boolean> => {
      for (let pauseMs = 2; ; pauseMs = Math.min(pauseMs * 2, 50)) {
        if (await reached()) return true;
        const leftMs = deadline - performance.now();
        if (leftMs <= 0) return false;
        await new Promise((resolve) => setTimeout(resolve, Math.min(pauseMs, leftMs)));
      }
    };
    if (!(await until(() => progress.reactorReached(position)))) return false;
    const head = await progress.head();
    const target = head !== null && comparePositions(head, position) > 0 ? head : position;
    return until(() => progress.readModelsReached(target));
  };
