import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Dispatcher,
  latencyWeight,
  leaseMarginMs,
  maxClaim,
  maxUnrecorded,
  type DispatcherLimits,
} from '../../delivery/dispatcher.ts';

type Row = { id: string; endpoint_id: string; leaseExpiresAt: number };

/** A clock the test moves by hand; the dispatcher only ever sees its readings. */
const fakeClock = (start = Date.parse('2026-01-05T10:00:00Z')) => {
  let nowMs = start;
  return {
    now: () => nowMs,
    advance: (ms: number) => {
      nowMs += ms;
    },
  };
};

const limits = (overrides: Partial<DispatcherLimits> = {}): DispatcherLimits => ({
  concurrency: 64,
  perEndpointInFlight: 8,
  perEndpointBacklog: 64,
  backlog: 512,
  leaseMs: 25_000,
  timeoutMs: 10_000,
  ...overrides,
});

/** Reserves and queues `n` rows for the endpoint, leased until `leaseExpiresAt`. */
const queue = (
  dispatcher: Dispatcher<Row>,
  endpointId: string,
  n: number,
  leaseExpiresAt: number,
): Row[] =>
  Array.from({ length: n }, (_, i) => {
    const row = { id: `${endpointId}${i + 1}`, endpoint_id: endpointId, leaseExpiresAt };
    dispatcher.reserve(endpointId);
    dispatcher.enqueue(row);
    return row;
  });

/** Every row the dispatcher starts now, in order. */
const startAll = (dispatcher: Dispatcher<Row>, nowMs: number): Row[] => {
  const started: Row[] = [];
  for (let row = dispatcher.next(nowMs); row !== undefined; row = dispatcher.next(nowMs))
    started.push(row);
  return started;
};

describe('dispatcher', () => {
  describe('with rows queued for several endpoints', () => {
    it('starts one row of each ready endpoint in turn, oldest first within an endpoint', () => {
      const clock = fakeClock();
      const dispatcher = new Dispatcher<Row>(limits());
      const lease = clock.now() + 25_000;
      queue(dispatcher, 'a', 3, lease);
      queue(dispatcher, 'b', 3, lease);
      queue(dispatcher, 'c', 1, lease);
      const order = startAll(dispatcher, clock.now()).map((r) => r.id);
      assert.deepEqual(order, ['a1', 'b1', 'c1', 'a2', 'b2', 'a3', 'b3']);
    });

    it('starts no more POSTs than the concurrency, and one more as each ends', () => {
      const clock = fakeClock();
      const dispatcher = new Dispatcher<Row>(limits({ concurrency: 3 }));
      const lease = clock.now() + 25_000;
      queue(dispatcher, 'a', 2, lease);
      queue(dispatcher, 'b', 2, lease);
      const first = startAll(dispatcher, clock.now());
      assert.deepEqual(
        first.map((r) => r.id),
        ['a1', 'b1', 'a2'],
      );
      assert.equal(dispatcher.sending, 3);
      dispatcher.sent('a');
      assert.deepEqual(
        startAll(dispatcher, clock.now()).map((r) => r.id),
        ['b2'],
      );
    });
  });

  describe('with an endpoint whose POSTs hang', () => {
    it('holds only its own slots: the other endpoints keep getting theirs', () => {
      const clock = fakeClock();
      const dispatcher = new Dispatcher<Row>(limits({ concurrency: 4, perEndpointInFlight: 2 }));
      const lease = clock.now() + 25_000;
      queue(dispatcher, 'hang', 20, lease);
      queue(dispatcher, 'ok', 20, lease);
      const inFlight: Row[] = startAll(dispatcher, clock.now());
      const sentByOk: string[] = [];
      // Every POST to 'ok' answers at once; none to 'hang' ever returns.
      for (let round = 0; round < 30; round++) {
        const hanging = inFlight.filter((r) => r.endpoint_id === 'hang').length;
        assert.ok(hanging <= 2, `the hanging endpoint holds ${hanging} slots, at most 2`);
        const answered = inFlight.filter((r) => r.endpoint_id === 'ok');
        for (const row of answered) {
          inFlight.splice(inFlight.indexOf(row), 1);
          sentByOk.push(row.id);
          dispatcher.sent('ok');
        }
        clock.advance(10);
        inFlight.push(...startAll(dispatcher, clock.now()));
      }
      assert.equal(sentByOk.length, 20, 'every row of the answering endpoint was sent');
      assert.equal(inFlight.filter((r) => r.endpoint_id === 'hang').length, 2);
      assert.equal(dispatcher.sending, 2);
    });
  });

  describe('lease margin', () => {
    const timeoutMs = 10_000;

    it('starts a row whose lease outlasts the POST budget plus the margin', () => {
      const clock = fakeClock();
      const dispatcher = new Dispatcher<Row>(limits({ timeoutMs }));
      queue(dispatcher, 'a', 1, clock.now() + timeoutMs + leaseMarginMs + 1);
      assert.equal(dispatcher.next(clock.now())?.id, 'a1');
    });

    it('drops a row whose lease would end within the POST budget plus the margin, and frees its room', () => {
      const clock = fakeClock();
      const dispatcher = new Dispatcher<Row>(limits({ timeoutMs }));
      const lease = clock.now() + 25_000;
      queue(dispatcher, 'a', 2, lease);
      assert.equal(dispatcher.heldBy('a'), 2);
      // Held behind a slow endpoint until exactly budget + margin is left: too late to start.
      clock.advance(25_000 - timeoutMs - leaseMarginMs);
      assert.equal(dispatcher.next(clock.now()), undefined);
      assert.equal(dispatcher.heldBy('a'), 0);
      assert.equal(dispatcher.held, 0);
      assert.equal(dispatcher.sending, 0);
    });

    it('skips the expiring rows to reach a later one of the same endpoint', () => {
      const clock = fakeClock();
      const dispatcher = new Dispatcher<Row>(limits({ timeoutMs }));
      queue(dispatcher, 'a', 2, clock.now() + timeoutMs);
      const [late] = queue(dispatcher, 'a', 1, clock.now() + 25_000);
      assert.equal(dispatcher.next(clock.now()), late);
      assert.equal(dispatcher.heldBy('a'), 1);
    });
  });

  describe('latency', () => {
    it('starts an endpoint mean at its first POST and moves it by the weight toward each later one', () => {
      const dispatcher = new Dispatcher<Row>(limits());
      assert.equal(dispatcher.latencyOf('a'), undefined);
      dispatcher.observe('a', 100);
      assert.equal(dispatcher.latencyOf('a'), 100);
      dispatcher.observe('a', 200);
      assert.equal(dispatcher.latencyOf('a'), 100 + latencyWeight * 100);
      dispatcher.observe('a', 20);
      assert.equal(dispatcher.latencyOf('a'), 120 + latencyWeight * (20 - 120));
      assert.equal(dispatcher.latencyOf('b'), undefined);
    });
  });

  describe('backlog sizing', () => {
    // leaseMs 25 s, timeoutMs 10 s: (25 000 - 10 000 - 1 000) / 2 = 7 000 ms to wait in the queue.
    const sized = () =>
      new Dispatcher<Row>(
        limits({
          perEndpointInFlight: 8,
          perEndpointBacklog: 64,
          leaseMs: 25_000,
          timeoutMs: 10_000,
        }),
      );

    it('gives an endpoint with no POST yet the whole per-endpoint backlog', () => {
      assert.equal(sized().backlogOf('new'), 64);
    });

    it('holds as many rounds of in-flight slots as fit in the lease at the mean duration', () => {
      const dispatcher = sized();
      dispatcher.observe('two-seconds', 2_000);
      // 7 000 / 2 000 = 3 rounds waiting, plus the one in flight: 4 x 8.
      assert.equal(dispatcher.backlogOf('two-seconds'), 32);
      dispatcher.observe('one-second', 1_000);
      // 7 rounds + 1 = 64: the cap.
      assert.equal(dispatcher.backlogOf('one-second'), 64);
      dispatcher.observe('fast', 1);
      assert.equal(dispatcher.backlogOf('fast'), 64);
    });

    it('never holds fewer than the in-flight slots, however slow the endpoint', () => {
      const dispatcher = sized();
      dispatcher.observe('slow', 60_000);
      assert.equal(dispatcher.backlogOf('slow'), 8);
    });

    it('refuses room past the endpoint backlog and past the total backlog', () => {
      const clock = fakeClock();
      const dispatcher = new Dispatcher<Row>(
        limits({ concurrency: 2, perEndpointInFlight: 2, perEndpointBacklog: 3, backlog: 4 }),
      );
      queue(dispatcher, 'a', 3, clock.now() + 25_000);
      assert.equal(dispatcher.hasRoom('a'), false);
      assert.equal(dispatcher.hasRoom('b'), true);
      queue(dispatcher, 'b', 1, clock.now() + 25_000);
      assert.equal(dispatcher.full, true);
      assert.equal(dispatcher.hasRoom('b'), false);
    });

    it('raises a per-endpoint backlog below the in-flight slots, and a backlog below the concurrency', () => {
      const dispatcher = new Dispatcher<Row>(
        limits({ concurrency: 4, perEndpointInFlight: 4, perEndpointBacklog: 1, backlog: 1 }),
      );
      assert.equal(dispatcher.perEndpointBacklog, 4);
      assert.equal(dispatcher.claimRoom(0), 4);
    });
  });

  describe('claims', () => {
    it('offers the free backlog, at most maxClaim, and nothing while too many attempts wait to be recorded', () => {
      const clock = fakeClock();
      const dispatcher = new Dispatcher<Row>(limits({ backlog: 5_000 }));
      assert.equal(dispatcher.claimRoom(0), maxClaim);
      queue(dispatcher, 'a', 10, clock.now() + 25_000);
      assert.equal(new Dispatcher<Row>(limits({ backlog: 512 })).claimRoom(maxUnrecorded - 1), 512);
      assert.equal(dispatcher.claimRoom(maxUnrecorded), 0);
    });

    it('claims only in large bites, unless nothing is held', () => {
      const clock = fakeClock();
      const dispatcher = new Dispatcher<Row>(limits({ backlog: 400 }));
      assert.equal(dispatcher.worthClaiming(1), true, 'nothing held: any room is worth a claim');
      queue(dispatcher, 'a', 1, clock.now() + 25_000);
      assert.equal(dispatcher.worthClaiming(99), false);
      assert.equal(dispatcher.worthClaiming(100), true);
      assert.equal(dispatcher.worthClaiming(0), false);
    });

    it("counts a slow endpoint's smaller backlog as held, and names the endpoints with no room", () => {
      const clock = fakeClock();
      const dispatcher = new Dispatcher<Row>(
        limits({ perEndpointInFlight: 8, perEndpointBacklog: 64 }),
      );
      queue(dispatcher, 'busy', 64, clock.now() + 25_000);
      queue(dispatcher, 'some', 5, clock.now() + 25_000);
      dispatcher.observe('slow', 2_000);
      const plan = dispatcher.claimPlan();
      const held = new Map(plan.held.map((h) => [h.endpointId, h.n]));
      assert.equal(held.get('busy'), 64);
      assert.equal(held.get('some'), 5);
      assert.equal(held.get('slow'), 64 - 32, 'a backlog of 32 shows as 32 of 64 held');
      assert.deepEqual(plan.saturated, ['busy']);
    });

    it('claims again for an endpoint the claim filled once it has half drained, once', () => {
      const clock = fakeClock();
      const dispatcher = new Dispatcher<Row>(
        limits({ concurrency: 64, perEndpointInFlight: 4, perEndpointBacklog: 8 }),
      );
      const plan = dispatcher.claimPlan();
      const lease = clock.now() + 25_000;
      const rows = Array.from({ length: 8 }, (_, i) => ({
        id: `a${i + 1}`,
        endpoint_id: 'a',
        leaseExpiresAt: lease,
      }));
      assert.equal(dispatcher.claimed(plan, rows), false, 'full, nothing drained yet');
      assert.equal(dispatcher.heldBy('a'), 8);
      const started = startAll(dispatcher, clock.now());
      assert.equal(started.length, 4);
      const drained = [1, 2, 3, 4].map(() => dispatcher.sent('a'));
      // 7, 6, 5 held: more than half of 8; at 4 it is half drained.
      assert.deepEqual(drained, [false, false, false, true]);
      startAll(dispatcher, clock.now());
      assert.equal(dispatcher.sent('a'), false, 'one claim per drain, not one per POST');
    });

    it('does not claim again for an endpoint the claim gave less than it offered', () => {
      const clock = fakeClock();
      const dispatcher = new Dispatcher<Row>(
        limits({ concurrency: 64, perEndpointInFlight: 4, perEndpointBacklog: 8 }),
      );
      const plan = dispatcher.claimPlan();
      const lease = clock.now() + 25_000;
      dispatcher.claimed(plan, [{ id: 'a1', endpoint_id: 'a', leaseExpiresAt: lease }]);
      startAll(dispatcher, clock.now());
      assert.equal(dispatcher.sent('a'), false);
    });
  });

  describe('a hand-over reservation', () => {
    it('queues the inserted rows it took room for and frees the room of the rest', () => {
      const clock = fakeClock();
      const dispatcher = new Dispatcher<Row>(
        limits({ perEndpointInFlight: 1, perEndpointBacklog: 2 }),
      );
      const room = dispatcher.reservation();
      assert.equal(room.take('a'), true);
      assert.equal(room.take('a'), true);
      assert.equal(room.take('a'), false, 'the endpoint backlog is 2');
      assert.equal(room.take('b'), true);
      assert.equal(dispatcher.held, 3);
      const lease = clock.now() + 25_000;
      // Only one row of a was inserted (a replay), and one row of c that was never taken.
      room.queue([
        { id: 'a1', endpoint_id: 'a', leaseExpiresAt: lease },
        { id: 'c1', endpoint_id: 'c', leaseExpiresAt: lease },
      ]);
      assert.equal(dispatcher.heldBy('a'), 1);
      assert.equal(dispatcher.heldBy('b'), 0);
      assert.equal(dispatcher.heldBy('c'), 0);
      assert.deepEqual(
        startAll(dispatcher, clock.now()).map((r) => r.id),
        ['a1'],
      );
    });

    it('frees everything it took when cancelled', () => {
      const dispatcher = new Dispatcher<Row>(limits());
      const room = dispatcher.reservation();
      room.take('a');
      room.take('b');
      room.cancel();
      assert.equal(dispatcher.held, 0);
      assert.equal(dispatcher.next(0), undefined);
    });
  });

  describe('on a stop', () => {
    it('hands back every queued row and frees their room, leaving the POSTs under way', () => {
      const clock = fakeClock();
      const dispatcher = new Dispatcher<Row>(limits({ perEndpointInFlight: 1 }));
      queue(dispatcher, 'a', 3, clock.now() + 25_000);
      assert.equal(dispatcher.next(clock.now())?.id, 'a1');
      const queued = dispatcher.drain();
      assert.deepEqual(
        queued.map((r) => r.id),
        ['a2', 'a3'],
      );
      assert.equal(dispatcher.held, 1);
      assert.equal(dispatcher.next(clock.now()), undefined);
    });
  });
});
