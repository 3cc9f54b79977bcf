import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { backoff } from '../../adapters/backoff.ts';

describe('backoff', () => {
  it('grows by the factor from the base and stops at the cap', () => {
    const delays = [0, 1, 2, 3, 4, 5, 6, 7].map((attempt) =>
      backoff({ attempt, baseMs: 50, maxMs: 2_000 }),
    );
    assert.deepEqual(delays, [50, 100, 200, 400, 800, 1_600, 2_000, 2_000]);
    assert.deepEqual(
      [0, 1, 2, 3].map((attempt) => backoff({ attempt, baseMs: 50, maxMs: 10_000, factor: 4 })),
      [50, 200, 800, 3_200],
    );
  });

  it('draws a jittered delay from [delay × (1 − jitter), delay]', () => {
    assert.equal(
      backoff({ attempt: 3, baseMs: 100, maxMs: 5_000, jitter: 0.5, random: () => 0 }),
      800,
    );
    assert.equal(
      backoff({ attempt: 3, baseMs: 100, maxMs: 5_000, jitter: 0.5, random: () => 0.999999 }),
      800 - 400 * 0.999999,
    );
  });

  it('stays in bounds for any attempt, however large', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 100_000 }),
        fc.integer({ min: 1, max: 1_000 }),
        fc.integer({ min: 1, max: 600_000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, baseMs, maxMs, jitter, r) => {
          const delay = backoff({ attempt, baseMs, maxMs, jitter, random: () => r });
          const full = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 64));
          assert.ok(Number.isFinite(delay));
          assert.ok(delay <= full && delay >= full * (1 - jitter) - 1e-9, `${delay} vs ${full}`);
        },
      ),
    );
  });

  it('refuses a negative attempt', () => {
    assert.throws(() => backoff({ attempt: -1, baseMs: 1, maxMs: 1 }), RangeError);
  });
});
