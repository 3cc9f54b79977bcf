import type { ExpressionBuilder } from 'kysely';
import { firstLocalTimeAtOrAfter } from '../domain/periods.ts';
import type { ApplicationDb, ApplicationTables } from './policyTables.ts';
import type { CommandContext } from './commandHandler.ts';
import type { Clock, ExclusiveRunner } from './ports.ts';
import type { Incentives } from './incentives.ts';
import { comparePositions } from '../domain/recordedEvent.ts';
import { reactorCaughtUp, type ReactorProgress } from './policyReactor.ts';
import type { Queries } from '../projections/queries.ts';

export type JobName = 'expiry' | 'leaderboards' | 'tiers';

export type JobReport = {
  job: JobName;
  ran: boolean;
  changed: number;
  /** Set when the run did nothing on purpose and the next run retries. */
  deferred?: 'scores_pending' | 'read_models_pending';
  /** The `tiers` job: the rule-change jobs it worked on in this run. */
  reevaluations?: TierReevaluationProgress[];
};

/** Where one program's rule-change job (re-evaluating every member's tier) stands. */
export type TierReevaluationProgress = {
  programId: string;
  /** Members evaluated so far, and the program's members when the pass began (or more). */
  handled: number;
  total: number;
  /** Members whose tier the pass changed. */
  moved: number;
  finished: boolean;
};

/** Members a rule-change job evaluates per page; its cursor is saved after each page. */
export const tierReevaluationPageSize = 500;

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

export type JobDeps = {
  /** The read models and the application's tables. */
  db: ApplicationDb;
  /** One process of the cluster runs a job at a time. */
  exclusive: ExclusiveRunner;
  incentives: Incentives;
  queries: Queries;
  clock: Clock;
  reactor: ReactorProgress;
  /** How far the read-model projector has got: a rule-change job pages through its members. */
  readModels: Pick<ReactorProgress, 'handled'>;
};

/** The jobs' dependencies, and the context their commands run in. */
type Scheduled = JobDeps & { context: (programId: string) => CommandContext };

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
const sweepExpiry = async (
  s: Scheduled,
  options: { atLocalHour: number | null },
): Promise<number> => {
  const { incentives, queries, clock, context } = s;
  const now = clock.now();
  let changed = 0;
  for (const program of await queries.programsWithExpiry()) {
    if (options.atLocalHour !== null) {
      const dailyAt = firstLocalTimeAtOrAfter(program.timezone, now, options.atLocalHour);
      const sinceMs = now.getTime() - dailyAt.getTime();
      if (sinceMs < 0 || sinceMs >= expiryCronIntervalMs) continue;
    }
    if (program.points_expiry_days === null) continue;
    const expiry = { mode: program.points_expiry_mode, days: program.points_expiry_days };
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
      const last = page.at(-1);
      if (page.length < 500 || last === undefined) break;
      after = last.member_id;
    }
  }
  return changed;
};

/**
 * Closes every leaderboard period whose end has passed (by `periodCloseGraceMs`), and opens
 * the next; but only once the policy reactor has handled the log as it stood when the run
 * began, which holds every award made before those ends. Until then it closes nothing and
 * the next run (a minute later) tries again.
 */
const closeDuePeriods = async (s: Scheduled, options: { waitMs?: number }) => {
  const { incentives, queries, clock, reactor, context } = s;
  const due = await queries.dueLeaderboards(new Date(clock.now().getTime() - periodCloseGraceMs));
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
};

/**
 * Ends tier overrides' holds that have lapsed: each member goes to the tier the rules give
 * their points now (reason "Tier hold ended"). Then works through the rule-change jobs the
 * policy reactor recorded (`reevaluateTiers`). Runs every minute. `pageSize` and `maxPages`
 * bound the rule-change work of one run (tests stop a job after a page, as a crash would).
 */
const endLapsedHolds = async (s: Scheduled): Promise<number> => {
  const { incentives, queries, clock, context } = s;
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
};

/**
 * Re-evaluates every member of each program whose tier rules changed, a page at a time in
 * member id order, saving the cursor after each page: a run that stops (a crash, a restart,
 * `maxPages`) resumes after the last saved page, and a member evaluated twice is moved once
 * (the tier is computed from the member's streams, and an unchanged tier appends nothing).
 * The members are read from the read model once it has projected the change event, so every
 * member registered before it is listed; one registered later got the new rules already.
 * A page of a superseded change is not saved: the new change's pass starts from the first.
 */
async function reevaluateTiers(s: Scheduled, options: { pageSize?: number; maxPages?: number }) {
  const { db, incentives, queries, clock, context } = s;

  const pageSize = options.pageSize ?? tierReevaluationPageSize;
  let pagesLeft = options.maxPages ?? Infinity;
  let moved = 0;
  let deferred = false;
  const progress: TierReevaluationProgress[] = [];
  const running = await db
    .selectFrom('policy_tier_reevaluations')
    .selectAll()
    .where('finished_at', 'is', null)
    .orderBy('requested_at')
    .orderBy('program_id')
    .execute();
  const projected = await s.readModels.handled();
  for (const job of running) {
    if (pagesLeft <= 0) break;
    const programId = job.program_id;
    const changeAt = {
      commit: BigInt(job.commit_position),
      prepare: BigInt(job.prepare_position),
    };
    if (projected === null || comparePositions(projected, changeAt) < 0) {
      deferred = true;
      continue;
    }
    const ofThisChange = (eb: ExpressionBuilder<ApplicationTables, 'policy_tier_reevaluations'>) =>
      eb.and([eb('program_id', '=', programId), eb('event_id', '=', job.event_id)]);
    let total = job.total ?? (await queries.programMemberCount(programId));
    let { cursor, handled, moved: jobMoved } = job;
    let finished = false;
    while (pagesLeft > 0 && !finished) {
      const ids = await queries.programMemberIds(programId, cursor, pageSize);
      for (const memberId of ids) {
        const outcome = await incentives.applyTierRules(programId, memberId, {
          ...context(programId),
          causationId: job.event_id,
        });
        if (outcome.ok && outcome.value.events.length > 0) {
          moved++;
          jobMoved++;
        }
      }
      pagesLeft--;
      handled += ids.length;
      // Members registered during the pass are evaluated too: the total grows with them.
      total = Math.max(total, handled);
      cursor = ids.at(-1) ?? cursor;
      finished = ids.length < pageSize;
      const saved = await db
        .updateTable('policy_tier_reevaluations')
        .set({
          cursor,
          handled,
          moved: jobMoved,
          total,
          finished_at: finished ? clock.now() : null,
        })
        .where(ofThisChange)
        .executeTakeFirst();
      if (saved.numUpdatedRows === 0n) break;
    }
    progress.push({ programId, handled, total, moved: jobMoved, finished });
  }
  return { moved, deferred, progress };
}

/**
 * The scheduled jobs. Both are idempotent (the deciders refuse to expire twice or close a period
 * that is not over) and take a cluster-wide advisory lock, so when several processes run the
 * scheduler one does the work and the others skip.
 */
export const jobs = (deps: JobDeps) => {
  const s: Scheduled = {
    ...deps,
    context: (programId: string) => ({
      programId,
      actor: 'system:scheduler',
      correlationId: `job-${deps.clock.now().toISOString()}`,
      causationId: null,
    }),
  };
  const locked = async (
    job: JobName,
    work: () => Promise<number | Pick<JobReport, 'changed' | 'deferred' | 'reevaluations'>>,
  ): Promise<JobReport> => {
    const outcome = await deps.exclusive(`job:${job}`, work);
    if (!outcome.ran) return { job, ran: false, changed: 0 };
    const done = outcome.value;
    return typeof done === 'number'
      ? { job, ran: true, changed: done }
      : { job, ran: true, ...done };
  };

  return {
    /** Expires the points that are due (`sweepExpiry`). */
    expiry: (options: { atLocalHour: number | null } = { atLocalHour: null }) =>
      locked('expiry', () => sweepExpiry(s, options)),
    /** Closes the periods that have ended (`closeDuePeriods`). */
    leaderboards: (options: { waitMs?: number } = {}) =>
      locked('leaderboards', () => closeDuePeriods(s, options)),
    /** Ends lapsed holds (`endLapsedHolds`), then works through the rule-change jobs. */
    tiers: (options: { pageSize?: number; maxPages?: number } = {}) =>
      locked('tiers', async () => {
        const changed = await endLapsedHolds(s);
        const rules = await reevaluateTiers(s, options);
        return {
          changed: changed + rules.moved,
          reevaluations: rules.progress,
          ...(rules.deferred && { deferred: 'read_models_pending' as const }),
        };
      }),
  };
};

export type Jobs = ReturnType<typeof jobs>;

/**
 * Rule-change jobs (the tier re-evaluation after a change of tiers or tier basis), newest
 * first: every program's, or one program's. `running` limits them to unfinished ones.
 */
export const tierReevaluations = async (
  db: ApplicationDb,
  filter: { programId?: string; running?: boolean } = {},
) => {
  let query = db
    .selectFrom('policy_tier_reevaluations')
    .select(['program_id', 'event_id', 'requested_at', 'handled', 'moved', 'total', 'finished_at']);
  if (filter.programId !== undefined) query = query.where('program_id', '=', filter.programId);
  if (filter.running) query = query.where('finished_at', 'is', null);
  return query.orderBy('requested_at', 'desc').orderBy('program_id').execute();
};
