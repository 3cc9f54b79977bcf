import assert from 'node:assert/strict';
import { setImmediate as nextTurn, setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { boundHeapGrowth, exposedGc } from '../../../adapters/cli/heapGrowth.ts';

const mb = 1024 * 1024;

/** Resolves once `done()` holds, checking every millisecond; fails after `ms`. */
const until = async (done: () => boolean, ms = 5_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await delay(1);
  }
};

describe('boundHeapGrowth', () => {
  it('collects when the heap reaches factor x what the last collection left, and no sooner', async () => {
    let used = 40 * mb;
    const collections: number[] = [];
    const gc = () => {
      collections.push(used);
      used = 50 * mb; // what survives
    };
    const stop = boundHeapGrowth(
      { factor: 2, floorBytes: 64 * mb, checkEveryMs: 1 },
      gc,
      () => used,
    );
    try {
      used = 79 * mb; // under max(64 MB floor, 2 x 40 MB)
      await delay(20);
      assert.deepEqual(collections, []);
      used = 80 * mb;
      await until(() => collections.length === 1);
      used = 99 * mb; // the limit is now 2 x 50 MB
      await delay(20);
      assert.equal(collections.length, 1);
      used = 100 * mb;
      await until(() => collections.length === 2);
      assert.deepEqual(collections, [80 * mb, 100 * mb]);
    } finally {
      stop();
    }
  });

  it('stops watching when stopped, and does nothing without a collector', async () => {
    let checks = 0;
    const stop = boundHeapGrowth(
      { factor: 2, floorBytes: 0, checkEveryMs: 1 },
      () => {},
      () => {
        checks++;
        return 0;
      },
    );
    await until(() => checks > 1);
    stop();
    const seen = checks;
    await delay(20);
    assert.equal(checks, seen);
    assert.doesNotThrow(() =>
      boundHeapGrowth({ factor: 2, floorBytes: 0, checkEveryMs: 1 }, null)(),
    );
  });

  it('the exposed gc frees an unreachable object at once', async () => {
    const gc = exposedGc();
    assert.equal(typeof gc, 'function', 'node 20-24 expose gc at run time');
    // In large-object space: only a full collection frees it.
    const ref = new WeakRef({ payload: new Array<number>(100_000).fill(1) });
    // A WeakRef's target is kept until the end of the turn that made or read it.
    await nextTurn();
    gc?.();
    await nextTurn();
    assert.equal(ref.deref(), undefined);
  });
});
