import { firstLocalTimeAtOrAfter } from '../../domain/periods.ts';
import type { DatabaseHandle } from '../db/database.ts';
import type { Clock } from './commandHandler.ts';
import type { Incentives } from './incentives.ts';
import { reactorCaughtUp, type ReactorProgress } from './policyReactor.ts';
import type { Queries } from './queries.ts';

export type JobName = 'expiry' | 'leaderboards' | 'tiers';

export type JobReport = {
  job: JobName;
  ran: boolean;
  changed: number;
  /** Set when the run did nothing on purpose and the next run retries. */
  deferred?: 'scores_pending';
};

/**
 * A period is closed this long after its end at the earliest: an award whose command read the
 * clock just before the end may commit a moment after it, and must be in the log the closing
 * job waits for the policy reactor to score. The cron runs at second 10 of every minute.
 */
export const periodCloseGraceMs = 5_000;

/** How long a run waits for the policy reactor before leaving the closing to the next run. */
export const reactorWaitMs = 5_000;

/**
 * How often the scheduler calls `expiry` with a local hour (adapters/runtime.ts: minute 0 of
 * every hour). A program is swept by the one call whose preceding interval holds its daily
 * instant, so each program is swept once per local day.
 */
export const expiryCronIntervalMs = 3_600_000;

/**
 * The scheduled jobs. Both are idempotent (the deciders refuse to expire twice or close a period
 * that is not over) and take a cluster-wide advisory lock, so when several processes run the
 * scheduler one does the work and the others skip.
 */
export const jobs = (deps: {
  database: DatabaseHandle;
  incentives: Incentives;
  queries: Queries;
  clock: Clock;
  reactor: ReactorProgress;
}) => {
  const { database, incentives, queries, clock, reactor } = deps;
  const context = (programId: string) => ({
    programId,
    actor: 'system:scheduler',
    correlationId: `job-${clock.now().toISOString()}`,
    causationId: null,
  });

  const locked = async (
    job: JobName,
    work: () => Promise<number | Pick<JobReport, 'changed' | 'deferred'>>,
  ): Promise<JobReport> => {
    const session = await database.openSession();
    try {
      if (!(await session.tryAdvisoryLock(`job:${job}`))) return { job, ran: false, changed: 0 };
      const done = await work();
      return typeof done === 'number'
        ? { job, ran: true, changed: done }
        : { job, ran: true, ...done };
    } finally {
      await session.close();
    }
  };

  return {
    /**
     * Expires the points that are due in every program with points expiry: in `inactivity` mode
     * the balances of members inactive for longer than the window, in `per_award` mode the lots
     * older than it. Due members come from the read model's indexed dates, not from a fold of
     * every member. With `atLocalHour` set, a program is swept only if its daily instant (the
     * first existing local time at or after that hour on the local day, see
     * firstLocalTimeAtOrAfter) lies in the interval of `expiryCronIntervalMs` up to now: the
     * hourly cron runs it with 2, "daily at 02:00 in each program's timezone", once a day even
     * when a DST gap skips 02:00 (then 03:00) or a fall-back repeats it (the first only).
     */
    expiry: (options: { atLocalHour: number | null } = { atLocalHour: null }) =>
      locked('expiry', async () => {
        const now = clock.now();
        let changed = 0;
        for (const program of await queries.programsWithExpiry()) {
          if (options.atLocalHour !== null) {
            const dailyAt = firstLocalTimeAtOrAfter(program.timezone, now, options.atLocalHour);
            const sinceMs = now.getTime() - dailyAt.getTime();
            if (sinceMs < 0 || sinceMs >= expiryCronIntervalMs) continue;
          }
          const expiry = { mode: program.points_expiry_mode, days: program.points_expiry_days! };
          const cutoff = new Date(now.getTime() - expiry.days * 86_400_000);
          let after = '';
          for (;;) {
            const page = await queries.membersDueForExpiry(
              program.program_id,
              { mode: expiry.mode, before: cutoff },
              { limit: 500, afterMemberId: after },
            );
            for (const row of page) {
              const outcome = await incentives.expirePoints(
                program.program_id,
                row.member_id,
                expiry,
                context(program.program_id),
              );
              if (outcome.ok && outcome.value.events.length > 0) changed++;
            }
            if (page.length < 500) break;
            after = page[page.length - 1]!.member_id;
          }
        }
        return changed;
      }),

    /**
     * Closes every leaderboard period whose end has passed (by `periodCloseGraceMs`), and opens
     * the next; but only once the policy reactor has handled the log as it stood when the run
     * began, which holds every award made before those ends. Until then it closes nothing and
     * the next run (a minute later) tries again.
     */
    leaderboards: (options: { waitMs?: number } = {}) =>
      locked('leaderboards', async () => {
        const due = await queries.dueLeaderboards(
          new Date(clock.now().getTime() - periodCloseGraceMs),
        );
        if (due.length === 0) return 0;
        if (!(await reactorCaughtUp(reactor, options.waitMs ?? reactorWaitMs)))
          return { changed: 0, deferred: 'scores_pending' as const };
        let changed = 0;
        for (const board of due) {
          const outcome = await incentives.closePeriod(
            board.program_id,
            board.leaderboard_id,
            false,
            context(board.program_id),
          );
          if (outcome.ok && outcome.value.events.length > 0) changed++;
        }
        return changed;
      }),

    /**
     * Ends tier overrides' holds that have lapsed: each member goes to the tier the rules give
     * their points now (reason "Tier hold ended"). Runs every minute.
     */
    tiers: () =>
      locked('tiers', async () => {
        let changed = 0;
        for (;;) {
          const due = await queries.lapsedTierLocks(clock.now(), 500);
          for (const row of due) {
            const outcome = await incentives.endLapsedHold(
              row.program_id,
              row.member_id,
              context(row.program_id),
            );
            if (outcome.ok && outcome.value.events.length > 0) changed++;
          }
          // A page whose holds were all ended moves on; one that ended none (the read model
          // lagging behind) would be read again, so the run stops there.
          if (due.length < 500 || changed === 0) break;
        }
        return changed;
      }),
  };
};

export type Jobs = ReturnType<typeof jobs>;
