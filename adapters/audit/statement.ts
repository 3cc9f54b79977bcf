import { setTimeout as delay } from 'node:timers/promises';
import { sql, type Kysely } from 'kysely';
import { streamName } from '../../domain/ids.ts';
import type { RecordedEvent } from '../../domain/recordedEvent.ts';
import type { Database } from '../db/schema.ts';
import { canonicalEvent } from '../eventstore/canonical.ts';
import { inclusionProofs, leafOfEvent } from './auditTree.ts';
import { checkpointCovering, type Checkpointer, type CheckpointView } from './checkpoints.ts';
import { memberHistory, type LedgerLine, type MemberAsOf, type StreamReader } from './history.ts';

export const statementFormat = 'incentable.statement/v1';

/** One of the member's events with what proves it is in the log. */
export type ProvenEvent = {
  event_id: string;
  stream: string;
  revision: string;
  type: string;
  /** The exact bytes the event's hash covers (canonical.ts): its id, data, type, stream, metadata. */
  canonical: string;
  /** The hash of the event before it in its stream ("" for revision 0). */
  previous_hash: string;
  /** SHA-256 hex of previous_hash then canonical, as text: the stored chain hash. */
  hash: string;
  leaf_index: number;
  /** SHA-256(0x00 || the 32 bytes of `hash`), hex. */
  leaf_hash: string;
  /** RFC 9162 inclusion proof of the leaf in the checkpoint's tree, nearest the leaf first. */
  inclusion_proof: string[];
};

export type Statement = {
  format: typeof statementFormat;
  program_id: string;
  member_id: string;
  as_of: string;
  balance: number;
  member: MemberAsOf;
  ledger: LedgerLine[];
  checkpoint: CheckpointView;
  events: ProvenEvent[];
};

export type StatementOutcome =
  { ok: true; statement: Statement } | { ok: false; reason: 'unknown_member' | 'not_yet_in_tree' };

/** When a fact happened: its own `at`, else when it was recorded (as history.ts reads it). */
const timeOf = (event: RecordedEvent): number => {
  const at = (event.data as { at?: unknown }).at;
  return Date.parse(typeof at === 'string' ? at : event.metadata.recordedAt);
};

/** A stream up to its last event at or before the cutoff: a whole prefix, so its chain checks. */
const prefixUpTo = (events: RecordedEvent[], cutoff: number): RecordedEvent[] => {
  let last = -1;
  events.forEach((event, i) => {
    if (timeOf(event) <= cutoff) last = i;
  });
  return events.slice(0, last + 1);
};

const leafIndexes = async (
  db: Kysely<Database>,
  eventIds: string[],
): Promise<Map<string, number>> => {
  const result = await sql<{ event_id: string; leaf_index: string }>`
    select event_id::text, leaf_index::text from incentable_audit_leaves
    where event_id = any(${eventIds}::uuid[])`.execute(db);
  return new Map(result.rows.map((row) => [row.event_id, Number(row.leaf_index)]));
};

/**
 * The member's statement at `asOf`: the balance and ledger (history.ts), every event of the
 * member's and points streams up to then, each with its leaf and inclusion proof, against the
 * smallest signed checkpoint that holds them all (one is made when none does yet).
 */
export const memberStatement = async (
  deps: {
    db: Kysely<Database>;
    reader: StreamReader;
    checkpointer: Checkpointer;
    /** How long to wait for the tree to hold the member's newest events. */
    waitMs?: number;
  },
  args: { programId: string; memberId: string; asOf: Date },
): Promise<StatementOutcome> => {
  const history = await memberHistory(deps.reader, args);
  if (history === null) return { ok: false, reason: 'unknown_member' };
  const cutoff = args.asOf.getTime();
  const streams = await Promise.all(
    (['member', 'points'] as const).map((kind) =>
      deps.reader.readStream(streamName(kind, args.programId, args.memberId)),
    ),
  );
  const events = streams.flatMap((stream) => prefixUpTo(stream, cutoff));
  // Events appended a moment ago are in the tree once its subscription has handled them: wait
  // for that up to `waitMs` (READ_WAIT_TIMEOUT_MS), as a read after a write does.
  const deadline = Date.now() + (deps.waitMs ?? 0);
  let leaves = await leafIndexes(
    deps.db,
    events.map((e) => e.id),
  );
  while (events.some((e) => !leaves.has(e.id)) && Date.now() < deadline) {
    await delay(25);
    leaves = await leafIndexes(
      deps.db,
      events.map((e) => e.id),
    );
  }
  if (events.some((e) => !leaves.has(e.id))) return { ok: false, reason: 'not_yet_in_tree' };
  const needed = Math.max(0, ...leaves.values()) + 1;
  let checkpoint = await checkpointCovering(deps.db, needed);
  if (checkpoint === null) {
    await deps.checkpointer.make();
    checkpoint = await checkpointCovering(deps.db, needed);
  }
  if (checkpoint === null) return { ok: false, reason: 'not_yet_in_tree' };
  const indexes = events.map((e) => leaves.get(e.id) as number);
  const proofs = await inclusionProofs(deps.db, indexes, checkpoint.size);
  const previous = new Map<string, string>();
  const proven = events.map((event, i): ProvenEvent => {
    const previousHash = previous.get(event.streamName) ?? '';
    previous.set(event.streamName, event.hash);
    return {
      event_id: event.id,
      stream: event.streamName,
      revision: event.revision.toString(),
      type: event.type,
      canonical: canonicalEvent(event),
      previous_hash: previousHash,
      hash: event.hash,
      leaf_index: indexes[i] as number,
      leaf_hash: leafOfEvent(event.hash).toString('hex'),
      inclusion_proof: (proofs[i] ?? []).map((hash) => hash.toString('hex')),
    };
  });
  return {
    ok: true,
    statement: {
      format: statementFormat,
      program_id: args.programId,
      member_id: args.memberId,
      as_of: args.asOf.toISOString(),
      balance: history.member.balance,
      member: history.member,
      ledger: history.ledger,
      checkpoint,
      events: proven,
    },
  };
};
