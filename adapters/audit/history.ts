import type { Kysely } from 'kysely';
import { streamName } from '../../domain/ids.ts';
import { member, type MemberEvent } from '../../domain/member.ts';
import { pointsAccount, type PointsAccountEvent } from '../../domain/pointsAccount.ts';
import type { RecordedEvent } from '../../domain/recordedEvent.ts';
import type { RowOf } from '../../projections/readModelColumns.ts';
import { projected, readModelRows } from '../../projections/readModelRows.ts';
import type { Database } from '../db/schema.ts';
import { PostgresEventStore } from '../eventstore/postgresEventStore.ts';
import type { DatabaseHandle } from '../db/database.ts';

/** One ledger line as of a moment: the same fields as the member's transactions endpoint. */
export type LedgerLine = Omit<RowOf<'rm_ledger'>, 'program_id' | 'member_id'> & {
  revision: string;
};

/** The member as the read model showed it at `as_of`, plus the ledger up to then. */
export type MemberAsOf = {
  id: string;
  email: string;
  name: string;
  external_id: string | null;
  attributes: Record<string, string | number | boolean | null>;
  tier: string | null;
  balance: number;
  lifetime_points: number;
  status: 'active' | 'deactivated';
  tier_locked_until: string | null;
  last_activity_at: string | null;
  created_at: string;
  updated_at: string;
  as_of: string;
};

/** What the auditors read events with: a stream reader (the event store port's readStream). */
export type StreamReader = {
  readStream: (stream: string) => Promise<RecordedEvent[]>;
};

/** A stream reader straight over the database (for the CLI and the audit routes). */
export const streamReader = (db: Kysely<Database>): StreamReader => {
  const store = new PostgresEventStore({
    db,
    kind: 'postgres',
    openSession: () => Promise.reject(new Error('the audit reader needs no session')),
    openListener: () => {
      throw new Error('the audit reader needs no listener');
    },
    queueDelayMs: () => 0,
    close: () => Promise.resolve(),
  } satisfies DatabaseHandle);
  return { readStream: (stream) => store.readStream(stream) };
};

/** When a fact happened: its own `at`, else when it was recorded. */
const timeOf = (event: RecordedEvent): number => {
  const at = (event.data as { at?: unknown }).at;
  return Date.parse(typeof at === 'string' ? at : event.metadata.recordedAt);
};

/**
 * The member's state and ledger at `asOf` (inclusive), by folding its member and points streams
 * up to that moment with the domain's own `evolve`; the read-model fields that are not decider
 * state (`created_at`, `updated_at`, `last_activity_at`) and the ledger lines are what
 * projections/readModelRows.ts writes for the same events. Null when the member had not been
 * registered by then (or does not exist in this program).
 */
export const memberHistory = async (
  reader: StreamReader,
  args: { programId: string; memberId: string; asOf: Date },
): Promise<{ member: MemberAsOf; ledger: LedgerLine[] } | null> => {
  const cutoff = args.asOf.getTime();
  const [memberEvents, pointsEvents] = await Promise.all([
    reader.readStream(streamName('member', args.programId, args.memberId)),
    reader.readStream(streamName('points', args.programId, args.memberId)),
  ]);
  const upTo = (events: RecordedEvent[]) => events.filter((e) => timeOf(e) <= cutoff);
  const memberFacts = upTo(memberEvents) as RecordedEvent<MemberEvent>[];
  const pointsFacts = upTo(pointsEvents) as RecordedEvent<PointsAccountEvent>[];

  let state = member.initialState();
  let createdAt: string | null = null;
  let updatedAt: string | null = null;
  for (const recorded of memberFacts) {
    state = member.evolve(state, { type: recorded.type, data: recorded.data } as MemberEvent);
    for (const mutation of readModelRows(projected(recorded))) {
      if (mutation.kind === 'insert' && mutation.table === 'rm_members') {
        createdAt ??= mutation.row.created_at;
        updatedAt = mutation.row.updated_at;
      }
      if (mutation.kind === 'update' && mutation.table === 'rm_members')
        updatedAt = mutation.set.updated_at ?? updatedAt;
    }
  }
  if (!state.exists || createdAt === null || state.programId !== args.programId) return null;

  let account = pointsAccount.initialState();
  let lastActivityAt: string | null = null;
  const ledger: LedgerLine[] = [];
  // Interleave by time, as the projector saw them, for updated_at.
  for (const recorded of pointsFacts) {
    account = pointsAccount.evolve(account, {
      type: recorded.type,
      data: recorded.data,
    } as PointsAccountEvent);
    for (const mutation of readModelRows(projected(recorded))) {
      if (mutation.kind === 'insert' && mutation.table === 'rm_ledger') {
        const { program_id: _program, member_id: _member, ...line } = mutation.row;
        ledger.push({ ...line, revision: recorded.revision.toString() });
      }
      if (mutation.kind !== 'update' || mutation.table !== 'rm_members') continue;
      const { last_activity_at: activeAt, updated_at: at } = mutation.set;
      if (activeAt !== undefined) lastActivityAt = activeAt;
      if (at !== undefined && (updatedAt === null || Date.parse(at) >= Date.parse(updatedAt)))
        updatedAt = at;
    }
  }
  const iso = (text: string) => new Date(text).toISOString();
  return {
    member: {
      id: state.memberId,
      email: state.email,
      name: state.name,
      external_id: state.externalId,
      attributes: state.attributes,
      tier: state.tier,
      balance: account.balance,
      lifetime_points: account.lifetimePoints,
      status: state.active ? 'active' : 'deactivated',
      tier_locked_until: state.tierLockedUntil === null ? null : iso(state.tierLockedUntil),
      last_activity_at: lastActivityAt === null ? null : iso(lastActivityAt),
      created_at: iso(createdAt),
      updated_at: iso(updatedAt ?? createdAt),
      as_of: args.asOf.toISOString(),
    },
    ledger,
  };
};

/**
 * `GET /v1/programs/{p}/members/{m}?as_of=…`: the member view at that moment, or null (answer 404).
 * Pass a reader made once (`streamReader(db)`) or the runtime's event store.
 */
export const memberAsOf = async (
  reader: StreamReader,
  programId: string,
  memberId: string,
  asOf: Date,
): Promise<MemberAsOf | null> =>
  (await memberHistory(reader, { programId, memberId, asOf }))?.member ?? null;
