import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  firstLocalTimeAtOrAfter,
  periodContaining,
  periodIdOf,
  periodStartOf,
  type Period,
} from '../../domain/periods.ts';

const period = (p: Period, timezone: string, iso: string) =>
  periodContaining(p, timezone, new Date(iso));

describe('periods', () => {
  describe('in Europe/Berlin across the March 2024 change to summer time', () => {
    it('starts the week on Monday 00:00 CET and ends it on Monday 00:00 CEST', () => {
      assert.deepEqual(period('weekly', 'Europe/Berlin', '2024-03-31T12:00:00Z'), {
        start: '2024-03-24T23:00:00.000Z',
        end: '2024-03-31T22:00:00.000Z',
      });
    });

    it('cuts March at local midnight on both ends', () => {
      assert.deepEqual(period('monthly', 'Europe/Berlin', '2024-03-15T00:00:00Z'), {
        start: '2024-02-29T23:00:00.000Z',
        end: '2024-03-31T22:00:00.000Z',
      });
    });

    it('puts the first instant of April in the second quarter', () => {
      assert.deepEqual(period('quarterly', 'Europe/Berlin', '2024-03-31T22:00:00Z'), {
        start: '2024-03-31T22:00:00.000Z',
        end: '2024-06-30T22:00:00.000Z',
      });
      assert.deepEqual(period('quarterly', 'Europe/Berlin', '2024-03-31T21:59:59.999Z'), {
        start: '2023-12-31T23:00:00.000Z',
        end: '2024-03-31T22:00:00.000Z',
      });
    });

    it('cuts the week containing the October change back to winter time', () => {
      assert.deepEqual(period('weekly', 'Europe/Berlin', '2024-10-27T01:30:00Z'), {
        start: '2024-10-20T22:00:00.000Z',
        end: '2024-10-27T23:00:00.000Z',
      });
    });
  });

  describe('in America/New_York', () => {
    it('cuts November across the change to standard time', () => {
      assert.deepEqual(period('monthly', 'America/New_York', '2024-11-15T00:00:00Z'), {
        start: '2024-11-01T04:00:00.000Z',
        end: '2024-12-01T05:00:00.000Z',
      });
    });

    it('places a UTC instant on the local calendar (still the previous month locally)', () => {
      assert.deepEqual(period('monthly', 'America/New_York', '2024-07-01T03:59:59Z'), {
        start: '2024-06-01T04:00:00.000Z',
        end: '2024-07-01T04:00:00.000Z',
      });
    });

    it('cuts the fourth quarter', () => {
      assert.deepEqual(period('quarterly', 'America/New_York', '2024-12-31T12:00:00Z'), {
        start: '2024-10-01T04:00:00.000Z',
        end: '2025-01-01T05:00:00.000Z',
      });
    });
  });

  describe('in Asia/Kolkata (UTC+05:30)', () => {
    it('starts a week on local Monday even while it is still Sunday in UTC', () => {
      assert.deepEqual(period('weekly', 'Asia/Kolkata', '2024-06-15T20:00:00Z'), {
        start: '2024-06-09T18:30:00.000Z',
        end: '2024-06-16T18:30:00.000Z',
      });
      assert.deepEqual(period('weekly', 'Asia/Kolkata', '2024-06-16T18:30:00Z'), {
        start: '2024-06-16T18:30:00.000Z',
        end: '2024-06-23T18:30:00.000Z',
      });
    });
  });

  describe('in UTC', () => {
    it('cuts weeks, months and quarters at UTC midnight', () => {
      assert.deepEqual(period('weekly', 'UTC', '2024-06-16T23:59:59Z'), {
        start: '2024-06-10T00:00:00.000Z',
        end: '2024-06-17T00:00:00.000Z',
      });
      assert.deepEqual(period('weekly', 'UTC', '2024-06-17T00:00:00Z'), {
        start: '2024-06-17T00:00:00.000Z',
        end: '2024-06-24T00:00:00.000Z',
      });
      assert.deepEqual(period('monthly', 'UTC', '2024-02-29T12:00:00Z'), {
        start: '2024-02-01T00:00:00.000Z',
        end: '2024-03-01T00:00:00.000Z',
      });
      assert.deepEqual(period('quarterly', 'UTC', '2024-08-01T00:00:00Z'), {
        start: '2024-07-01T00:00:00.000Z',
        end: '2024-10-01T00:00:00.000Z',
      });
    });

    it('crosses the year in a week', () => {
      assert.deepEqual(period('weekly', 'UTC', '2025-01-01T00:00:00Z'), {
        start: '2024-12-30T00:00:00.000Z',
        end: '2025-01-06T00:00:00.000Z',
      });
    });
  });

  describe('in America/Santiago, where clocks jump at midnight', () => {
    it('starts the next week at the first instant of Monday', () => {
      // 2024-09-08 00:00 does not exist locally (clocks go to 01:00), but the week is Monday-based.
      assert.deepEqual(period('weekly', 'America/Santiago', '2024-09-08T12:00:00Z'), {
        start: '2024-09-02T04:00:00.000Z',
        end: '2024-09-09T03:00:00.000Z',
      });
    });
  });

  it('always contains the instant, and the next period starts where this one ends', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Period>('weekly', 'monthly', 'quarterly'),
        fc.constantFrom(
          'Europe/Berlin',
          'America/New_York',
          'Asia/Kolkata',
          'UTC',
          'Australia/Lord_Howe',
        ),
        fc.integer({
          min: Date.parse('2000-01-01T00:00:00Z'),
          max: Date.parse('2040-01-01T00:00:00Z'),
        }),
        (p, timezone, ms) => {
          const { start, end } = periodContaining(p, timezone, new Date(ms));
          assert.ok(
            Date.parse(start) <= ms && ms < Date.parse(end),
            `${start} <= ${new Date(ms).toISOString()} < ${end}`,
          );
          assert.equal(periodContaining(p, timezone, new Date(end)).start, end);
          assert.equal(periodContaining(p, timezone, new Date(Date.parse(start) - 1)).end, start);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('period ids', () => {
  it('spell the start instant in the basic ISO-8601 format, to the millisecond', () => {
    assert.equal(periodIdOf('2025-03-03T00:00:00.000Z'), '20250303T000000.000Z');
    assert.equal(periodIdOf('2025-03-05T12:34:56.789Z'), '20250305T123456.789Z');
  });

  it('name back the start they were made from', () => {
    for (const start of ['2025-03-03T00:00:00.000Z', '2024-02-29T23:59:59.999Z']) {
      assert.equal(periodStartOf(periodIdOf(start)), start);
    }
  });

  it('are nothing else', () => {
    for (const id of [
      '2025-03-03T00:00:00.000Z',
      '20250303T000000Z',
      '20250230T000000.000Z',
      '20251303T000000.000Z',
      '20250303T240000.000Z',
      '20250303t000000.000z',
      ' 20250303T000000.000Z',
      '',
    ]) {
      assert.equal(periodStartOf(id), null, id);
    }
  });

  describe('the first existing local time at or after an hour', () => {
    const at = (timezone: string, iso: string, hour = 2) =>
      firstLocalTimeAtOrAfter(timezone, new Date(iso), hour).toISOString();

    it('is the hour itself on an ordinary day, for any instant of that local day', () => {
      assert.equal(at('America/New_York', '2025-03-08T05:00:00Z'), '2025-03-08T07:00:00.000Z');
      assert.equal(at('America/New_York', '2025-03-09T04:59:59Z'), '2025-03-08T07:00:00.000Z');
      assert.equal(at('Asia/Kathmandu', '2025-06-01T12:00:00Z'), '2025-05-31T20:15:00.000Z');
    });

    it('is the moment the clocks jump when a spring-forward skips the hour', () => {
      // America/New_York, 9 March 2025: 02:00 EST becomes 03:00 EDT at 07:00Z.
      assert.equal(at('America/New_York', '2025-03-09T12:00:00Z'), '2025-03-09T07:00:00.000Z');
      // Europe/Berlin, 30 March 2025: 02:00 CET becomes 03:00 CEST at 01:00Z.
      assert.equal(at('Europe/Berlin', '2025-03-30T12:00:00Z'), '2025-03-30T01:00:00.000Z');
      // Australia/Lord_Howe, 5 October 2025: 02:00 jumps half an hour, to 02:30.
      assert.equal(at('Australia/Lord_Howe', '2025-10-05T06:00:00Z'), '2025-10-04T15:30:00.000Z');
    });

    it('is the first of the two when a fall-back repeats the hour', () => {
      // Europe/Berlin, 26 October 2025: 03:00 CEST falls back to 02:00 CET at 01:00Z.
      assert.equal(at('Europe/Berlin', '2025-10-26T12:00:00Z'), '2025-10-26T00:00:00.000Z');
    });

    it('is one instant per local day, on that day, in zones with DST', () => {
      fc.assert(
        fc.property(
          fc.constantFrom(
            'America/New_York',
            'Europe/Berlin',
            'America/Havana',
            'Australia/Lord_Howe',
          ),
          fc.integer({
            min: Date.parse('2024-01-01T00:00:00Z'),
            max: Date.parse('2027-01-01T00:00:00Z'),
          }),
          (timezone, instantMs) => {
            const first = firstLocalTimeAtOrAfter(timezone, new Date(instantMs), 2);
            const again = firstLocalTimeAtOrAfter(timezone, first, 2);
            assert.equal(again.getTime(), first.getTime());
            const day = (d: Date) => d.toLocaleDateString('en-CA', { timeZone: timezone });
            assert.equal(day(first), day(new Date(instantMs)));
            const hour = Number(
              first.toLocaleTimeString('en-GB', {
                timeZone: timezone,
                hour: '2-digit',
                hourCycle: 'h23',
              }),
            );
            assert.ok(hour === 2 || hour === 3, `${timezone} ${first.toISOString()} at ${hour}`);
          },
        ),
        { numRuns: 500 },
      );
    });
  });
});
