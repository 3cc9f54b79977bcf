import {
  ANY,
  NO_STREAM,
  STREAM_EXISTS,
  WrongExpectedVersionError,
  type AppendExpectedRevision,
  type CurrentRevision,
  type JSONEventData,
  type PersistentSubscriptionToAllResolvedEvent,
  type Position as EsdbPosition,
  type ResolvedEvent,
} from '@eventstore/db-client';
import { z } from 'zod';
import type { EventMetadata, Position, RecordedEvent } from '../../../domain/recordedEvent.ts';
import {
  ConcurrencyError,
  type ExpectedRevision,
  type NewEvent,
} from '../../../application/ports.ts';
import { backoff } from '../../backoff.ts';

/**
 * The pure translations between our event store port and @eventstore/db-client: expected
 * revisions, errors, metadata, positions and the subscription's nack decisions. Vendor types stop
 * here; the store and the subscription speak ours.
 */

/** Our expected revision as the client's: 'exists' is its STREAM_EXISTS, a revision a bigint. */
export const toEsdbExpected = (expected: ExpectedRevision): AppendExpectedRevision => {
  if (expected === 'no_stream') return NO_STREAM;
  if (expected === 'any') return ANY;
  if (expected === 'exists') return STREAM_EXISTS;
  if (expected < 0n) throw new RangeError(`expected revision must be >= 0, got ${expected}`);
  return expected;
};

/** The client's expected revision as ours (its errors carry one). */
export const fromEsdbExpected = (expected: AppendExpectedRevision): ExpectedRevision => {
  if (expected === NO_STREAM) return 'no_stream';
  if (expected === ANY) return 'any';
  if (expected === STREAM_EXISTS) return 'exists';
  return expected;
};

/** The client's current revision as our `actual`: -1n when the stream does not exist. */
export const fromEsdbCurrent = (current: CurrentRevision): bigint =>
  current === NO_STREAM ? -1n : current;

/**
 * WrongExpectedVersionError becomes our ConcurrencyError, with the revision we asked for (the
 * adapter may have narrowed 'any' to an exact revision to keep the hash chain) and the actual one.
 */
export const toConcurrencyError = (
  error: WrongExpectedVersionError,
  stream: string,
  expected: ExpectedRevision,
): ConcurrencyError => {
  const concurrency = new ConcurrencyError(stream, expected, fromEsdbCurrent(error.actualVersion));
  (concurrency as Error).cause = error;
  return concurrency;
};

export const isWrongExpectedVersion = (error: unknown): error is WrongExpectedVersionError =>
  error instanceof WrongExpectedVersionError;

/**
 * What rides in an EventStoreDB event's metadata: our EventMetadata, the event's hash, and the
 * `$correlationId`/`$causationId` keys EventStoreDB's own projections and UI understand.
 */
export type EsdbMetadata = EventMetadata & {
  hash: string;
  $correlationId: string;
  $causationId?: string;
};

export const toEventData = (event: NewEvent, hash: string): JSONEventData => {
  const metadata: EsdbMetadata = {
    ...event.metadata,
    hash,
    $correlationId: event.metadata.correlationId,
    ...(event.metadata.causationId !== null && { $causationId: event.metadata.causationId }),
  };
  return {
    id: event.id,
    contentType: 'application/json',
    type: event.type,
    data: event.data as JSONEventData['data'],
    metadata: metadata,
  };
};

const metadataSchema = z.looseObject({
  programId: z.string().nullable(),
  correlationId: z.string(),
  causationId: z.string().nullable(),
  actor: z.string(),
  recordedAt: z.string(),
  hash: z.string().regex(/^[0-9a-f]{64}$/, 'must be a sha256 hex digest'),
});

export const toPosition = (position: EsdbPosition): Position => ({
  commit: position.commit,
  prepare: position.prepare,
});

export const fromPosition = (position: Position): EsdbPosition => ({
  commit: position.commit,
  prepare: position.prepare,
});

/** System events ($-prefixed types or streams) are EventStoreDB's own, never ours. */
export const isSystemEvent = (event: { type: string; streamId: string }): boolean =>
  event.type.startsWith('$') || event.streamId.startsWith('$');

export type Decoded = { ok: true; event: RecordedEvent } | { ok: false; reason: string };

/**
 * An EventStoreDB event as ours. Refuses (never guesses) what we did not write: binary content,
 * data that is not a JSON object or array (the client hands back unparseable JSON as a string),
 * metadata without our fields or hash, or an event without a position.
 */
export const fromResolved = (
  resolved: ResolvedEvent | PersistentSubscriptionToAllResolvedEvent,
): Decoded => {
  const event = resolved.event;
  if (!event) return { ok: false, reason: 'the link points at a deleted event' };
  const where = `event ${event.id} in ${event.streamId}@${event.revision}`;
  if (!event.isJson) return { ok: false, reason: `${where}: content is not application/json` };
  if (event.data === null || typeof event.data !== 'object')
    return { ok: false, reason: `${where}: data is not a JSON object (malformed JSON?)` };
  if (event.metadata === undefined || event.metadata instanceof Uint8Array)
    return { ok: false, reason: `${where}: metadata is missing or not JSON` };
  const metadata = metadataSchema.safeParse(event.metadata);
  if (!metadata.success)
    return {
      ok: false,
      reason: `${where}: metadata ${metadata.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    };
  if (!event.position) return { ok: false, reason: `${where}: no $all position` };
  const { hash, $correlationId: _c, $causationId: _ca, ...ours } = metadata.data;
  return {
    ok: true,
    event: {
      id: event.id,
      type: event.type,
      data: event.data,
      streamName: event.streamId,
      revision: event.revision,
      position: toPosition(event.position),
      metadata: ours,
      hash,
    },
  };
};

/** Settings of every projector's persistent subscription group; docs/scale-out.md explains them. */
export const subscriptionSettings = {
  /** A handler failing this many times in a row parks the event (ours and the server's limit). */
  maxRetryCount: 10,
  /** An unacked event is redelivered after this: longer than any sane handler batch. */
  messageTimeoutMs: 60_000,
  /** The server checkpoints at most every second, after at least 1 and at most 500 acks. */
  checkPointAfterMs: 1_000,
  checkPointLowerBound: 1,
  checkPointUpperBound: 500,
  liveBufferSize: 500,
  readBatchSize: 100,
  historyBufferSize: 500,
} as const;

export type NackDecision = { action: 'retry' | 'park'; reason: string };

/**
 * What to tell the server about an event whose batch failed. `retryCount` is how often the server
 * has already redelivered it: at the limit it is parked, with the reason, rather than retried
 * forever; unreadable events are parked at once (retrying cannot fix them).
 */
export const decideNack = (
  failure:
    | { kind: 'handler'; error: unknown; retryCount: number }
    | { kind: 'unreadable'; reason: string },
  maxRetryCount: number = subscriptionSettings.maxRetryCount,
): NackDecision => {
  if (failure.kind === 'unreadable')
    return { action: 'park', reason: `unreadable: ${failure.reason}` };
  const message = failure.error instanceof Error ? failure.error.message : String(failure.error);
  if (failure.retryCount >= maxRetryCount)
    return {
      action: 'park',
      reason: `handler failed ${failure.retryCount + 1} times, last: ${message}`.slice(0, 500),
    };
  return { action: 'retry', reason: `handler failed: ${message}`.slice(0, 500) };
};

/** Delay before nacking a failed batch for retry, so a failing handler does not spin: 100 ms doubling to 5 s. */
export const retryDelayMs = (retryCount: number): number =>
  backoff({ attempt: retryCount, baseMs: 100, maxMs: 5_000 });

/**
 * The hosts of a connection string, without user info or query: safe for logs and errors.
 * Throws the client's own ParseError message (which names no secret) for a malformed string.
 */
export const describeConnectionString = (connectionString: string): string => {
  const match = /^(esdb(?:\+discover)?):\/\/(?:[^@/?]*@)?([^/?]*)/.exec(connectionString.trim());
  return match ? `${match[1]}://${match[2]}` : '(unparseable connection string)';
};
