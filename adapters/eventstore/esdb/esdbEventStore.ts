import type { StoreTransaction } from '../../db/schema.ts';
import {
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  StreamNotFoundError,
  UnavailableError,
  DeadlineExceededError,
  type AllStreamResolvedEvent,
  type ResolvedEvent,
} from '@eventstore/db-client';
import {
  comparePositions,
  type Position,
  type RecordedEvent,
} from '../../../domain/recordedEvent.ts';
import type { DatabaseHandle } from '../../db/database.ts';
import { canonicalEvent, chainHash } from '../canonical.ts';
import {
  ConcurrencyError,
  type AppendResult,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type Subscription,
  type SubscriptionOptions,
} from '../../../application/ports.ts';
import {
  describeConnectionString,
  fromPosition,
  fromResolved,
  isSystemEvent,
  isWrongExpectedVersion,
  retryDelayMs,
  toConcurrencyError,
  toEventData,
  toEsdbExpected,
} from './mapping.ts';
import { EsdbSubscription } from './persistentSubscription.ts';
import { backoff } from '../../backoff.ts';

/** A start against EventStoreDB that cannot go on: a malformed connection string, no server. */
export class EsdbConnectionError extends Error {
  override readonly name = 'EsdbConnectionError';
}

export type EsdbEventStoreOptions = {
  client: EventStoreDBClient;
  /** Where the server lives, for messages (no credentials): describeConnectionString's result. */
  endpoint: string;
  /** The Postgres read-model database: subscription transactions and handled checkpoints. */
  readModels: DatabaseHandle;
  /** Events per gRPC read: reads page through with backpressure, never the whole stream at once. */
  pageSize?: number;
  /** Reconnect back-off of subscriptions after a lost connection. */
  reconnectDelayMs?: { initial: number; max: number };
  /** Pause before nacking a failed batch for retry, by retry count (default retryDelayMs). */
  retryDelayMs?: (retryCount: number) => number;
};

export type Readiness = { ready: true } | { ready: false; reason: string };

/**
 * Parses the connection string and checks the server answers before anything starts: a start
 * against a missing server fails here, in seconds, with a message naming the endpoint.
 */
export const openEsdbEventStore = async (options: {
  connectionString: string;
  readModels: DatabaseHandle;
  probeTimeoutMs?: number;
  pageSize?: number;
  reconnectDelayMs?: { initial: number; max: number };
  retryDelayMs?: (retryCount: number) => number;
}): Promise<EsdbEventStore> => {
  const endpoint = describeConnectionString(options.connectionString);
  let client: EventStoreDBClient;
  try {
    client = EventStoreDBClient.connectionString(options.connectionString);
  } catch (error) {
    throw new EsdbConnectionError(
      `ESDB_CONNECTION_STRING is malformed: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  try {
    const probe = client.readAll({
      direction: BACKWARDS,
      fromPosition: END,
      maxCount: 1,
      deadline: options.probeTimeoutMs ?? 5_000,
    });
    for await (const _ of probe);
  } catch (error) {
    await client.dispose().catch(() => {});
    throw new EsdbConnectionError(
      `EventStoreDB at ${endpoint} is unreachable or refused the connection (${error instanceof Error ? error.message : String(error)}); check ESDB_CONNECTION_STRING and the server`,
      { cause: error },
    );
  }
  return new EsdbEventStore({
    client,
    endpoint,
    readModels: options.readModels,
    ...(options.pageSize !== undefined && { pageSize: options.pageSize }),
    ...(options.reconnectDelayMs && { reconnectDelayMs: options.reconnectDelayMs }),
    ...(options.retryDelayMs && { retryDelayMs: options.retryDelayMs }),
  });
};

const isConnectionFault = (error: unknown): boolean =>
  error instanceof UnavailableError || error instanceof DeadlineExceededError;

/**
 * The event store on EventStoreDB. Streams, revisions and the $all order are the server's; the
 * hash chain is computed here from the stream's last event and rides in the metadata, so the
 * same history hashes the same on every store. Read models stay in Postgres.
 */
export class EsdbEventStore implements EventStore<StoreTransaction> {
  readonly client: EventStoreDBClient;
  readonly endpoint: string;
  readonly #readModels: DatabaseHandle;
  readonly #pageSize: number;
  readonly #reconnectDelayMs: { initial: number; max: number };
  readonly #retryDelayMs: (retryCount: number) => number;
  readonly #subscriptions = new Set<EsdbSubscription>();
  #lostReason: string | null = null;

  constructor(options: EsdbEventStoreOptions) {
    this.client = options.client;
    this.endpoint = options.endpoint;
    this.#readModels = options.readModels;
    this.#pageSize = options.pageSize ?? 500;
    this.#reconnectDelayMs = options.reconnectDelayMs ?? { initial: 250, max: 10_000 };
    this.#retryDelayMs = options.retryDelayMs ?? retryDelayMs;
  }

  /** For /readyz: not ready while the last call to the server failed for want of a connection. */
  readiness(): Readiness {
    const lost =
      this.#lostReason ?? [...this.#subscriptions].find((s) => s.lostReason())?.lostReason();
    return lost
      ? { ready: false, reason: `EventStoreDB at ${this.endpoint}: ${lost}` }
      : { ready: true };
  }

  /**
   * Runs a call to the server, keeping track of whether the connection works. A call that meets a
   * lost connection is tried again a few times (the client opens a new channel): reads are safe
   * to repeat, and so are appends, which EventStoreDB makes idempotent by event id at the same
   * expected revision.
   */
  async #call<T>(work: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await work();
        this.#lostReason = null;
        return result;
      } catch (error) {
        if (!isConnectionFault(error)) throw error;
        this.#lostReason = error instanceof Error ? error.message : String(error);
        if (attempt >= 3) throw error;
        await new Promise((resolve) =>
          setTimeout(resolve, backoff({ attempt, baseMs: 50, maxMs: 800, factor: 4 })),
        );
      }
    }
  }

  /** The last event of a stream, or null when it does not exist. */
  async lastEvent(stream: string): Promise<RecordedEvent | null> {
    return this.#call(async () => {
      // Every read is consumed to its end (maxCount bounds it): a read left half-way keeps its
      // gRPC call open, and the client's dispose() waits for it.
      let last: RecordedEvent | null = null;
      try {
        for await (const resolved of this.client.readStream(stream, {
          direction: BACKWARDS,
          fromRevision: END,
          maxCount: 1,
        }))
          last = decodeOrThrow(resolved);
      } catch (error) {
        if (error instanceof StreamNotFoundError) return null;
        throw error;
      }
      return last;
    });
  }

  async append(
    stream: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    if (events.length === 0) throw new RangeError('append needs at least one event');
    toEsdbExpected(expected);
    // The chain needs the previous hash, so every append is pinned to the revision whose hash it
    // read: 'any' and 'exists' become that exact revision, and a writer that slipped in between
    // makes the server refuse. For 'any' that is not the caller's conflict: read and try again.
    for (let attempt = 0; ; attempt++) {
      const last = await this.lastEvent(stream);
      const actual = last?.revision ?? -1n;
      if (expected === 'no_stream' && last) throw new ConcurrencyError(stream, expected, actual);
      if (expected === 'exists' && !last) throw new ConcurrencyError(stream, expected, -1n);
      if (typeof expected === 'bigint' && actual !== expected)
        throw new ConcurrencyError(stream, expected, actual);
      let previous = last?.hash ?? null;
      const data = events.map((event) => {
        const hash = chainHash(previous, canonicalEvent({ ...event, streamName: stream }));
        previous = hash;
        return toEventData(event, hash);
      });
      try {
        const result = await this.#call(() =>
          this.client.appendToStream(stream, data, {
            expectedRevision: last ? last.revision : toEsdbExpected('no_stream'),
          }),
        );
        if (!result.position) throw new Error(`EventStoreDB returned no position for ${stream}`);
        return {
          nextRevision: result.nextExpectedRevision,
          position: { commit: result.position.commit, prepare: result.position.prepare },
        };
      } catch (error) {
        if (!isWrongExpectedVersion(error)) throw error;
        if (expected === 'any' && attempt < 20) continue;
        if (expected === 'exists' && attempt < 20 && error.actualVersion !== 'no_stream') continue;
        throw toConcurrencyError(error, stream, expected);
      }
    }
  }

  /** Events of a stream from a revision on, read a page at a time. */
  async *streamEvents(
    stream: string,
    options: { fromRevision?: bigint; limit?: number } = {},
  ): AsyncGenerator<RecordedEvent> {
    let from = options.fromRevision ?? 0n;
    let left = options.limit ?? Number.MAX_SAFE_INTEGER;
    while (left > 0) {
      const count = Math.min(left, this.#pageSize);
      let read = 0;
      const page = await this.#call(async () => {
        const events: RecordedEvent[] = [];
        try {
          for await (const resolved of this.client.readStream(stream, {
            direction: FORWARDS,
            fromRevision: from,
            maxCount: count,
          })) {
            read++;
            events.push(decodeOrThrow(resolved));
          }
        } catch (error) {
          if (error instanceof StreamNotFoundError) return events;
          throw error;
        }
        return events;
      });
      yield* page;
      left -= read;
      const last = page.at(-1);
      if (read < count || last === undefined) return;
      from = last.revision + 1n;
    }
  }

  async readStream(
    stream: string,
    options: { fromRevision?: bigint; limit?: number } = {},
  ): Promise<RecordedEvent[]> {
    const events: RecordedEvent[] = [];
    for await (const event of this.streamEvents(stream, options)) events.push(event);
    return events;
  }

  /**
   * Our events in the $all order strictly after `after`, a page at a time. EventStoreDB reads
   * from a position inclusively, and $all holds the server's own ($-prefixed) events: both are
   * skipped here.
   */
  async *allEvents(options: {
    after: Position | null;
    programId?: string;
  }): AsyncGenerator<RecordedEvent> {
    let after = options.after;
    for (;;) {
      let read = 0;
      let lastSeen: Position | null = null;
      const page = await this.#call(async () => {
        const events: RecordedEvent[] = [];
        for await (const resolved of this.client.readAll({
          direction: FORWARDS,
          fromPosition: after ? fromPosition(after) : 'start',
          maxCount: this.#pageSize,
        }) as AsyncIterable<AllStreamResolvedEvent>) {
          read++;
          const event = resolved.event;
          if (!event) continue;
          lastSeen = { commit: event.position.commit, prepare: event.position.prepare };
          if (after && comparePositions(lastSeen, after) <= 0) continue;
          if (isSystemEvent(event)) continue;
          const decoded = decodeOrThrow(resolved);
          if (options.programId !== undefined && decoded.metadata.programId !== options.programId)
            continue;
          events.push(decoded);
        }
        return events;
      });
      yield* page;
      if (read < this.#pageSize || lastSeen === null) return;
      after = lastSeen;
    }
  }

  async readAll(options: {
    after: Position | null;
    limit: number;
    programId?: string;
  }): Promise<RecordedEvent[]> {
    const events: RecordedEvent[] = [];
    if (options.limit <= 0) return events;
    for await (const event of this.allEvents(options)) {
      events.push(event);
      if (events.length >= options.limit) break;
    }
    return events;
  }

  /** The position of the last of our events in $all, or null when there is none. */
  async headPosition(): Promise<Position | null> {
    return this.#call(async () => {
      let from: Position | 'end' = 'end';
      for (;;) {
        let read = 0;
        const reading: AsyncIterable<AllStreamResolvedEvent> = this.client.readAll({
          direction: BACKWARDS,
          fromPosition: from === 'end' ? END : fromPosition(from),
          maxCount: 100,
        });
        const page: AllStreamResolvedEvent[] = [];
        for await (const resolved of reading) page.push(resolved);
        for (const resolved of page) {
          read++;
          const event: AllStreamResolvedEvent['event'] = resolved.event;
          if (!event) continue;
          if (!isSystemEvent(event))
            return { commit: event.position.commit, prepare: event.position.prepare };
          from = { commit: event.position.commit, prepare: event.position.prepare };
        }
        if (read < 100) return null;
      }
    });
  }

  async subscribe(options: SubscriptionOptions<StoreTransaction>): Promise<Subscription> {
    for (const existing of this.#subscriptions)
      if (existing.name === options.name)
        throw new Error(`subscription ${options.name} is already running here`);
    const subscription = new EsdbSubscription({
      store: this,
      client: this.client,
      readModels: this.#readModels,
      options,
      reconnectDelayMs: this.#reconnectDelayMs,
      retryDelayMs: this.#retryDelayMs,
      onStop: () => this.#subscriptions.delete(subscription),
    });
    this.#subscriptions.add(subscription);
    try {
      await subscription.start();
    } catch (error) {
      this.#subscriptions.delete(subscription);
      throw error;
    }
    return subscription;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#subscriptions].map((s) => s.stop()));
    await this.client.dispose();
  }
}

/** A read that meets an event we cannot decode is an infrastructure fault, with the reason. */
const decodeOrThrow = (resolved: ResolvedEvent | AllStreamResolvedEvent): RecordedEvent => {
  const decoded = fromResolved(resolved);
  if (!decoded.ok) throw new Error(`EventStoreDB: ${decoded.reason}`);
  return decoded.event;
};
