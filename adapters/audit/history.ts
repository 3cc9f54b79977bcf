import type { Kysely } from 'kysely';
import type { DomainEvent } from '../../domain/events.ts';
import { streamName } from '../../domain/ids.ts';
import { member, type MemberEvent } from '../../domain/member.ts';
import {
  isMovementEvent,
  pointsAccount,
  type PointsAccountEvent,
} from '../../domain/pointsAccount.ts';
import type { RecordedEvent } from '../../domain/recordedEvent.ts';
import { isActivity, ledgerLineOf, type LedgerKind } from '../../projections/ledgerLine.ts';
import type { Database } from '../db/schema.ts';
import { PostgresEventStore } from '../eventstore/postgresEventStore.ts';
import type { DatabaseHandle } from '../db/database.ts';

/** One ledger line as of a moment: the same fields as the member's transactions endpoint. */
export type LedgerLine = {
  event_id: string;
  transaction_id: string;
  kind: LedgerKind;
  points: number;
  reason: string;
  reference: string | null;
  balance_after: number;
  occurred_at: string;
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
 * state (`updated_at`, `last_activity_at`) follow projections/readModels.ts. Null when the member
 * had not been registered by then (or does not exist in this program).
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
    const event = { type: recorded.type, data: recorded.data } as MemberEvent;
    state = member.evolve(state, event);
    if (event.type === 'MemberRegistered') createdAt ??= event.data.at;
    // A revoked reservation changes nothing the member view shows (the read model skips it).
    if (event.type !== 'MemberReservationRevoked') updatedAt = event.data.at;
  }
  if (!state.exists || createdAt === null || state.programId !== args.programId) return null;

  let account = pointsAccount.initialState();
  let lastActivityAt: string | null = null;
  const ledger: LedgerLine[] = [];
  // Interleave by time, as the projector saw them, for updated_at.
  for (const recorded of pointsFacts) {
    const event = { type: recorded.type, data: recorded.data } as PointsAccountEvent & DomainEvent;
    account = pointsAccount.evolve(account, event);
    // Freezing and deferred refunds move no points: the read models show nothing of them.
    if (!isMovementEvent(event)) continue;
    if (event.type === 'RewardRedeemed') {
      lastActivityAt = event.data.at;
      continue;
    }
    const d = event.data;
    if (isActivity(event)) lastActivityAt = d.at;
    if (updatedAt === null || Date.parse(d.at) >= Date.parse(updatedAt)) updatedAt = d.at;
    ledger.push({
      event_id: recorded.id,
      transaction_id: d.transactionId,
      ...ledgerLineOf(event),
      reason: d.reason,
      balance_after: d.newBalance,
      occurred_at: d.at,
      revision: recorded.revision.toString(),
    });
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
