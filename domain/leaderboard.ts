import { accept, reject, type Decider, type Decision } from './decider.ts';
import { periodContaining, periods, type Period } from './periods.ts';
import { isIntegerBetween, isName, isPoints, isTimezone, isoOf } from './validation.ts';

export * from './leaderboardEvents.ts';
import type {
  LeaderboardCommand,
  LeaderboardEvent,
  LeaderboardRejection,
  Standing,
} from './leaderboardEvents.ts';

/** `reachedSeq` orders equal scores: whoever reached the score first is listed first. */
type Entry = { memberId: string; score: number; reachedSeq: number };

/**
 * The awards a period counted, newest first, as an immutable list: recording one shares the
 * rest, where an array copied per score would cost the square of the period's length.
 */
export type Counted = {
  readonly transactionId: string;
  readonly memberId: string;
  readonly points: number;
  readonly rest: Counted;
} | null;

const findCounted = (counted: Counted, transactionId: string): Counted => {
  for (let node = counted; node !== null; node = node.rest)
    if (node.transactionId === transactionId) return node;
  return null;
};

/** An ended period as reversals need it: its start (its id) and the awards it counted. */
type EndedRecord = { readonly periodStart: string; readonly counted: Counted };

export type Leaderboard =
  | { exists: false }
  | {
      exists: true;
      leaderboardId: string;
      name: string;
      period: Period;
      timezone: string;
      topN: number;
      periodStart: string;
      periodEnd: string;
      entries: Entry[];
      /**
       * Awards counted in the current period, so a retried score counts once, and a reversal
       * finds its award's points.
       */
      counted: Counted;
      /**
       * Every ended period, oldest first: a score retried after its period closed (the reactor
       * handling a batch again) must not count again in the open one, and a reversal of an
       * award counted there corrects that period.
       */
      ended: readonly EndedRecord[];
      /** Awards reversed on this board (by any period), newest first: each is undone once. */
      reversed: Counted;
      /** Members deactivated during the open period, with the entries they left with. */
      withdrawn: readonly Entry[];
      nextSeq: number;
      /** The last period that ended, as its PeriodEnded said: what a repeated close answers. */
      lastEnded: EndedPeriod | null;
    };

export type EndedPeriod = Omit<
  Extract<LeaderboardEvent, { type: 'PeriodEnded' }>['data'],
  'leaderboardId'
>;

/** Entries in `PeriodEnded.standings` (the webhook's documented top ten). */
export const standingsSize = 10;

export const defaultTopN = 10;
export const maxTopN = 100;

/**
 * A forced close this soon after the last period ended, with no score since, repeats that close
 * (a client's retry) instead of ending an empty period of a few seconds.
 */
export const repeatedCloseWindowMs = 60_000;

export const initialState = (): Leaderboard => ({ exists: false });

/** Score descending, then arrival; equal scores share a position (1, 2, 2, 4). */
const rank = (entries: readonly Entry[]): Standing[] => {
  const sorted = [...entries].sort((a, b) => b.score - a.score || a.reachedSeq - b.reachedSeq);
  const standings: Standing[] = [];
  sorted.forEach((entry, index) => {
    const previous = standings[index - 1];
    const position =
      previous !== undefined && previous.points === entry.score ? previous.position : index + 1;
    standings.push({ position, memberId: entry.memberId, points: entry.score });
  });
  return standings;
};

/** The full ranked list of the current period. */
export const standingsOf = (state: Leaderboard): Standing[] =>
  state.exists ? rank(state.entries) : [];

type ExistingLeaderboard = Extract<Leaderboard, { exists: true }>;

/** PeriodEnded then PeriodOpened: the period ends at `endAt` and the next runs [openAt, its end). */
const rollover = (
  state: ExistingLeaderboard,
  endAt: string,
  next: { start: string; end: string },
  at: string,
): LeaderboardEvent[] => [
  {
    type: 'PeriodEnded',
    data: {
      leaderboardId: state.leaderboardId,
      periodStart: state.periodStart,
      periodEnd: endAt,
      standings: standingsOf(state).slice(0, standingsSize),
      at,
    },
  },
  {
    type: 'PeriodOpened',
    data: { leaderboardId: state.leaderboardId, periodStart: next.start, periodEnd: next.end, at },
  },
];

/**
 * The natural rollover once `reached` (now, or an award's time) is past the period's end: the next
 * period is the one containing `reached`, so skipped periods stay empty. Events are timed `now`.
 * After a change of zone the new zone's period containing `reached` may begin before the ended
 * one's end: it then begins at that end, so periods never overlap.
 */
const naturalRollover = (
  state: ExistingLeaderboard,
  reached: Date,
  now: Date,
): LeaderboardEvent[] => {
  const next = periodContaining(state.period, state.timezone, reached);
  const start = Date.parse(next.start) < Date.parse(state.periodEnd) ? state.periodEnd : next.start;
  return rollover(state, state.periodEnd, { start, end: next.end }, isoOf(now));
};

const applyAll = (state: Leaderboard, events: readonly LeaderboardEvent[]): Leaderboard =>
  events.reduce(evolve, state);

const repeatsLastClose = (state: ExistingLeaderboard, now: Date): boolean =>
  state.lastEnded !== null &&
  state.entries.length === 0 &&
  Math.abs(now.getTime() - Date.parse(state.lastEnded.at)) < repeatedCloseWindowMs;

/**
 * The PositionChanged events a change of standings from `state` to `next` calls for: the member
 * whose score changed (`subject`, when still on the board), and another member only when they
 * cross the top N's edge, or move up within it (someone above left or lost points). A member
 * pushed one place down below the top is implied by the standings: telling each of them (1,000
 * webhooks for an award that reaches #1 on a 1,000-member board) is what the standings are for.
 */
const positionChanges = (
  state: ExistingLeaderboard,
  next: Leaderboard,
  subject: string | null,
  at: string,
): LeaderboardEvent[] => {
  const before = new Map(standingsOf(state).map((s) => [s.memberId, s.position]));
  const after = standingsOf(next);
  const inTop = (position: number | null) => position !== null && position <= state.topN;
  const tells = (s: Standing) => {
    const previous = before.get(s.memberId) ?? null;
    if (previous === s.position) return false;
    return (
      inTop(previous) !== inTop(s.position) ||
      (inTop(s.position) && previous !== null && s.position < previous)
    );
  };
  const positionChanged = (s: Standing): LeaderboardEvent => ({
    type: 'PositionChanged',
    data: {
      leaderboardId: state.leaderboardId,
      memberId: s.memberId,
      previousPosition: before.get(s.memberId) ?? null,
      newPosition: s.position,
      points: s.points,
      at,
    },
  });
  const scorer = subject === null ? undefined : after.find((s) => s.memberId === subject);
  const others = after.filter((s) => s.memberId !== subject && tells(s));
  return [...(scorer ? [positionChanged(scorer)] : []), ...others.map(positionChanged)];
};

const recordScore = (
  state: ExistingLeaderboard,
  data: Extract<LeaderboardCommand, { type: 'RecordScore' }>['data'],
): LeaderboardEvent[] => {
  const at = isoOf(data.now);
  const score = (state.entries.find((e) => e.memberId === data.memberId)?.score ?? 0) + data.points;
  const recorded: LeaderboardEvent = {
    type: 'ScoreRecorded',
    data: {
      leaderboardId: state.leaderboardId,
      memberId: data.memberId,
      points: data.points,
      score,
      transactionId: data.transactionId,
      at,
    },
  };
  return [recorded, ...positionChanges(state, applyAll(state, [recorded]), data.memberId, at)];
};

/** The events of a reversal of `reversalOf` on this board, or none when it never counted. */
const reverseScore = (
  state: ExistingLeaderboard,
  data: Extract<LeaderboardCommand, { type: 'ReverseScore' }>['data'],
): LeaderboardEvent[] => {
  const { leaderboardId } = state;
  const { transactionId, reversalOf } = data;
  const at = isoOf(data.now);
  if (findCounted(state.reversed, reversalOf) !== null) return [];
  const open = findCounted(state.counted, reversalOf);
  if (open !== null) {
    const entry =
      state.entries.find((e) => e.memberId === open.memberId) ??
      state.withdrawn.find((e) => e.memberId === open.memberId);
    const reversed: LeaderboardEvent = {
      type: 'ScoreReversed',
      data: {
        leaderboardId,
        memberId: open.memberId,
        points: open.points,
        score: Math.max(0, (entry?.score ?? 0) - open.points),
        transactionId,
        reversalOf,
        at,
      },
    };
    return [reversed, ...positionChanges(state, applyAll(state, [reversed]), open.memberId, at)];
  }
  for (const period of state.ended) {
    const award = findCounted(period.counted, reversalOf);
    if (award === null) continue;
    return [
      {
        type: 'PeriodCorrected',
        data: {
          leaderboardId,
          periodStart: period.periodStart,
          memberId: award.memberId,
          points: award.points,
          transactionId,
          reversalOf,
          at,
        },
      },
    ];
  }
  return [];
};

export const decide = (
  command: LeaderboardCommand,
  state: Leaderboard,
): Decision<LeaderboardEvent, LeaderboardRejection> => {
  switch (command.type) {
    case 'CreateLeaderboard': {
      if (state.exists) {
        return reject('leaderboard_exists', 'the leaderboard already exists', 'leaderboard_id');
      }
      const { leaderboardId, name, period, timezone, topN, now } = command.data;
      if (!isName(name)) {
        return reject(
          'invalid_name',
          'name must be 1-200 characters without control characters',
          'name',
        );
      }
      if (!periods.includes(period)) {
        return reject('invalid_period', 'period is weekly, monthly or quarterly', 'period');
      }
      if (!isTimezone(timezone)) {
        return reject('invalid_timezone', 'timezone must be an IANA time zone', 'timezone');
      }
      if (!isIntegerBetween(topN, 1, maxTopN)) {
        return reject('invalid_top_n', `top_n must be an integer from 1 to ${maxTopN}`, 'top_n');
      }
      const bounds = periodContaining(period, timezone, now);
      return accept([
        {
          type: 'LeaderboardCreated',
          data: {
            leaderboardId,
            name,
            period,
            timezone,
            topN,
            periodStart: bounds.start,
            periodEnd: bounds.end,
            at: isoOf(now),
          },
        },
      ]);
    }
    case 'RecordScore': {
      if (!state.exists)
        return reject('leaderboard_not_found', 'no such leaderboard', 'leaderboard_id');
      const { points, transactionId, memberId, awardedAt, now } = command.data;
      if (!isPoints(points)) {
        return reject(
          'invalid_points',
          'points must be a positive integer no larger than 1000000000',
          'points',
        );
      }
      // Checked before any rollover: a retry that arrives after the period ended has been
      // counted in that period and must not count again in the next.
      if (
        findCounted(state.counted, transactionId) !== null ||
        findCounted(state.ended.at(-1)?.counted ?? null, transactionId) !== null
      )
        return accept([]);
      // The award's own time picks the period: one made before the end counts in it, however
      // late it is scored. One made before the open period began (its period was closed before
      // the reactor got to it: a forced close, or the scheduler's wait for the reactor running
      // out) counts in the open period: an ended period's standings were published and are
      // never reopened.
      const ended =
        awardedAt.getTime() >= Date.parse(state.periodEnd)
          ? naturalRollover(state, awardedAt, now)
          : [];
      const current = applyAll(state, ended) as ExistingLeaderboard;
      const previousScore = current.entries.find((e) => e.memberId === memberId)?.score ?? 0;
      if (!Number.isSafeInteger(previousScore + points)) {
        return reject(
          'balance_overflow',
          'the score would exceed the largest safe integer',
          'points',
        );
      }
      return accept([...ended, ...recordScore(current, command.data)]);
    }
    case 'ClosePeriod': {
      if (!state.exists)
        return reject('leaderboard_not_found', 'no such leaderboard', 'leaderboard_id');
      const { now, force } = command.data;
      // Checked first: a retry that arrives after the period's natural end must not end it either
      // (the scheduler does, when it is due).
      if (force && repeatsLastClose(state, now)) return accept([]);
      if (now.getTime() >= Date.parse(state.periodEnd))
        return accept(naturalRollover(state, now, now));
      if (!force) return accept([]);
      // A period is never closed before it began: so a board's periods start at strictly later
      // instants, and a start names one period (periodIdOf).
      if (now.getTime() <= Date.parse(state.periodStart)) return accept([]);
      const natural = periodContaining(state.period, state.timezone, now);
      return accept(
        rollover(state, isoOf(now), { start: isoOf(now), end: natural.end }, isoOf(now)),
      );
    }
    case 'ReverseScore': {
      if (!state.exists)
        return reject('leaderboard_not_found', 'no such leaderboard', 'leaderboard_id');
      return accept(reverseScore(state, command.data));
    }
    case 'WithdrawMember': {
      if (!state.exists)
        return reject('leaderboard_not_found', 'no such leaderboard', 'leaderboard_id');
      const { memberId, now } = command.data;
      const entry = state.entries.find((e) => e.memberId === memberId);
      if (entry === undefined) return accept([]);
      const at = isoOf(now);
      const withdrawn: LeaderboardEvent = {
        type: 'MemberWithdrawn',
        data: { leaderboardId: state.leaderboardId, memberId, score: entry.score, at },
      };
      return accept([withdrawn, ...positionChanges(state, applyAll(state, [withdrawn]), null, at)]);
    }
    case 'ReinstateMember': {
      if (!state.exists)
        return reject('leaderboard_not_found', 'no such leaderboard', 'leaderboard_id');
      const { memberId, now } = command.data;
      const entry = state.withdrawn.find((e) => e.memberId === memberId);
      if (entry === undefined) return accept([]);
      const at = isoOf(now);
      const reinstated: LeaderboardEvent = {
        type: 'MemberReinstated',
        data: { leaderboardId: state.leaderboardId, memberId, score: entry.score, at },
      };
      return accept([
        reinstated,
        ...positionChanges(state, applyAll(state, [reinstated]), memberId, at),
      ]);
    }
    case 'ChangeTimezone': {
      if (!state.exists)
        return reject('leaderboard_not_found', 'no such leaderboard', 'leaderboard_id');
      const { timezone, now } = command.data;
      if (!isTimezone(timezone))
        return reject('invalid_timezone', 'timezone must be an IANA time zone', 'timezone');
      if (timezone === state.timezone) return accept([]);
      return accept([
        {
          type: 'LeaderboardTimezoneChanged',
          data: { leaderboardId: state.leaderboardId, timezone, at: isoOf(now) },
        },
      ]);
    }
  }
};

export const evolve = (state: Leaderboard, event: LeaderboardEvent): Leaderboard => {
  switch (event.type) {
    case 'LeaderboardCreated': {
      const { at: _at, topN, ...created } = event.data;
      return {
        exists: true,
        ...created,
        topN: topN ?? defaultTopN,
        entries: [],
        counted: null,
        ended: [],
        reversed: null,
        withdrawn: [],
        nextSeq: 0,
        lastEnded: null,
      };
    }
    case 'ScoreRecorded': {
      if (!state.exists) return state;
      const { memberId, score, points, transactionId } = event.data;
      const entry: Entry = { memberId, score, reachedSeq: state.nextSeq };
      return {
        ...state,
        entries: [...state.entries.filter((e) => e.memberId !== memberId), entry],
        counted: { transactionId, memberId, points, rest: state.counted },
        nextSeq: state.nextSeq + 1,
      };
    }
    case 'ScoreReversed': {
      if (!state.exists) return state;
      const { memberId, score, points, reversalOf } = event.data;
      // The member keeps their place among equal scores: a lower score is not a new arrival.
      const lower = (e: Entry) => (e.memberId === memberId ? { ...e, score } : e);
      return {
        ...state,
        entries: state.entries.map(lower),
        withdrawn: state.withdrawn.map(lower),
        reversed: { transactionId: reversalOf, memberId, points, rest: state.reversed },
      };
    }
    case 'PeriodCorrected': {
      if (!state.exists) return state;
      const { memberId, points, reversalOf } = event.data;
      return {
        ...state,
        reversed: { transactionId: reversalOf, memberId, points, rest: state.reversed },
      };
    }
    case 'MemberWithdrawn': {
      if (!state.exists) return state;
      const entry = state.entries.find((e) => e.memberId === event.data.memberId);
      if (entry === undefined) return state;
      return {
        ...state,
        entries: state.entries.filter((e) => e !== entry),
        withdrawn: [...state.withdrawn.filter((e) => e.memberId !== entry.memberId), entry],
      };
    }
    case 'MemberReinstated': {
      if (!state.exists) return state;
      const entry = state.withdrawn.find((e) => e.memberId === event.data.memberId);
      if (entry === undefined) return state;
      return {
        ...state,
        entries: [...state.entries, entry],
        withdrawn: state.withdrawn.filter((e) => e !== entry),
      };
    }
    case 'PositionChanged':
      return state;
    case 'PeriodEnded': {
      if (!state.exists) return state;
      const { leaderboardId: _id, ...ended } = event.data;
      return {
        ...state,
        entries: [],
        counted: null,
        ended: [...state.ended, { periodStart: state.periodStart, counted: state.counted }],
        withdrawn: [],
        lastEnded: ended,
      };
    }
    case 'PeriodOpened':
      return state.exists
        ? { ...state, periodStart: event.data.periodStart, periodEnd: event.data.periodEnd }
        : state;
    case 'LeaderboardTimezoneChanged':
      return state.exists ? { ...state, timezone: event.data.timezone } : state;
  }
};

export const leaderboard: Decider<
  LeaderboardCommand,
  LeaderboardEvent,
  Leaderboard,
  LeaderboardRejection
> = { initialState, decide, evolve };
