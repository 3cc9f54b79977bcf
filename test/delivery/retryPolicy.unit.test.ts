import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  defaultRetrySchedule,
  nextAttemptAt,
  parseRetrySchedule,
} from '../../delivery/retryPolicy.ts';

describe('retry schedule parsing', () => {
  const accepted: readonly (readonly [string, readonly number[]])[] = [
    ['0s,5m,30m,2h,24h', [0, 300, 1800, 7200, 86400]],
    ['0s', [0]],
    [' 0s , 100ms , 1d ', [0, 0.1, 86400]],
    ['250ms,1s', [0.25, 1]],
  ];
  for (const [text, delaysS] of accepted) {
    it(`reads "${text}" as ${JSON.stringify(delaysS)} seconds`, () => {
      assert.deepEqual(parseRetrySchedule(text), { ok: true, delaysS });
    });
  }

  it("gives the docs' table as the default", () => {
    assert.deepEqual(parseRetrySchedule('0s,5m,30m,2h,24h'), {
      ok: true,
      delaysS: defaultRetrySchedule,
    });
  });

  const refused: readonly (readonly [string, RegExp])[] = [
    ['', /empty/],
    ['0s,5x', /item 2 "5x"/],
    ['0s,,5m', /item 2 ""/],
    ['-5s', /item 1 "-5s"/],
    ['1.5m', /item 1 "1.5m"/],
    ['10', /item 1 "10"/],
    [Array.from({ length: 21 }, () => '1s').join(','), /21 delays, at most 20/],
  ];
  for (const [text, message] of refused) {
    it(`refuses "${text.slice(0, 20)}" and names the problem`, () => {
      const result = parseRetrySchedule(text);
      assert.equal(result.ok, false);
      assert.match(result.ok ? '' : result.message, message);
    });
  }

  it('accepts exactly 20 delays', () => {
    assert.equal(parseRetrySchedule(Array.from({ length: 20 }, () => '1s').join(',')).ok, true);
  });
});

describe('the next attempt', () => {
  const failedAt = new Date('2024-06-15T14:30:00Z');
  const at = (attemptsMade: number) =>
    nextAttemptAt({ delaysS: defaultRetrySchedule, attemptsMade, lastFailureAt: failedAt });

  it('is immediate for the first attempt', () => {
    assert.deepEqual(at(0), failedAt);
  });

  it('waits each delay from the previous failure', () => {
    assert.deepEqual(at(1), new Date('2024-06-15T14:35:00Z'));
    assert.deepEqual(at(2), new Date('2024-06-15T15:00:00Z'));
    assert.deepEqual(at(3), new Date('2024-06-15T16:30:00Z'));
    assert.deepEqual(at(4), new Date('2024-06-16T14:30:00Z'));
  });

  it('is null once every scheduled attempt was made', () => {
    assert.equal(at(5), null);
    assert.equal(at(6), null);
  });

  it('keeps sub-second delays of shortened test schedules', () => {
    const next = nextAttemptAt({ delaysS: [0, 0.1], attemptsMade: 1, lastFailureAt: failedAt });
    assert.deepEqual(next, new Date(failedAt.getTime() + 100));
  });
});
