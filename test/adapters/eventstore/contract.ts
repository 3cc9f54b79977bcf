import type { StoreTransaction } from '../../../adapters/db/schema.ts';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { EventMetadata, RecordedEvent } from '../../../domain/recordedEvent.ts';
import { comparePositions } from '../../../domain/recordedEvent.ts';
import { canonicalEvent, chainHash } from '../../../adapters/eventstore/canonical.ts';
import { ConcurrencyError, type EventStore, type NewEvent } from '../../../application/ports.ts';

/** What a store under contract needs: a fresh empty store, and a way to make another instance. */
export type StoreFixture = {
  store: EventStore<StoreTransaction>;
  /** A second store instance over the same data (a restarted process). */
  reopen: () => Promise<EventStore<StoreTransaction>>;
  close: () => Promise<void>;
};

const metadata = (programId = 'prg_contract'): EventMetadata => ({
  programId,
  correlationId: randomUUID(),
  causationId: null,
  actor: 'key_test',
  recordedAt: '2026-01-01T00:00:00.000Z',
});

export const newEvent = (type: string, data: unknown, programId?: string): NewEvent => ({
  id: randomUUID(),
  type,
  data,
  metadata: metadata(programId),
});

const stream = (name: string) => `${name}-prg_contract-${randomUUID().slice(0, 8)}`;

const rejectsWithConcurrency = async (promise: Promise<unknown>, actual: bigint) => {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ConcurrencyError, `expected ConcurrencyError, got ${String(error)}`);
    assert.equal(error.actual, actual);
    return true;
  });
};

/** The EventStore<StoreTransaction> port's contract: every implementation runs this unchanged. */
export const eventStoreContract = (
  name: string,
  open: () => Promise<StoreFixture>,
  skip: string | false = false,
) => {
  describe(`event store contract: ${name}`, { skip }, () => {
    let fixture: StoreFixture;
    let store: EventStore<StoreTransaction>;
    before(async () => {
      fixture = await open();
      store = fixture.store;
    });
    after(async () => {
      await fixture?.close();
    });

    describe('append with an expected revision', () => {
      it('creates a stream with no_stream and returns revision 0', async () => {
        const s = stream('a');
        const result = await store.append(s, [newEvent('Happened', { n: 1 })], 'no_stream');
        assert.equal(result.nextRevision, 0n);
      });
      it('refuses no_stream on an existing stream with the actual revision', async () => {
        const s = stream('a');
        await store.append(
          s,
          [newEvent('Happened', { n: 1 }), newEvent('Happened', { n: 2 })],
          'no_stream',
        );
        await rejectsWithConcurrency(store.append(s, [newEvent('Happened', {})], 'no_stream'), 1n);
      });
      it('appends at the exact revision and refuses a stale one', async () => {
        const s = stream('a');
        await store.append(s, [newEvent('Happened', {})], 'no_stream');
        const second = await store.append(s, [newEvent('Happened', {})], 0n);
        assert.equal(second.nextRevision, 1n);
        await rejectsWithConcurrency(store.append(s, [newEvent('Happened', {})], 0n), 1n);
      });
      it('refuses exists on a missing stream and accepts it on an existing one', async () => {
        const s = stream('a');
        await rejectsWithConcurrency(store.append(s, [newEvent('Happened', {})], 'exists'), -1n);
        await store.append(s, [newEvent('Happened', {})], 'any');
        const result = await store.append(s, [newEvent('Happened', {})], 'exists');
        assert.equal(result.nextRevision, 1n);
      });
      it('appends with any whatever the revision', async () => {
        const s = stream('a');
        await store.append(s, [newEvent('Happened', {})], 'any');
        const result = await store.append(
          s,
          [newEvent('Happened', {}), newEvent('Happened', {})],
          'any',
        );
        assert.equal(result.nextRevision, 2n);
      });
      it('lets exactly one of several racing appenders at the same revision win', async () => {
        const s = stream('race');
        await store.append(s, [newEvent('Happened', {})], 'no_stream');
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, () => store.append(s, [newEvent('Happened', {})], 0n)),
        );
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        for (const r of results)
          if (r.status === 'rejected') assert.ok(r.reason instanceof ConcurrencyError);
        assert.equal((await store.readStream(s)).length, 2);
      });
      it('appends nothing when the expected revision is wrong', async () => {
        const s = stream('a');
        await store.append(s, [newEvent('Happened', {})], 'no_stream');
        await assert.rejects(
          store.append(s, [newEvent('Happened', {}), newEvent('Happened', {})], 5n),
        );
        assert.equal((await store.readStream(s)).length, 1);
      });
    });

    describe('reading', () => {
      it('reads a stream in revision order with data and metadata as written', async () => {
        const s = stream('r');
        const written = [
          newEvent('One', { a: 1, text: 'ünïcødé 🎉' }),
          newEvent('Two', { nested: { b: [1, 2] } }),
        ];
        await store.append(s, written, 'no_stream');
        const read = await store.readStream(s);
        assert.deepEqual(
          read.map((e) => ({
            id: e.id,
            type: e.type,
            data: e.data,
            metadata: e.metadata,
            revision: e.revision,
          })),
          written.map((e, i) => ({
            id: e.id,
            type: e.type,
            data: e.data,
            metadata: e.metadata,
            revision: BigInt(i),
          })),
        );
      });
      it('reads a stream from a revision on', async () => {
        const s = stream('r');
        await store.append(
          s,
          [newEvent('A', {}), newEvent('B', {}), newEvent('C', {})],
          'no_stream',
        );
        assert.deepEqual(
          (await store.readStream(s, { fromRevision: 1n })).map((e) => e.type),
          ['B', 'C'],
        );
      });
      it('reads a stream of more than ten events in numeric revision order', async () => {
        const s = stream('long');
        const written = Array.from({ length: 12 }, (_, i) => newEvent('Counted', { i }));
        await store.append(s, written, 'no_stream');
        const read = await store.readStream(s);
        assert.deepEqual(
          read.map((e) => e.revision),
          written.map((_, i) => BigInt(i)),
        );
        assert.deepEqual(
          read.map((e) => e.id),
          written.map((e) => e.id),
        );
      });
      it('returns nothing for a missing stream', async () => {
        assert.deepEqual(await store.readStream(stream('missing')), []);
      });
      it('chains hashes over the previous hash and canonical bytes', async () => {
        const s = stream('h');
        await store.append(s, [newEvent('A', { x: 1 })], 'no_stream');
        await store.append(s, [newEvent('B', { y: 'two' }), newEvent('C', {})], 0n);
        let previous: string | null = null;
        for (const event of await store.readStream(s)) {
          assert.equal(event.hash, chainHash(previous, canonicalEvent(event)));
          previous = event.hash;
        }
      });
      it('reads everything in one global order, page by page, after a position', async () => {
        const programId = `prg_${randomUUID().slice(0, 8)}`;
        const ids: string[] = [];
        for (let i = 0; i < 25; i++) {
          const e = newEvent('Paged', { i }, programId);
          ids.push(e.id);
          await store.append(stream('g'), [e], 'no_stream');
        }
        const seen: RecordedEvent[] = [];
        let after = null;
        for (;;) {
          const page = await store.readAll({ after, limit: 7, programId });
          if (page.length === 0) break;
          seen.push(...page);
          after = page[page.length - 1]!.position;
        }
        assert.deepEqual(
          seen.map((e) => e.id),
          ids,
        );
        for (let i = 1; i < seen.length; i++)
          assert.ok(comparePositions(seen[i - 1]!.position, seen[i]!.position) < 0);
      });
    });

    describe('subscriptions', () => {
      it('delivers every event in global order and resumes after a restart from its checkpoint', async () => {
        const programId = `prg_${randomUUID().slice(0, 8)}`;
        const name = `contract-${randomUUID()}`;
        const seen: string[] = [];
        const handle = (events: readonly RecordedEvent[]) => {
          for (const e of events) if (e.metadata.programId === programId) seen.push(e.id);
          return Promise.resolve();
        };
        const first = Array.from({ length: 5 }, (_, i) => newEvent('Sub', { i }, programId));
        for (const e of first) await store.append(stream('s'), [e], 'no_stream');
        const subscription = await store.subscribe({ name, handle });
        await subscription.caughtUp();
        assert.deepEqual(
          seen,
          first.map((e) => e.id),
        );
        await subscription.stop();

        const second = Array.from({ length: 3 }, (_, i) => newEvent('Sub', { i }, programId));
        for (const e of second) await store.append(stream('s'), [e], 'no_stream');
        const restarted = await fixture.reopen();
        const resumed = await restarted.subscribe({ name, handle });
        await resumed.caughtUp();
        await resumed.stop();
        if (restarted !== store) await restarted.close();
        assert.deepEqual(
          seen,
          [...first, ...second].map((e) => e.id),
        );
      });

      it('hands a failed batch back again (at least once) and does not advance past it', async () => {
        const programId = `prg_${randomUUID().slice(0, 8)}`;
        const events = Array.from({ length: 3 }, (_, i) => newEvent('Retry', { i }, programId));
        for (const e of events) await store.append(stream('f'), [e], 'no_stream');
        let failuresLeft = 2;
        const handled: string[] = [];
        const errors: unknown[] = [];
        const subscription = await store.subscribe({
          name: `contract-${randomUUID()}`,
          onError: (error) => errors.push(error),
          handle: (batch) => {
            const ours = batch.filter((e) => e.metadata.programId === programId);
            if (ours.length > 0 && failuresLeft-- > 0)
              return Promise.reject(new Error('handler failed'));
            handled.push(...ours.map((e) => e.id));
            return Promise.resolve();
          },
        });
        await subscription.caughtUp();
        await subscription.stop();
        assert.equal(errors.length, 2);
        assert.deepEqual(
          handled,
          events.map((e) => e.id),
        );
      });

      it('lets a non-transactional handler append events of its own (a policy reactor)', async () => {
        const programId = `prg_${randomUUID().slice(0, 8)}`;
        const trigger = newEvent('Trigger', {}, programId);
        await store.append(stream('t'), [trigger], 'no_stream');
        const reactions: string[] = [];
        const subscription = await store.subscribe({
          name: `contract-${randomUUID()}`,
          transactional: false,
          handle: async (batch) => {
            for (const e of batch) {
              if (e.metadata.programId !== programId) continue;
              if (e.type === 'Trigger')
                await store.append(
                  stream('reaction'),
                  [newEvent('Reacted', { to: e.id }, programId)],
                  'no_stream',
                );
              else reactions.push((e.data as { to: string }).to);
            }
          },
        });
        await subscription.caughtUp();
        await subscription.caughtUp();
        await subscription.stop();
        assert.deepEqual(reactions, [trigger.id]);
      });

      it('wakes for events appended while it waits', async () => {
        const programId = `prg_${randomUUID().slice(0, 8)}`;
        const seen: string[] = [];
        const subscription = await store.subscribe({
          name: `contract-${randomUUID()}`,
          handle: (batch) => {
            for (const e of batch) if (e.metadata.programId === programId) seen.push(e.id);
            return Promise.resolve();
          },
        });
        await subscription.caughtUp();
        const e = newEvent('Live', {}, programId);
        await store.append(stream('w'), [e], 'no_stream');
        await subscription.caughtUp();
        await subscription.stop();
        assert.deepEqual(seen, [e.id]);
      });
    });
  });
};
