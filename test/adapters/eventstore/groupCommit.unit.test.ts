import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommit } from '../../../adapters/eventstore/groupCommit.ts';

/** A write that the test completes by hand: it records each batch and waits to be released. */
const manualWrites = () => {
  const batches: { requests: readonly number[]; finish: (error?: Error) => void }[] = [];
  const write = (requests: readonly number[]) =>
    new Promise<(number | Error)[]>((resolve, reject) => {
      batches.push({
        requests,
        finish: (error) =>
          error
            ? reject(error)
            : resolve(requests.map((r) => (r < 0 ? new Error(`refused ${r}`) : r * 10))),
      });
    });
  return { batches, write };
};

/** Batches of up to 10, one written at a time, over manual writes. */
const oneInFlight = () => {
  const { batches, write } = manualWrites();
  const group = new GroupCommit({
    write,
    maxBatch: 10,
    maxBytes: 1e9,
    sizeOf: () => 1,
    maxInFlight: 1,
  });
  return { batches, group };
};

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('GroupCommit', () => {
  it('sends the first request at once and batches what arrives meanwhile, in order', async () => {
    const { batches, group } = oneInFlight();
    const results = [1, 2, 3, 4].map((n) => group.submit(n));
    assert.deepEqual(
      batches.map((b) => b.requests),
      [[1]],
    );
    batches[0]!.finish();
    await settle();
    assert.deepEqual(
      batches.map((b) => b.requests),
      [[1], [2, 3, 4]],
    );
    batches[1]!.finish();
    assert.deepEqual(await Promise.all(results), [10, 20, 30, 40]);
    assert.deepEqual(
      { batches: group.batches, requests: group.requests },
      { batches: 2, requests: 4 },
    );
  });

  it('keeps maxInFlight batches out and cuts batches at maxBatch and maxBytes', async () => {
    const { batches, write } = manualWrites();
    const group = new GroupCommit({
      write,
      maxBatch: 3,
      maxBytes: 25,
      sizeOf: (n) => n,
      maxInFlight: 2,
    });
    const results = [1, 2, 3, 4, 5, 6, 20, 30].map((n) => group.submit(n));
    assert.deepEqual(
      batches.map((b) => b.requests),
      [[1], [2]],
    );
    batches[0]!.finish();
    await settle();
    // Three at most; then 20 would pass 25 bytes after 6; 30 alone exceeds it but still goes.
    assert.deepEqual(batches.at(-1)!.requests, [3, 4, 5]);
    batches[1]!.finish();
    await settle();
    assert.deepEqual(batches.at(-1)!.requests, [6]);
    batches[2]!.finish();
    await settle();
    assert.deepEqual(batches.at(-1)!.requests, [20]);
    batches[3]!.finish();
    await settle();
    assert.deepEqual(batches.at(-1)!.requests, [30]);
    batches[4]!.finish();
    batches[5]!.finish();
    assert.deepEqual(await Promise.all(results), [10, 20, 30, 40, 50, 60, 200, 300]);
  });

  it('fails a request alone when its answer is an error, and a whole batch when the write fails', async () => {
    const { batches, group } = oneInFlight();
    const first = group.submit(1);
    const batched = [2, -3, 4].map((n) => group.submit(n));
    batches[0]!.finish();
    assert.equal(await first, 10);
    await settle();
    batches[1]!.finish();
    const settled = await Promise.allSettled(batched);
    assert.deepEqual(
      settled.map((s) => s.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    const lost = Promise.allSettled([5, 6].map((n) => group.submit(n)));
    await settle();
    batches[2]!.finish(new Error('connection lost'));
    await settle();
    batches[3]?.finish(new Error('connection lost'));
    for (const result of await lost) {
      assert.equal(result.status, 'rejected');
      assert.match(String(result.reason), /connection lost/);
    }
    // The queue moves on after a failed batch.
    const next = group.submit(7);
    await settle();
    batches.at(-1)!.finish();
    assert.equal(await next, 70);
  });
});
