import { accept, reject, type Decider, type Decision } from './decider.ts';
import { isoOf } from './validation.ts';

/**
 * Within a program a member's email and external id belong to one member only (issue 14). Each
 * value has a reservation stream of its own, and the member that holds its reservation may carry
 * the value: the event store's optimistic concurrency, not a lookup in a lagging read model,
 * decides between two requests that want one value.
 *
 * A reservation is named by an id that arrives in the command. The member decider takes a value
 * only with the id of its reservation, and refuses one that was revoked, which is how a
 * reservation is taken from a member that never came to be (see `RevokeReservation` in
 * member.ts): the taker fences the member's stream first, so a registration that stalled cannot
 * land after its value moved on.
 */
export type IdentifierKind = 'email' | 'externalId';

/** The form in which values are compared: emails without letter case, external ids exactly. */
export const identifierValue = (kind: IdentifierKind, value: string): string =>
  kind === 'email' ? value.toLowerCase() : value;

/** The wire name of the field, for refusals. */
export const identifierField = (kind: IdentifierKind): string =>
  kind === 'email' ? 'email' : 'external_id';

export type ReservationCommand =
  | {
      type: 'ReserveIdentifier';
      data: {
        kind: IdentifierKind;
        memberId: string;
        reservationId: string;
        /**
         * The reservation this one may take over although another member holds it: set only
         * once that member's stream carries its revocation. Null: only a free value, or one the
         * member holds already, is reserved.
         */
        replacing: string | null;
        now: Date;
      };
    }
  | {
      type: 'ReleaseIdentifier';
      data: { kind: IdentifierKind; memberId: string; reservationId: string; now: Date };
    };

export type ReservationEvent =
  | {
      type: 'IdentifierReserved';
      data: {
        kind: IdentifierKind;
        memberId: string;
        reservationId: string;
        /** The reservation this one ended: renewed by its member, or taken over. */
        replaces: string | null;
        at: string;
      };
    }
  | {
      type: 'IdentifierReleased';
      data: { kind: IdentifierKind; memberId: string; reservationId: string; at: string };
    };

export type ReservationRejection = 'member_exists';

export type Reservation =
  { held: false } | { held: true; memberId: string; reservationId: string; reservedAt: string };

export const initialState = (): Reservation => ({ held: false });

export const decide = (
  command: ReservationCommand,
  state: Reservation,
): Decision<ReservationEvent, ReservationRejection> => {
  switch (command.type) {
    case 'ReserveIdentifier': {
      const { kind, memberId, reservationId, replacing, now } = command.data;
      if (state.held && state.reservationId === reservationId) return accept([]);
      // The holder itself reserves again: a new reservation, so that a release of the old one
      // that a concurrent change of the same member still has to make finds nothing to release.
      const mayTake =
        !state.held || state.memberId === memberId || state.reservationId === replacing;
      if (!mayTake) {
        return reject(
          'member_exists',
          `another member holds this ${identifierField(kind)}`,
          identifierField(kind),
        );
      }
      return accept([
        {
          type: 'IdentifierReserved',
          data: {
            kind,
            memberId,
            reservationId,
            replaces: state.held ? state.reservationId : null,
            at: isoOf(now),
          },
        },
      ]);
    }
    case 'ReleaseIdentifier': {
      const { kind, memberId, reservationId, now } = command.data;
      // Only the reservation it names: one renewed or taken over since stays.
      if (!state.held || state.memberId !== memberId || state.reservationId !== reservationId)
        return accept([]);
      return accept([
        {
          type: 'IdentifierReleased',
          data: { kind, memberId, reservationId, at: isoOf(now) },
        },
      ]);
    }
  }
};

export const evolve = (_state: Reservation, event: ReservationEvent): Reservation => {
  switch (event.type) {
    case 'IdentifierReserved': {
      const { memberId, reservationId, at } = event.data;
      return { held: true, memberId, reservationId, reservedAt: at };
    }
    case 'IdentifierReleased':
      return { held: false };
  }
};

export const memberReservation: Decider<
  ReservationCommand,
  ReservationEvent,
  Reservation,
  ReservationRejection
> = { initialState, decide, evolve };
