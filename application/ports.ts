import type { IdKind } from '../domain/ids.ts';
import type { EventMetadata, Position, RecordedEvent } from '../domain/recordedEvent.ts';
import type { TraceContext } from './tracing.ts';

/**
 * The ports the application layer needs from the outside world. The adapters implement them
 * (adapters/eventstore/, adapters/db/database.ts, adapters/ids.ts, adapters/mail/), and
 * adapters/runtime.ts wires them in.
 */

/** The application's clock: the only source of `now` for commands and jobs. */
export type Clock = { now: () => Date };

export const systemClock: Clock = { now: () => new Date() };

/** Where new ids come from. */
export type Ids = {
  /** A fresh random id of `kind` (`mem_` + 20 base36 characters). */
  newId: (kind: IdKind) => string;
  /** An id of the same form derived from `seed`: the same seed always names the same id. */
  derivedId: (kind: IdKind, seed: string) => string;
};

/**
 * Runs `work` on at most one process of the cluster at a time: a caller that does not get the
 * lock named `key` skips the work and gets `{ ran: false }`.
 */
export type ExclusiveRunner = <T>(
  key: string,
  work: () => Promise<T>,
) => Promise<{ ran: true; value: T } | { ran: false }>;

export type ExpectedRevision = 'no_stream' | 'any' | 'exists' | bigint;

/** An event to append: the store adds its id's place, revision, position and hash. */
export type NewEvent = {
  id: string;
  type: string;
  data: unknown;
  metadata: EventMetadata;
};

export type AppendResult = {
  /** Revision of the last event appended (0 for a stream's first event). */
  nextRevision: bigint;
  /** Position of the last event appended. */
  position: Position;
};

/** Raised when the stream's actual revision does not match the expected one. */
export class ConcurrencyError extends Error {
  readonly stream: string;
  readonly expected: ExpectedRevision;
  /** -1n when the stream does not exist. */
  readonly actual: bigint;
  constructor(stream: string, expected: ExpectedRevision, actual: bigint) {
    super(`stream ${stream}: expected revision ${String(expected)}, actual ${String(actual)}`);
    this.name = 'ConcurrencyError';
    this.stream = stream;
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * Handles a batch of events in order. `tx` is a transaction on the read-model database: the
 * store commits the subscription's checkpoint in that same transaction (Postgres) or acks after
 * it commits (EventStoreDB), so a crash replays the batch and never loses one. Handlers must be
 * idempotent by event id.
 */
export type SubscriptionHandler<Tx> = (
  events: readonly RecordedEvent[],
  tx: Tx,
  /** The batch's trace (its span, when tracing records it): the parent of what the handler starts. */
  trace?: TraceContext,
) => Promise<void>;

export type SubscriptionOptions<Tx> = {
  /** Durable name: the checkpoint key, and the single-active lock. */
  name: string;
  handle: SubscriptionHandler<Tx>;
  batchSize?: number;
  /**
   * true (default): the handler's writes and the checkpoint commit in one transaction. false:
   * the handler gets the plain database and the checkpoint is written after it returns, for a
   * handler that issues commands (which must not run inside a transaction it holds: the embedded
   * database has one connection). Such a handler must be idempotent, as every handler is.
   */
  transactional?: boolean;
  /** Called after a batch's transaction committed (e.g. to wake the delivery worker). */
  onBatchCommitted?: (events: readonly RecordedEvent[]) => void;
  /** Called with every failure of a batch before it is retried. */
  onError?: (error: unknown) => void;
};

export type Subscription = {
  /** Resolves when every event committed before the call has been handled. */
  caughtUp: () => Promise<void>;
  /** The last position handled, or null before the first batch. */
  checkpoint: () => Position | null;
  stop: () => Promise<void>;
};

/**
 * The event store, as the application layer, projectors and auditors use it. Every
 * implementation passes test/adapters/eventstore/contract.ts. `Tx` is what a subscription's
 * handler is given to write its read models with (a Kysely transaction on the database).
 */
export type EventStore<Tx> = {
  append: (
    stream: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
  ) => Promise<AppendResult>;
  /** Events of one stream from `fromRevision` (inclusive) on, in revision order. */
  readStream: (
    stream: string,
    options?: { fromRevision?: bigint; limit?: number },
  ) => Promise<RecordedEvent[]>;
  /** Events in the global order strictly after `after` (null: from the start). */
  readAll: (options: {
    after: Position | null;
    limit: number;
    programId?: string;
  }) => Promise<RecordedEvent[]>;
  subscribe: (options: SubscriptionOptions<Tx>) => Promise<Subscription>;
  close: () => Promise<void>;
};
