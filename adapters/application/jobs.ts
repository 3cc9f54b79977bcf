import type { DatabaseHandle } from '../db/database.ts';
import type { Clock } from './commandHandler.ts';
import type { Incentives } from './incentives.ts';
import type { Queries } from './queries.ts';

export type JobName = 'expiry' | 'leaderboards';

export type JobReport = { job: JobName; ran: boolean; changed: number };

/** Local hour of `at` in `timezone` (0-23). */
const localHour = (at: Date, timezone: string): number =>
  Number(
    new Intl.DateTimeFormat('en-GB', {
      timeZone: timezone,
      hour: '2-digit',
      hourCycle: 'h23',
    }).format(at),
  );

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
}) => {
  const { database, incentives, queries, clock } = deps;
  const context = (programId: string) => ({
    programId,
    actor: 'system:scheduler',
    correlationId: `job-${clock.now().toISOString()}`,
    causationId: null,
  });

  const locked = async (job: JobName, work: () => Promise<number>): Promise<JobReport> => {
    const session = await database.openSession();
    try {
      if (!(await session.tryAdvisoryLock(`job:${job}`))) return { job, ran: false, changed: 0 };
      return { job, ran: true, changed: await work() };
    } finally {
      await session.close();
    }
  };

  return {
    /**
     * Expires the points of members inactive for longer than their program's window. With
     * `atLocalHour` set, only programs whose local time is in that hour are swept (the hourly
     * cron runs it with 2: "daily at 02:00 in each program's timezone").
     */
    expiry: (options: { atLocalHour: number | null } = { atLocalHour: null }) =>
      locked('expiry', async () => {
        const now = clock.now();
        let changed = 0;
        for (const program of await queries.programsWithExpiry()) {
          if (
            options.atLocalHour !== null &&
            localHour(now, program.timezone) !== options.atLocalHour
          )
            continue;
          const days = program.points_expiry_days!;
          const cutoff = new Date(now.getTime() - days * 86_400_000);
          let after = '';
          for (;;) {
            const page = await queries.inactiveMembers(program.program_id, cutoff, 500, after);
            for (const row of page) {
              const outcome = await incentives.expirePoints(
                program.program_id,
                row.member_id,
                days,
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

    /** Closes every leaderboard period whose end has passed, and opens the next. */
    leaderboards: () =>
      locked('leaderboards', async () => {
        let changed = 0;
        for (const due of await queries.dueLeaderboards(clock.now())) {
          const outcome = await incentives.closePeriod(
            due.program_id,
            due.leaderboard_id,
            false,
            context(due.program_id),
          );
          if (outcome.ok && outcome.value.events.length > 0) changed++;
        }
        return changed;
      }),
  };
};

export type Jobs = ReturnType<typeof jobs>;
