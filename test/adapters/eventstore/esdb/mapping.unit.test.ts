import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ANY,
  NO_STREAM,
  STREAM_EXISTS,
  WrongExpectedVersionError,
  type PersistentSubscriptionToAllResolvedEvent,
} from '@eventstore/db-client';
import { canonicalEvent, chainHash } from '../../../../adapters/eventstore/canonical.ts';
import {
  decideNack,
  describeConnectionString,
  fromEsdbCurrent,
  fromEsdbExpected,
  fromPosition,
  fromResolved,
  retryDelayMs,
  toConcurrencyError,
  toEsdbExpected,
  toEventData,
  toPosition,
} from '../../../../adapters/eventstore/esdb/mapping.ts';
import { ConcurrencyError, type ExpectedRevision } from '../../../../application/ports.ts';

const metadata = {
  programId: 'prg_1',
  correlationId: '6c1a4a52-32d4-4a57-8a1f-0e7c7c5c0c01',
  causationId: null,
  actor: 'key_1',
  recordedAt: '2026-01-01T00:00:00.000Z',
};
const newEvent = {
  id: 'a1b2c3d4-0000-4000-8000-000000000001',
  type: 'PointsAwarded',
  data: { points: 5 },
  metadata,
};
const hash = chainHash(null, canonicalEvent({ ...newEvent, streamName: 'points-prg_1-m1' }));

/** What the client hands back for an event we wrote, built from what we handed it. */
const readBack = (
  overrides: Partial<NonNullable<PersistentSubscriptionToAllResolvedEvent['event']>> = {},
): PersistentSubscriptionToAllResolvedEvent => {
  const written = toEventData(newEvent, hash);
  return {
    retryCount: 0,
    event: {
      streamId: 'points-prg_1-m1',
      id: written.id,
      revision: 3n,
      type: written.type,
      created: new Date(0),
      isJson: true,
      data: JSON.parse(JSON.stringify(written.data)) as Record<string, unknown>,
      metadata: JSON.parse(JSON.stringify(written.metadata)) as Record<string, unknown>,
      position: { commit: 2n ** 63n + 5n, prepare: 2n ** 63n + 4n },
      ...overrides,
    } as NonNullable<PersistentSubscriptionToAllResolvedEvent['event']>,
  };
};

describe('EventStoreDB mapping', () => {
  describe('expected revision', () => {
    const pairs: [ExpectedRevision, unknown][] = [
      ['no_stream', NO_STREAM],
      ['any', ANY],
      ['exists', STREAM_EXISTS],
      [0n, 0n],
      [2n ** 64n - 1n, 2n ** 64n - 1n],
    ];
    for (const [ours, theirs] of pairs)
      it(`maps ${String(ours)} to the client's ${String(theirs)} and back`, () => {
        assert.equal(toEsdbExpected(ours), theirs);
        assert.equal(fromEsdbExpected(toEsdbExpected(ours)), ours);
      });
    it('refuses a negative revision', () => {
      assert.throws(() => toEsdbExpected(-1n), RangeError);
    });
  });

  describe('errors', () => {
    it('turns WrongExpectedVersionError into ConcurrencyError with the actual revision', () => {
      const vendor = new WrongExpectedVersionError(undefined, {
        streamName: 's',
        expected: 4n,
        current: 7n,
      });
      const error = toConcurrencyError(vendor, 's', 4n);
      assert.ok(error instanceof ConcurrencyError);
      assert.equal(error.actual, 7n);
      assert.equal(error.expected, 4n);
      assert.equal(error.cause, vendor);
    });
    it('reports a missing stream as actual -1', () => {
      const vendor = new WrongExpectedVersionError(undefined, {
        streamName: 's',
        expected: STREAM_EXISTS,
        current: NO_STREAM,
      });
      assert.equal(toConcurrencyError(vendor, 's', 'exists').actual, -1n);
      assert.equal(fromEsdbCurrent(NO_STREAM), -1n);
    });
  });

  describe('metadata', () => {
    it('round-trips our metadata and hash through the event metadata', () => {
      const decoded = fromResolved(readBack());
      assert.ok(decoded.ok);
      assert.deepEqual(decoded.event.metadata, metadata);
      assert.equal(decoded.event.hash, hash);
      assert.deepEqual(decoded.event.data, { points: 5 });
      assert.equal(decoded.event.revision, 3n);
    });
    it("carries EventStoreDB's $correlationId and $causationId", () => {
      const written = toEventData(
        { ...newEvent, metadata: { ...metadata, causationId: 'c-1' } },
        hash,
      );
      assert.deepEqual(
        {
          correlation: (written.metadata as Record<string, unknown>).$correlationId,
          causation: (written.metadata as Record<string, unknown>).$causationId,
        },
        { correlation: metadata.correlationId, causation: 'c-1' },
      );
    });
    it('refuses data that is not JSON (the client hands malformed JSON back as a string)', () => {
      const decoded = fromResolved(readBack({ data: '{"points": 5' as never }));
      assert.equal(decoded.ok, false);
      assert.match(!decoded.ok ? decoded.reason : '', /data is not a JSON object/);
    });
    it('refuses metadata without a hash, naming the field', () => {
      const { hash: _hash, ...rest } = readBack().event!.metadata as Record<string, unknown>;
      const decoded = fromResolved(readBack({ metadata: rest as never }));
      assert.match(!decoded.ok ? decoded.reason : '', /hash/);
    });
    it('refuses binary content', () => {
      const decoded = fromResolved(
        readBack({ isJson: false as never, data: new Uint8Array([1]) as never }),
      );
      assert.match(!decoded.ok ? decoded.reason : '', /application\/json/);
    });
  });

  describe('positions', () => {
    it('keeps commit and prepare apart, beyond 2^53, both ways', () => {
      const theirs = { commit: 2n ** 63n + 5n, prepare: 2n ** 63n + 4n };
      assert.deepEqual(toPosition(theirs), theirs);
      assert.deepEqual(fromPosition(toPosition(theirs)), theirs);
      const decoded = fromResolved(readBack());
      assert.deepEqual(decoded.ok && decoded.event.position, theirs);
    });
  });

  describe('nack decisions', () => {
    it('retries a failed handler below the limit', () => {
      assert.deepEqual(
        decideNack({ kind: 'handler', error: new Error('db down'), retryCount: 9 }, 10),
        {
          action: 'retry',
          reason: 'handler failed: db down',
        },
      );
    });
    it('parks at the limit, with the reason', () => {
      const decision = decideNack(
        { kind: 'handler', error: new Error('db down'), retryCount: 10 },
        10,
      );
      assert.equal(decision.action, 'park');
      assert.match(decision.reason, /11 times, last: db down/);
    });
    it('parks an unreadable event at once', () => {
      assert.deepEqual(decideNack({ kind: 'unreadable', reason: 'bad json' }), {
        action: 'park',
        reason: 'unreadable: bad json',
      });
    });
    it('waits longer after each retry, up to 5 s', () => {
      assert.deepEqual([0, 1, 2, 10].map(retryDelayMs), [100, 200, 400, 5_000]);
    });
  });

  describe('connection strings', () => {
    it('names the hosts without credentials or options', () => {
      assert.equal(
        describeConnectionString('esdb://admin:changeit@node1:2113,node2:2113?tls=true'),
        'esdb://node1:2113,node2:2113',
      );
    });
  });
});
