/**
 * A domain event as the event store hands it back: the fact plus where it sits in history.
 * Defined here (types only) so projections and the delivery pipeline can read events without
 * depending on any one store.
 */

/**
 * A place in the global order. On Postgres `commit` is the appending transaction's id and
 * `prepare` the row's identity; on EventStoreDB they are the commit/prepare positions of $all.
 * Compare with `comparePositions`, never field by field.
 */
export type Position = { readonly commit: bigint; readonly prepare: bigint };

export type EventMetadata = {
  programId: string | null;
  correlationId: string;
  causationId: string | null;
  /** The API key id (or `system:<role>`) that caused the event. */
  actor: string;
  /** When the event was recorded, ISO-8601 UTC, from the application clock. */
  recordedAt: string;
  /**
   * The digest of the Idempotency-Key of the request that caused the event, when it had one:
   * a retry after a crash finds in the stream itself whether its command was applied.
   */
  idempotencyKey?: string;
  /**
   * The W3C traceparent of the command's span, written only while tracing is on and the command
   * was sampled: the projector batches, envelopes and delivery attempts link to it
   * (docs/telemetry.md). Covered by the hash chain like every other field.
   */
  traceparent?: string;
};

export type RecordedEvent<
  E extends { type: string; data: unknown } = { type: string; data: unknown },
> = {
  /** Unique id (uuid) of the event, kept across copies between stores. */
  id: string;
  type: E['type'];
  data: E['data'];
  streamName: string;
  revision: bigint;
  position: Position;
  metadata: EventMetadata;
  /** sha256 hex over the previous event's hash and this event's canonical bytes. */
  hash: string;
};

export const comparePositions = (a: Position, b: Position): number =>
  a.commit === b.commit
    ? a.prepare === b.prepare
      ? 0
      : a.prepare < b.prepare
        ? -1
        : 1
    : a.commit < b.commit
      ? -1
      : 1;

/** The wire form of a position: `<commit>.<prepare>`, both decimal. */
export const formatPosition = (position: Position): string =>
  `${position.commit}.${position.prepare}`;

/**
 * The largest part a store can have written: both are 64-bit integers, `commit` unsigned
 * (PostgreSQL's xid8) and `prepare` signed (a bigint identity; EventStoreDB's positions are signed
 * 64-bit too). Twenty digits can say more, and a query that carries such a number fails.
 */
const maxCommit = 2n ** 64n - 1n;
const maxPrepare = 2n ** 63n - 1n;

/** The position `text` names, or null when it is not one a store could have returned. */
export const parsePosition = (text: string): Position | null => {
  const [, commit, prepare] = /^(\d{1,20})\.(\d{1,20})$/.exec(text) ?? [];
  if (commit === undefined || prepare === undefined) return null;
  const position = { commit: BigInt(commit), prepare: BigInt(prepare) };
  return position.commit <= maxCommit && position.prepare <= maxPrepare ? position : null;
};
