/**
 * Leaderboard periods are cut on the program's local calendar, not UTC: a Berlin week starts at
 * Monday 00:00 in Berlin, whatever the offset is that day. Intl (the runtime's ICU tz data) gives
 * the wall time of an instant; we invert it ourselves, with no date library.
 */

export type Period = 'weekly' | 'monthly' | 'quarterly';

export const periods: readonly Period[] = ['weekly', 'monthly', 'quarterly'];

/** A half-open interval [start, end) of ISO-8601 UTC instants. */
export type PeriodBounds = { start: string; end: string };

const dayMs = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

const formatterFor = (timezone: string): Intl.DateTimeFormat => {
  let formatter = formatters.get(timezone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timezone, formatter);
  }
  return formatter;
};

/** The local wall time of an instant, expressed as if that wall time were UTC (ms). */
const wallClockMs = (timezone: string, instantMs: number): number => {
  const parts: Record<string, number> = {};
  for (const part of formatterFor(timezone).formatToParts(instantMs)) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  const field = (name: string) => parts[name] ?? 0;
  const wholeSecondMs = Math.floor(instantMs / 1000) * 1000;
  return (
    Date.UTC(
      field('year'),
      field('month') - 1,
      field('day'),
      field('hour') % 24,
      field('minute'),
      field('second'),
    ) +
    (instantMs - wholeSecondMs)
  );
};

const offsetMs = (timezone: string, instantMs: number): number =>
  wallClockMs(timezone, instantMs) - instantMs;

/**
 * The first instant whose local wall time is `wallMs` (or, inside a DST gap where that wall time
 * does not exist, the instant the clocks jump forward). Offsets change at most once within the
 * two days around the wall time in every real zone, so the offsets a day either side cover it.
 */
const instantOfWallClock = (timezone: string, wallMs: number): number => {
  const before = offsetMs(timezone, wallMs - dayMs);
  const after = offsetMs(timezone, wallMs + dayMs);
  const candidates = [wallMs - before, wallMs - after]
    .filter((instant) => wallClockMs(timezone, instant) === wallMs)
    .sort((a, b) => a - b);
  return candidates[0] ?? wallMs - before;
};

/**
 * The instant of the first existing local time at or after `localHour`:00 on the local date of
 * `at`: that hour itself on most days; the moment the clocks jump forward when a DST gap swallows
 * it (America/New_York on 9 March 2025: 03:00 EDT); the first of the two when a fall-back repeats
 * it (Europe/Berlin on 26 October 2025: 02:00 CEST). One instant per local day, whatever the zone.
 */
export const firstLocalTimeAtOrAfter = (timezone: string, at: Date, localHour: number): Date =>
  new Date(
    instantOfWallClock(timezone, localDateMs(timezone, at.getTime()) + localHour * 3_600_000),
  );

/** The local calendar date of an instant as a UTC-midnight timestamp (for date arithmetic). */
const localDateMs = (timezone: string, instantMs: number): number =>
  Math.floor(wallClockMs(timezone, instantMs) / dayMs) * dayMs;

const addMonths = (dateMs: number, months: number): number => {
  const date = new Date(dateMs);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + months, 1);
};

/** The local-calendar week (from Monday), month or quarter (Jan/Apr/Jul/Oct) containing `at`. */
export const periodContaining = (period: Period, timezone: string, at: Date): PeriodBounds => {
  const today = localDateMs(timezone, at.getTime());
  const date = new Date(today);
  let startDate: number;
  let endDate: number;
  switch (period) {
    case 'weekly': {
      const daysSinceMonday = (date.getUTCDay() + 6) % 7;
      startDate = today - daysSinceMonday * dayMs;
      endDate = startDate + 7 * dayMs;
      break;
    }
    case 'monthly':
      startDate = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
      endDate = addMonths(startDate, 1);
      break;
    case 'quarterly':
      startDate = Date.UTC(date.getUTCFullYear(), date.getUTCMonth() - (date.getUTCMonth() % 3), 1);
      endDate = addMonths(startDate, 3);
      break;
  }
  return {
    start: new Date(instantOfWallClock(timezone, startDate)).toISOString(),
    end: new Date(instantOfWallClock(timezone, endDate)).toISOString(),
  };
};

/**
 * A period's id: its start instant in ISO-8601's basic format, to the millisecond
 * (`2025-03-03T00:00:00.000Z` is `20250303T000000.000Z`). Derived, so anyone holding a period's
 * `period_start` can name it; unique per board, whose periods start at strictly later instants.
 */
export const periodIdOf = (periodStart: string): string => periodStart.replace(/[-:]/g, '');

const periodIdShape = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z$/;

/** The start instant (ISO-8601 UTC, as events spell it) a period id names, or null. */
export const periodStartOf = (periodId: string): string | null => {
  const match = periodIdShape.exec(periodId);
  if (!match) return null;
  const [, year, month, day, hour, minute, second, ms] = match;
  const iso = `${year}-${month}-${day}T${hour}:${minute}:${second}.${ms}Z`;
  const instant = Date.parse(iso);
  // Date.parse takes 2025-02-30 as 2 March: only an instant that spells itself back is one.
  return Number.isNaN(instant) || isoOfMs(instant) !== iso ? null : iso;
};

const isoOfMs = (instantMs: number): string => new Date(instantMs).toISOString();
