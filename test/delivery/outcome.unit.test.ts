import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  classifyAttempt,
  decideAfterAttempt,
  parseRetryAfter,
  type AttemptClassification,
  type AttemptResult,
  type TransportErrorKind,
} from '../../delivery/outcome.ts';
import { defaultRetrySchedule } from '../../delivery/retryPolicy.ts';

const response = (status: number): AttemptResult => ({
  kind: 'response',
  status,
  durationMs: 12,
  body: '',
});
const failure = (error: TransportErrorKind): AttemptResult => ({
  kind: 'error',
  error,
  message: error,
  durationMs: 12,
});

describe('classifying an attempt', () => {
  const table: readonly (readonly [string, AttemptResult, AttemptClassification])[] = [
    ['200', response(200), { outcome: 'delivered', errorKind: null }],
    ['201', response(201), { outcome: 'delivered', errorKind: null }],
    ['204', response(204), { outcome: 'delivered', errorKind: null }],
    ['299', response(299), { outcome: 'delivered', errorKind: null }],
    ['410', response(410), { outcome: 'gone', errorKind: 'non_2xx' }],
    ['301', response(301), { outcome: 'retry', errorKind: 'redirect' }],
    ['302', response(302), { outcome: 'retry', errorKind: 'redirect' }],
    ['307', response(307), { outcome: 'retry', errorKind: 'redirect' }],
    ['308', response(308), { outcome: 'retry', errorKind: 'redirect' }],
    ['400', response(400), { outcome: 'retry', errorKind: 'non_2xx' }],
    ['404', response(404), { outcome: 'retry', errorKind: 'non_2xx' }],
    ['429', response(429), { outcome: 'retry', errorKind: 'non_2xx' }],
    ['500', response(500), { outcome: 'retry', errorKind: 'non_2xx' }],
    ['503', response(503), { outcome: 'retry', errorKind: 'non_2xx' }],
    ['timeout', failure('timeout'), { outcome: 'retry', errorKind: 'timeout' }],
    [
      'refused',
      failure('connection_refused'),
      { outcome: 'retry', errorKind: 'connection_refused' },
    ],
    ['dns', failure('dns'), { outcome: 'retry', errorKind: 'dns' }],
    ['tls', failure('tls'), { outcome: 'retry', errorKind: 'tls' }],
    ['reset', failure('connection_reset'), { outcome: 'retry', errorKind: 'connection_reset' }],
    ['ssrf', failure('ssrf_blocked'), { outcome: 'retry', errorKind: 'ssrf_blocked' }],
    ['other', failure('other'), { outcome: 'retry', errorKind: 'other' }],
  ];
  for (const [name, result, expected] of table) {
    it(`treats ${name} as ${expected.outcome}${expected.errorKind ? ` (${expected.errorKind})` : ''}`, () => {
      assert.deepEqual(classifyAttempt(result), expected);
    });
  }
});

describe('deciding after an attempt', () => {
  const now = new Date('2024-06-15T14:30:00Z');
  const decide = (outcome: 'delivered' | 'gone' | 'retry', attemptsMade: number) =>
    decideAfterAttempt({ outcome, delaysS: defaultRetrySchedule, attemptsMade, now });

  it('marks a delivered attempt delivered', () => {
    assert.deepEqual(decide('delivered', 3), { status: 'delivered' });
  });

  it('marks a 410 gone without retrying', () => {
    assert.deepEqual(decide('gone', 1), { status: 'gone' });
  });

  it('schedules the second attempt five minutes after the first failure', () => {
    assert.deepEqual(decide('retry', 1), {
      status: 'pending',
      nextAttemptAt: new Date('2024-06-15T14:35:00Z'),
    });
  });

  it('schedules the fifth attempt a day after the fourth failure', () => {
    assert.deepEqual(decide('retry', 4), {
      status: 'pending',
      nextAttemptAt: new Date('2024-06-16T14:30:00Z'),
    });
  });

  it('fails the delivery after the fifth failure', () => {
    assert.deepEqual(decide('retry', 5), { status: 'failed' });
  });
});

describe('Retry-After from a 429 or 503', () => {
  const now = new Date('2024-06-15T14:30:00Z');

  it('reads delay-seconds and the HTTP-date forms, as seconds from now', () => {
    assert.equal(parseRetryAfter('120', now), 120);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
    assert.equal(parseRetryAfter('Sat, 15 Jun 2024 14:31:30 GMT', now), 90);
    assert.equal(parseRetryAfter('Saturday, 15-Jun-24 14:32:00 GMT', now), 120);
    assert.equal(parseRetryAfter('Sat Jun 15 14:30:10 2024', now), 10);
    // A date in the past asks for no wait at all.
    assert.equal(parseRetryAfter('Fri, 14 Jun 2024 14:30:00 GMT', now), 0);
  });

  it('ignores what is neither form', () => {
    for (const value of ['', '-5', '1.5', '+3', 'soon', '0x10', 'Sat, 99 Foo 2024', '5 s'])
      assert.equal(parseRetryAfter(value, now), null, JSON.stringify(value));
  });

  const decide = (attemptsMade: number, retryAfterS: number | null) =>
    decideAfterAttempt({
      outcome: 'retry',
      delaysS: defaultRetrySchedule,
      attemptsMade,
      now,
      retryAfterS,
    });

  it('waits at least as long as asked, when that is longer than the schedule', () => {
    // The schedule says 5 minutes; the receiver asks for an hour.
    assert.deepEqual(decide(1, 3600), {
      status: 'pending',
      nextAttemptAt: new Date('2024-06-15T15:30:00Z'),
    });
  });

  it('never sooner than the schedule, never later than 24 hours', () => {
    assert.deepEqual(decide(1, 10), {
      status: 'pending',
      nextAttemptAt: new Date('2024-06-15T14:35:00Z'),
    });
    assert.deepEqual(decide(1, 365 * 86_400), {
      status: 'pending',
      nextAttemptAt: new Date('2024-06-16T14:30:00Z'),
    });
  });

  it('adds no attempt: the last failure stays final', () => {
    assert.deepEqual(decide(5, 60), { status: 'failed' });
  });
});
