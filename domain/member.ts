import { accept, reject, type Decider, type Decision, type Refusal } from './decider.ts';
import { identifierField, identifierValue, type IdentifierKind } from './memberReservation.ts';
import {
  isEmail,
  isName,
  isReason,
  isReservedKey,
  isText,
  isWellFormedText,
  isoOf,
  jsonEqual,
  lengthOf,
} from './validation.ts';

export type AttributeValue = string | number | boolean | null;
export type MemberAttributes = Record<string, AttributeValue>;

export type MemberProfile = {
  email: string;
  name: string;
  /** The member's id in the program's own system, if it has one. */
  externalId: string | null;
  attributes: MemberAttributes;
};

/**
 * Replacement values. In an UpdateMember command `attributes` is a merge patch over the member's
 * attributes (a key set to null is deleted); in a MemberUpdated event it is the whole map after
 * the patch, so folding an event never needs the state before it.
 */
export type MemberChanges = Partial<MemberProfile>;

/** The attributes after `patch` (JSON merge patch, RFC 7396, one level): null deletes a key. */
export const patchAttributes = (
  current: MemberAttributes,
  patch: MemberAttributes,
): MemberAttributes =>
  // fromEntries makes own properties whatever the key, so no key can reach a prototype.
  Object.fromEntries([
    ...Object.entries(current).filter(([key]) => !Object.hasOwn(patch, key)),
    ...Object.entries(patch).filter(([, value]) => value !== null),
  ]);

/**
 * The reservations (memberReservation.ts) a command relies on, by kind: a member takes an email
 * or external id only with the id of the value's reservation, made for it beforehand.
 */
export type MemberReservations = Partial<Record<IdentifierKind, string>>;

/**
 * An operator's tier, for what the rules cannot express: `tier` moves the member there (reason
 * "Manual override"); `lockedUntil` (ISO) holds the tier against the rules until then, null lifts
 * a hold. Lifting a hold without naming a tier puts the member in `ruleTier`, the tier the rules
 * give their points now (reason "Tier hold ended"). Undefined fields change nothing.
 */
export type TierOverride = {
  tier?: string | null;
  lockedUntil?: string | null;
  /** The program's tier names: an override names one of them (or null). */
  tierNames: readonly string[];
  ruleTier?: string | null;
};

export type MemberCommand =
  | {
      type: 'RegisterMember';
      data: MemberProfile & {
        memberId: string;
        programId: string;
        initialTier: string | null;
        reservations: MemberReservations;
        now: Date;
      };
    }
  | {
      type: 'UpdateMember';
      data: {
        memberId: string;
        changes: MemberChanges;
        reservations: MemberReservations;
        /** A tier override in the same change (one append with the profile's). */
        tier?: TierOverride;
        now: Date;
      };
    }
  | {
      type: 'ChangeTier';
      data: { memberId: string; newTier: string | null; reason: string; now: Date };
    }
  | {
      /** An operator's tier, and a hold on it: see `TierOverride`. */
      type: 'OverrideTier';
      data: TierOverride & { memberId: string; now: Date };
    }
  | { type: 'DeactivateMember'; data: { memberId: string; now: Date } }
  | { type: 'ReactivateMember'; data: { memberId: string; now: Date } }
  | {
      /**
       * Fences the member's stream before its reservation of `value` is taken over: from then on
       * the member cannot take the value with that reservation. Refused while the member holds
       * the value. The member need not exist: a registration that never happened is fenced too.
       */
      type: 'RevokeReservation';
      data: {
        memberId: string;
        kind: IdentifierKind;
        /** The value, as `identifierValue` compares it. */
        value: string;
        reservationId: string;
        now: Date;
      };
    };

export type MemberEvent =
  | {
      type: 'MemberRegistered';
      data: MemberProfile & {
        memberId: string;
        programId: string;
        tier: string | null;
        at: string;
      };
    }
  | { type: 'MemberUpdated'; data: { memberId: string; changes: MemberChanges; at: string } }
  | {
      type: 'MemberTierChanged';
      data: {
        memberId: string;
        previousTier: string | null;
        newTier: string | null;
        reason: string;
        at: string;
      };
    }
  | {
      /** The member's tier is held against the rules until `lockedUntil`; null: no longer. */
      type: 'MemberTierLocked';
      data: { memberId: string; lockedUntil: string | null; at: string };
    }
  | { type: 'MemberDeactivated'; data: { memberId: string; at: string } }
  | { type: 'MemberReactivated'; data: { memberId: string; at: string } }
  | {
      type: 'MemberReservationRevoked';
      data: { memberId: string; kind: IdentifierKind; reservationId: string; at: string };
    };

export type MemberRejection =
  | 'member_exists'
  /** The command takes an email or external id without a live reservation for it: reserve again. */
  | 'identifier_not_reserved'
  | 'member_not_found'
  | 'member_inactive'
  | 'invalid_email'
  | 'invalid_name'
  | 'invalid_external_id'
  | 'invalid_attributes'
  | 'invalid_tier'
  | 'invalid_tier_locked_until'
  | 'invalid_reason';

/** The reason of a tier change an operator made. */
export const overrideReason = 'Manual override';
/** The reason of a tier change when an override's hold is lifted or lapses. */
export const holdEndedReason = 'Tier hold ended';

/** Whether the member's tier is held against the rules at `now`. */
export const tierLocked = (state: Member, now: Date): boolean =>
  state.exists &&
  state.tierLockedUntil !== null &&
  Date.parse(state.tierLockedUntil) > now.getTime();

export type Member = (
  | { exists: false; active: false; tier: null }
  | ({
      exists: true;
      active: boolean;
      tier: string | null;
      /** Until when an override holds the tier against the rules (ISO), or null. */
      tierLockedUntil: string | null;
      memberId: string;
      programId: string;
    } & MemberProfile)
) & {
  /** Reservations revoked on this stream: commands that name them are refused. */
  revokedReservations: readonly string[];
};

export const attributeLimits = { maxKeys: 50, maxKeyLength: 100, maxStringLength: 1000 } as const;

export const initialState = (): Member => ({
  exists: false,
  active: false,
  tier: null,
  revokedReservations: [],
});

const attributesProblem = (attributes: unknown): string | null => {
  if (typeof attributes !== 'object' || attributes === null || Array.isArray(attributes)) {
    return 'attributes must be an object';
  }
  const entries = Object.entries(attributes as Record<string, unknown>);
  if (entries.length > attributeLimits.maxKeys) {
    return `at most ${attributeLimits.maxKeys} attributes`;
  }
  for (const [key, value] of entries) {
    if (!isText(key, { min: 1, max: attributeLimits.maxKeyLength })) {
      return `attribute keys are 1-${attributeLimits.maxKeyLength} characters without control characters`;
    }
    if (isReservedKey(key)) return `attribute key "${key}" is reserved`;
    if (typeof value === 'string') {
      if (!isWellFormedText(value)) return `attribute "${key}" holds NUL or an unpaired surrogate`;
      if (lengthOf(value) > attributeLimits.maxStringLength) {
        return `attribute "${key}" is longer than ${attributeLimits.maxStringLength} characters`;
      }
    } else if (typeof value === 'number') {
      if (!Number.isFinite(value)) return `attribute "${key}" is not a finite number`;
    } else if (typeof value !== 'boolean' && value !== null) {
      return `attribute "${key}" must be a string, number, boolean or null`;
    }
  }
  return null;
};

/** The refusal a profile or its changes earn before any stream is read, or null. */
export const profileRefusal = (profile: MemberChanges): Refusal<MemberRejection> | null => {
  if (profile.email !== undefined && !isEmail(profile.email)) {
    return reject('invalid_email', 'email is not an email address', 'email');
  }
  if (profile.name !== undefined && !isName(profile.name)) {
    return reject(
      'invalid_name',
      'name must be 1-200 characters without control characters',
      'name',
    );
  }
  if (
    profile.externalId !== undefined &&
    profile.externalId !== null &&
    !isText(profile.externalId, { min: 1, max: 200 })
  ) {
    return reject(
      'invalid_external_id',
      'externalId must be null or 1-200 characters without control characters',
      'external_id',
    );
  }
  if (profile.attributes !== undefined) {
    const problem = attributesProblem(profile.attributes);
    if (problem !== null) return reject('invalid_attributes', problem, 'attributes');
  }
  return null;
};

const isTier = (tier: unknown): tier is string | null => tier === null || isName(tier);

const identifierKinds = ['externalId', 'email'] as const satisfies readonly IdentifierKind[];

/**
 * The identifiers a command takes: those of `next` that differ from `current` as values compare
 * (an email in other letter case is the same value, and needs no reservation).
 */
export const takenIdentifiers = (
  current: Partial<Record<IdentifierKind, string | null>>,
  next: Partial<Record<IdentifierKind, string | null>>,
): { kind: IdentifierKind; value: string }[] =>
  identifierKinds.flatMap((kind) => {
    const value = next[kind];
    if (value === undefined || value === null) return [];
    const held = current[kind];
    if (
      held !== undefined &&
      held !== null &&
      identifierValue(kind, held) === identifierValue(kind, value)
    )
      return [];
    return [{ kind, value }];
  });

/** The identifiers `next` gives up: held in `current`, and changed or set to null. */
export const givenUpIdentifiers = (
  current: Partial<Record<IdentifierKind, string | null>>,
  next: Partial<Record<IdentifierKind, string | null>>,
): { kind: IdentifierKind; value: string }[] =>
  identifierKinds.flatMap((kind) => {
    const held = current[kind];
    const value = next[kind];
    if (held === undefined || held === null || value === undefined) return [];
    if (value !== null && identifierValue(kind, value) === identifierValue(kind, held)) return [];
    return [{ kind, value: held }];
  });

const reservationRefusal = (
  taken: readonly { kind: IdentifierKind }[],
  reservations: MemberReservations,
  revoked: readonly string[],
): Refusal<MemberRejection> | null => {
  for (const { kind } of taken) {
    const reservationId = reservations[kind];
    const field = identifierField(kind);
    if (reservationId === undefined)
      return reject(
        'identifier_not_reserved',
        `the ${field} is not reserved for the member`,
        field,
      );
    if (revoked.includes(reservationId))
      return reject('identifier_not_reserved', `the ${field}'s reservation was taken over`, field);
  }
  return null;
};

const profileKeys = [
  'email',
  'name',
  'externalId',
  'attributes',
] as const satisfies readonly (keyof MemberProfile)[];

/** The refusal a tier override earns before any stream is read, or null. */
export const tierOverrideRefusal = (
  data: TierOverride & { now: Date },
): Refusal<MemberRejection> | null => {
  const { tier, lockedUntil, tierNames, now } = data;
  if (tier !== undefined && tier !== null && !tierNames.includes(tier))
    return reject(
      'invalid_tier',
      `tier must be null or one of the program's tiers (${tierNames.join(', ') || 'none'})`,
      'tier',
    );
  if (
    lockedUntil !== undefined &&
    lockedUntil !== null &&
    !(Date.parse(lockedUntil) > now.getTime())
  )
    return reject(
      'invalid_tier_locked_until',
      'tier_locked_until must be a future date-time, or null to lift the hold',
      'tier_locked_until',
    );
  return null;
};

const overrideTier = (
  state: Extract<Member, { exists: true }>,
  data: TierOverride & { now: Date },
): Decision<MemberEvent, MemberRejection> => {
  if (!state.active) return reject('member_inactive', 'the member is deactivated', 'member_id');
  const refusal = tierOverrideRefusal(data);
  if (refusal) return refusal;
  const { tier, lockedUntil, ruleTier, now } = data;
  const at = isoOf(now);
  const events: MemberEvent[] = [];
  const moveTo = (newTier: string | null, reason: string) => {
    if (newTier !== state.tier)
      events.push({
        type: 'MemberTierChanged',
        data: { memberId: state.memberId, previousTier: state.tier, newTier, reason, at },
      });
  };
  if (tier !== undefined) moveTo(tier, overrideReason);
  if (lockedUntil !== undefined && lockedUntil !== state.tierLockedUntil)
    events.push({ type: 'MemberTierLocked', data: { memberId: state.memberId, lockedUntil, at } });
  if (
    lockedUntil === null &&
    tier === undefined &&
    ruleTier !== undefined &&
    state.tierLockedUntil !== null
  )
    moveTo(ruleTier, holdEndedReason);
  return accept(events);
};

// A decider's flat switch, one case per command: split, its cases would only be harder to
// compare with one another.
// eslint-disable-next-line max-lines-per-function
export const decide = (
  command: MemberCommand,
  state: Member,
): Decision<MemberEvent, MemberRejection> => {
  switch (command.type) {
    case 'RegisterMember': {
      if (state.exists) return reject('member_exists', 'the member already exists', 'member_id');
      const {
        memberId,
        programId,
        email,
        name,
        externalId,
        attributes,
        initialTier,
        reservations,
        now,
      } = command.data;
      const refusal = profileRefusal({ email, name, externalId, attributes });
      if (refusal) return refusal;
      if (!isTier(initialTier)) {
        return reject('invalid_tier', 'initialTier must be null or a tier name', 'initial_tier');
      }
      const unreserved = reservationRefusal(
        takenIdentifiers({}, { email, externalId }),
        reservations,
        state.revokedReservations,
      );
      if (unreserved) return unreserved;
      return accept([
        {
          type: 'MemberRegistered',
          data: {
            memberId,
            programId,
            email,
            name,
            externalId,
            attributes: { ...attributes },
            tier: initialTier,
            at: isoOf(now),
          },
        },
      ]);
    }
    case 'UpdateMember': {
      if (!state.exists) return reject('member_not_found', 'no such member', 'member_id');
      if (!state.active) return reject('member_inactive', 'the member is deactivated', 'member_id');
      const patch = command.data.changes.attributes;
      const wanted: MemberChanges =
        patch === undefined || attributesProblem(patch) !== null
          ? command.data.changes
          : { ...command.data.changes, attributes: patchAttributes(state.attributes, patch) };
      const refusal = profileRefusal(wanted);
      if (refusal) return refusal;
      const unreserved = reservationRefusal(
        takenIdentifiers(state, wanted),
        command.data.reservations,
        state.revokedReservations,
      );
      if (unreserved) return unreserved;
      const changes: Record<string, unknown> = {};
      for (const key of profileKeys) {
        const value = wanted[key];
        if (value !== undefined && !jsonEqual(value, state[key])) changes[key] = value;
      }
      const updated: MemberEvent[] =
        Object.keys(changes).length === 0
          ? []
          : [
              {
                type: 'MemberUpdated',
                data: { memberId: state.memberId, changes, at: isoOf(command.data.now) },
              },
            ];
      if (command.data.tier === undefined) return accept(updated);
      const override = overrideTier(state, { ...command.data.tier, now: command.data.now });
      return override.ok ? accept([...updated, ...override.events]) : override;
    }
    case 'ChangeTier': {
      if (!state.exists) return reject('member_not_found', 'no such member', 'member_id');
      const { newTier, reason, now } = command.data;
      if (!isTier(newTier)) {
        return reject('invalid_tier', 'newTier must be null or a tier name', 'new_tier');
      }
      if (!isReason(reason)) {
        return reject(
          'invalid_reason',
          'reason must be 1-500 characters without control characters',
          'reason',
        );
      }
      if (newTier === state.tier) return accept([]);
      // Checked here, on the state the change is appended to: a policy that read the member
      // before an override's hold was set must not move the tier it holds.
      if (tierLocked(state, now)) return accept([]);
      return accept([
        {
          type: 'MemberTierChanged',
          data: {
            memberId: state.memberId,
            previousTier: state.tier,
            newTier,
            reason,
            at: isoOf(now),
          },
        },
      ]);
    }
    case 'OverrideTier': {
      if (!state.exists) return reject('member_not_found', 'no such member', 'member_id');
      return overrideTier(state, command.data);
    }
    case 'DeactivateMember': {
      if (!state.exists) return reject('member_not_found', 'no such member', 'member_id');
      if (!state.active) return accept([]);
      return accept([
        {
          type: 'MemberDeactivated',
          data: { memberId: state.memberId, at: isoOf(command.data.now) },
        },
      ]);
    }
    case 'ReactivateMember': {
      if (!state.exists) return reject('member_not_found', 'no such member', 'member_id');
      if (state.active) return accept([]);
      return accept([
        {
          type: 'MemberReactivated',
          data: { memberId: state.memberId, at: isoOf(command.data.now) },
        },
      ]);
    }
    case 'RevokeReservation': {
      const { memberId, kind, value, reservationId, now } = command.data;
      const held = state.exists ? state[kind] : null;
      if (held !== null && identifierValue(kind, held) === value) {
        return reject(
          'member_exists',
          `the member holds this ${identifierField(kind)}`,
          identifierField(kind),
        );
      }
      if (state.revokedReservations.includes(reservationId)) return accept([]);
      return accept([
        {
          type: 'MemberReservationRevoked',
          data: { memberId, kind, reservationId, at: isoOf(now) },
        },
      ]);
    }
  }
};

export const evolve = (state: Member, event: MemberEvent): Member => {
  switch (event.type) {
    case 'MemberRegistered': {
      const { at: _at, tier, ...profile } = event.data;
      return {
        exists: true,
        active: true,
        tier,
        tierLockedUntil: null,
        ...profile,
        revokedReservations: state.revokedReservations,
      };
    }
    case 'MemberUpdated':
      return state.exists ? { ...state, ...event.data.changes } : state;
    case 'MemberTierChanged':
      return state.exists ? { ...state, tier: event.data.newTier } : state;
    case 'MemberTierLocked':
      return state.exists ? { ...state, tierLockedUntil: event.data.lockedUntil } : state;
    case 'MemberDeactivated':
      return state.exists ? { ...state, active: false } : state;
    case 'MemberReactivated':
      return state.exists ? { ...state, active: true } : state;
    case 'MemberReservationRevoked':
      return {
        ...state,
        revokedReservations: [...state.revokedReservations, event.data.reservationId],
      };
  }
};

export const member: Decider<MemberCommand, MemberEvent, Member, MemberRejection> = {
  initialState,
  decide,
  evolve,
};
