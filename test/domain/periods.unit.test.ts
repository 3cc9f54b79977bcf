import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { periodContaining, periodIdOf, periodStartOf, type Period } from '../../domain/periods.ts';

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
});
