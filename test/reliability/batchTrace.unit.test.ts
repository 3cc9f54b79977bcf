import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { checkBatches, readTrace, type BatchTrace } from './support/batchTrace.ts';

const log = ['10.1', '10.2', '11.3', '12.4', '12.5', '13.6'];

const batch = (
  process: string,
  first: string,
  last: string,
  count: number,
  startedAt: number,
  endedAt: number,
  outcome: BatchTrace['outcome'] = 'committed',
): BatchTrace & { process: string } => ({
  process,
  pid: process === 'p1' ? 1 : 2,
  subscription: 'read-models',
  startedAt,
  endedAt,
  first,
  last,
  count,
  outcome,
});

describe('the batch trace check', () => {
  it('passes one consumer after another that together handle every event', () => {
    const result = checkBatches(
      'read-models',
      [batch('p1', '10.1', '11.3', 3, 0, 10), batch('p2', '12.4', '13.6', 3, 20, 30)],
      log,
    );
    assert.deepEqual(result.problems, []);
    assert.equal(result.committed, 2);
  });

  it('finds two processes handling batches at the same time', () => {
    const result = checkBatches(
      'read-models',
      [batch('p1', '10.1', '11.3', 3, 0, 10), batch('p2', '12.4', '13.6', 3, 2, 30)],
      log,
    );
    assert.equal(result.overlaps, 1);
    assert.match(result.problems[0]!, /committed batches ran at the same time/);
  });

  it('tolerates a hand-over inside the commit acknowledgement', () => {
    const result = checkBatches(
      'read-models',
      [batch('p1', '10.1', '11.3', 3, 0, 10), batch('p2', '12.4', '13.6', 3, 9, 30)],
      log,
    );
    assert.equal(result.overlaps, 0);
  });

  it('counts, and does not fail, a failed batch that the standby overlapped', () => {
    const result = checkBatches(
      'read-models',
      [batch('p1', '10.1', '11.3', 3, 0, 30, 'failed'), batch('p2', '10.1', '13.6', 6, 20, 40)],
      log,
    );
    assert.deepEqual(result.problems, []);
    assert.equal(result.failedOverlaps, 1);
    assert.equal(result.longestFailedOverlapMs, 10);
  });

  it('finds events that no committed batch handled', () => {
    const result = checkBatches(
      'read-models',
      [
        batch('p1', '10.1', '10.2', 2, 0, 10),
        batch('p1', '11.3', '11.3', 1, 10, 12, 'failed'),
        batch('p2', '12.4', '13.6', 3, 20, 30),
      ],
      log,
    );
    assert.deepEqual(result.problems, [
      'read-models: 1 events skipped by every consumer: 1 before 12.4 (p2)',
    ]);
  });

  it('finds a batch that handled fewer events than its range holds', () => {
    const result = checkBatches('read-models', [batch('p1', '10.1', '13.6', 5, 0, 10)], log);
    assert.match(result.problems[0]!, /handled 5 events, the log has 6/);
  });

  it('finds a log that the batches stop short of', () => {
    const result = checkBatches('read-models', [batch('p1', '10.1', '12.4', 4, 0, 10)], log);
    assert.match(result.problems[0]!, /end 2 events before the end of the log/);
  });

  it('counts a range handled again after a failure as a replay, not a problem', () => {
    const result = checkBatches(
      'read-models',
      [batch('p1', '10.1', '11.3', 3, 0, 10), batch('p2', '11.3', '13.6', 4, 20, 30)],
      log,
    );
    assert.deepEqual(result.problems, []);
    assert.equal(result.replays, 1);
  });
});

describe('reading a batch trace', () => {
  it("takes the contract, the first draft's shape, and skips a torn last line", () => {
    const dir = mkdtempSync(join(tmpdir(), 'trace-'));
    try {
      const path = join(dir, 'p1.jsonl');
      writeFileSync(
        path,
        [
          '{"pid":1,"subscription":"webhooks","startedAt":1,"endedAt":2,"first":"10.1","last":"10.2","count":2,"outcome":"failed"}',
          '{"pid":1,"owner":"x","subscription":"webhooks","startedAt":3,"endedAt":4,"first":"10/1","last":"11/3","events":3}',
          '{"pid":1,"subscr',
        ].join('\n'),
      );
      const { batches, malformed } = readTrace(path);
      assert.equal(malformed, 1);
      assert.deepEqual(
        batches.map((b) => [b.first, b.last, b.count, b.outcome]),
        [
          ['10.1', '10.2', 2, 'failed'],
          ['10.1', '11.3', 3, 'committed'],
        ],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
