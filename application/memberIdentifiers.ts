import { createHash } from 'node:crypto';
import { streamName } from '../domain/ids.ts';
import { member, type Member, type MemberReservations } from '../domain/member.ts';
import {
  identifierField,
  identifierValue,
  memberReservation,
  type IdentifierKind,
} from '../domain/memberReservation.ts';
import type { CommandContext, CommandHandler } from './commandHandler.ts';
import type { Clock, Ids } from './ports.ts';

/**
 * The reservation stream of one value: `reservation-<programId>-email_<sha256 hex>` or
 * `…-external_id_<sha256 hex>`, of the value as it is compared (an email lower-cased). The digest
 * keeps the address out of the stream name and every name the same length.
 */
export const reservationStream = (
  programId: string,
  kind: IdentifierKind,
  value: string,
): string => {
  const digest = createHash('sha256').update(identifierValue(kind, value)).digest('hex');
  return streamName('reservation', programId, `${identifierField(kind)}_${digest}`);
};

export type Identifier = { kind: IdentifierKind; value: string };
export type Held = Identifier & { reservationId: string };

/** The value is another member's: `memberId` names them (the 409's `member_id`). */
export type IdentifierTaken = {
  ok: false;
  rejection: 'member_exists';
  message: string;
  field: string;
  memberId: string;
};
export type IdentifierBusy = {
  ok: false;
  rejection: 'concurrency_conflict';
  message: string;
  field?: string;
};

export type MemberIdentifiersOptions = {
  handler: CommandHandler;
  clock: Clock;
  ids: Ids;
  /**
   * Members the read model shows with this value, oldest first. Members registered before
   * reservations existed have none: a value whose reservation stream does not exist yet is
   * looked up here, and one that a member's own stream confirms is reserved for that member
   * first. The read model only suggests; the member's stream decides.
   */
  knownHolders: (programId: string, kind: IdentifierKind, value: string) => Promise<string[]>;
  /**
   * How old (on the application clock) a reservation whose member does not carry the value must
   * be before another member may take it over: its request is presumed dead. Default 10 s.
   */
  graceMs?: number;
  /** How long a request waits for another one that holds its value to finish. Default 5 s. */
  waitMs?: number;
};

const holds = (state: Member, kind: IdentifierKind, value: string): boolean => {
  if (!state.exists) return false;
  const held = state[kind];
  return held !== null && identifierValue(kind, held) === identifierValue(kind, value);
};

export const reservationIds = (held: readonly Held[]): MemberReservations =>
  Object.fromEntries(held.map((h) => [h.kind, h.reservationId]));

/**
 * Reserving emails and external ids for members (domain/memberReservation.ts).
 *
 * A value is reserved by appending to its stream: with "no stream" the first time, at the
 * stream's revision afterwards, so of two requests in any processes one wins and the other reads
 * the winner. A reservation held by another member is
 * - that member's, when its stream carries the value: the request is refused with its id;
 * - in flight, when the member does not carry it yet and the reservation is younger than the
 *   grace: the request waits for it (up to `waitMs`), then answers with the member or retries;
 * - abandoned otherwise (its request died between reserving and appending to the member, or
 *   before releasing an old value): it is taken over in two appends, each at the revision it
 *   read. First the holder's member stream gets `MemberReservationRevoked` (refused if the member
 *   carries the value by now), so a registration or change that stalled past the grace can no
 *   longer land with that reservation; then the value's stream gets the new reservation, which
 *   names the one it replaces, so two takers cannot both win.
 */
export const memberIdentifiers = (options: MemberIdentifiersOptions) => {
  const steps: ReservationSteps = {
    handler: options.handler,
    clock: options.clock,
    ids: options.ids,
    knownHolders: options.knownHolders,
    graceMs: options.graceMs ?? 10_000,
    waitMs: options.waitMs ?? 5_000,
  };

  /** Gives back the reservations named (those renewed or taken over since stay). */
  const release = async (
    programId: string,
    memberId: string,
    held: readonly Held[],
    context: CommandContext,
  ): Promise<void> => {
    for (const { kind, value, reservationId } of held) {
      const c = stepContext(steps.clock, context);
      await steps.handler.handle(
        memberReservation,
        reservationStream(programId, kind, value),
        { type: 'ReleaseIdentifier', data: { kind, memberId, reservationId, now: c.now } },
        c,
      );
    }
  };

  return {
    /**
     * Reserves every value for the member, in the order given (external id first: a CRM's retry
     * differs from its first attempt in nothing, and the external id is what it keys on). On a
     * refusal the values reserved so far are given back.
     */
    async reserve(
      programId: string,
      memberId: string,
      identifiers: readonly Identifier[],
      context: CommandContext,
    ): Promise<{ ok: true; held: Held[] } | IdentifierTaken | IdentifierBusy> {
      const held: Held[] = [];
      for (const identifier of identifiers) {
        const one = await reserveOne(steps, { programId, memberId, identifier, context });
        if (!one.ok) {
          await release(programId, memberId, held, context);
          return one;
        }
        held.push(one.held);
      }
      return { ok: true, held };
    },

    release,

    /** The reservations the member holds now for these values (none for a member from before). */
    async holdings(
      programId: string,
      memberId: string,
      identifiers: readonly Identifier[],
    ): Promise<Held[]> {
      const held: Held[] = [];
      for (const identifier of identifiers) {
        const stream = reservationStream(programId, identifier.kind, identifier.value);
        const { state } = await steps.handler.load(memberReservation, stream);
        if (state.held && state.memberId === memberId)
          held.push({ ...identifier, reservationId: state.reservationId });
      }
      return held;
    },
  };
};

export type MemberIdentifiers = ReturnType<typeof memberIdentifiers>;

/** What every reservation step uses: the options, with their defaults. */
type ReservationSteps = Omit<MemberIdentifiersOptions, 'graceMs' | 'waitMs'> & {
  graceMs: number;
  waitMs: number;
};

/** One value to reserve for one member, in the request of `context`. */
type ReservationRequest = {
  programId: string;
  memberId: string;
  identifier: Identifier;
  context: CommandContext;
};

const memberStream = (programId: string, memberId: string) =>
  streamName('member', programId, memberId);

/** Reservation steps never run in recovery mode: reserving again is safe, and needs no key. */
const stepContext = (clock: Clock, context: CommandContext) => {
  const { idempotency, ...rest } = context;
  return {
    ...rest,
    ...(idempotency && { idempotency: { key: idempotency.key, recover: false } }),
    now: clock.now(),
  };
};

const reserveOne = async (
  steps: ReservationSteps,
  request: ReservationRequest,
): Promise<{ ok: true; held: Held } | IdentifierTaken | IdentifierBusy> => {
  const { handler, clock, ids, graceMs, waitMs } = steps;
  const { programId, memberId, identifier, context } = request;
  const { kind, value } = identifier;
  const field = identifierField(kind);
  const stream = reservationStream(programId, kind, value);
  const taken = (holder: string): IdentifierTaken => ({
    ok: false,
    rejection: 'member_exists',
    message: `member ${holder} has this ${field} in this program`,
    field,
    memberId: holder,
  });
  const busy: IdentifierBusy = {
    ok: false,
    rejection: 'concurrency_conflict',
    message: `another request is registering or changing a member with this ${field}; retry in a moment`,
    field,
  };
  const waitUntil = performance.now() + waitMs;
  for (let pauseMs = 5; ; pauseMs = Math.min(pauseMs * 2, 100)) {
    const { state, revision } = await handler.load(memberReservation, stream);
    let replacing: string | null = null;
    if (state.held && state.memberId !== memberId) {
      const holder = memberStream(programId, state.memberId);
      if (holds((await handler.load(member, holder)).state, kind, value))
        return taken(state.memberId);
      if (clock.now().getTime() - Date.parse(state.reservedAt) < graceMs) {
        if (performance.now() >= waitUntil) return busy;
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
        continue;
      }
      const c = stepContext(clock, context);
      const revoked = await handler.handle(
        member,
        holder,
        {
          type: 'RevokeReservation',
          data: {
            memberId: state.memberId,
            kind,
            value: identifierValue(kind, value),
            reservationId: state.reservationId,
            now: c.now,
          },
        },
        c,
      );
      if (!revoked.ok) return revoked.rejection === 'member_exists' ? taken(state.memberId) : busy;
      replacing = state.reservationId;
    } else if (revision === -1n && (await adoptKnownHolder(steps, request))) continue;
    const c = stepContext(clock, context);
    const reservationId = ids.newId('reservation');
    const reserved = await handler.handle(
      memberReservation,
      stream,
      {
        type: 'ReserveIdentifier',
        data: { kind, memberId, reservationId, replacing, now: c.now },
      },
      c,
    );
    if (reserved.ok) return { ok: true, held: { kind, value, reservationId } };
    if (reserved.rejection === 'concurrency_conflict') return busy;
    // Another request reserved it between the read and the append: read who.
  }
};

/**
 * Members registered before reservations existed: the first request for such a value reserves
 * it for the member that carries it. True when it reserved (the caller reads the stream again).
 */
const adoptKnownHolder = async (
  steps: ReservationSteps,
  request: ReservationRequest,
): Promise<boolean> => {
  const { handler, clock, ids, knownHolders } = steps;
  const { programId, memberId, identifier, context } = request;
  const { kind, value } = identifier;
  for (const candidate of await knownHolders(programId, kind, value)) {
    if (candidate === memberId) continue;
    const { state } = await handler.load(member, memberStream(programId, candidate));
    if (!holds(state, kind, value)) continue;
    const c = stepContext(clock, context);
    await handler.handle(
      memberReservation,
      reservationStream(programId, kind, value),
      {
        type: 'ReserveIdentifier',
        data: {
          kind,
          memberId: candidate,
          reservationId: ids.newId('reservation'),
          replacing: null,
          now: c.now,
        },
      },
      c,
    );
    return true;
  }
  return false;
};
