import {
  givenUpIdentifiers,
  member,
  profileRefusal,
  takenIdentifiers,
  tierLocked,
  tierOverrideRefusal,
  type MemberAttributes,
  type MemberChanges,
  type MemberReservations,
} from '../../domain/member.ts';
import { pointsAccount } from '../../domain/pointsAccount.ts';
import { tierReasons } from '../../domain/policies.ts';
import { tierFor } from '../../domain/program.ts';
import type { Position } from '../../domain/recordedEvent.ts';
import type { CommandContext } from '../commandHandler.ts';
import { reservationIds, type MemberIdentifiers } from '../memberIdentifiers.ts';
import {
  later,
  lostReservations,
  refused,
  reservationRounds,
  run,
  streams,
  unchanged,
  type CommandKit,
} from './kit.ts';

/** A tier set by hand: `tier` null gives the member back to the rules; a hold may end it. */
export type TierOverride = { tier?: string | null; lockedUntil?: string | null };

/** A member's profile changes, and optionally a tier override applied with them. */
export type MemberUpdate = MemberChanges & { override?: TierOverride };

type MemberDeps = { kit: CommandKit; identifiers: MemberIdentifiers };

/**
 * The tier the program's rules give the member's points now, and the program's tier names: what
 * a tier override is checked against and falls back to.
 */
const tierRules =
  ({ kit }: MemberDeps) =>
  async (programId: string, memberId: string) => {
    const [{ state: p }, { state: account }] = await Promise.all([
      kit.loadProgram(programId),
      kit.handler.load(pointsAccount, streams.points(programId, memberId)),
    ]);
    if (!p.exists) return { tierNames: [], ruleTier: null };
    const value = p.tierBasis === 'lifetime' ? account.lifetimePoints : account.balance;
    return { tierNames: p.tiers.map((t) => t.name), ruleTier: tierFor(p.tiers, value) };
  };

/**
 * Registration reserves the external id and the email first (memberIdentifiers.ts), then
 * registers with the reservations' ids. A reservation taken over meanwhile (its request stalled
 * past the grace) makes the member decider refuse: the request starts over, and finds the member
 * that has the value now. A refusal gives the reservations back.
 */
const registerMember =
  ({ kit, identifiers }: MemberDeps) =>
  async (
    programId: string,
    input: { email: string; name: string; externalId: string | null; attributes: MemberAttributes },
    context: CommandContext,
  ) => {
    const found = await kit.existingProgram(programId);
    if (!found.ok) return found.refusal;
    const invalid = profileRefusal(input);
    if (invalid) return refused<never>(invalid);
    const memberId = kit.idFor('member', context, 'member');
    const register = (reservations: MemberReservations) => {
      const c = kit.ctx(context);
      return kit.handler.handle(
        member,
        streams.member(programId, memberId),
        {
          type: 'RegisterMember',
          data: {
            ...input,
            memberId,
            programId,
            initialTier: tierFor(found.state.tiers, 0),
            reservations,
            now: c.now,
          },
        },
        c,
      );
    };
    // A retry of a request that registered the member answers with its events (the command
    // handler finds them under the key), whatever has happened to its values since.
    if (context.idempotency?.recover && (await kit.loadMember(programId, memberId)).state.exists)
      return run(await register({}));
    const wanted = takenIdentifiers({}, { email: input.email, externalId: input.externalId });
    for (let round = 1; ; round++) {
      const reserved = await identifiers.reserve(programId, memberId, wanted, context);
      if (!reserved.ok) return refused<never>(reserved);
      const result = await register(reservationIds(reserved.held));
      if (result.ok) return run(result);
      // `member_exists`: this id is registered already, and the reservations are its own.
      if (result.rejection === 'member_exists') return refused<never>({ ...result, memberId });
      await identifiers.release(programId, memberId, reserved.held, context);
      if (result.rejection !== 'identifier_not_reserved') return refused<never>(result);
      if (round === reservationRounds) return lostReservations<never>();
    }
  };

/**
 * A change of email or external id reserves the new value before the change and gives the old
 * one back after it; an email in other letter case is the same value and keeps its reservation.
 * The old reservation is read before the change and released by its id, so a concurrent change
 * that took the value back (and renewed its reservation) keeps it.
 */
const updateMember =
  (deps: MemberDeps) =>
  async (programId: string, memberId: string, update: MemberUpdate, context: CommandContext) => {
    const { kit, identifiers } = deps;
    const { override, ...changes } = update;
    const tier = override && { ...override, ...(await tierRules(deps)(programId, memberId)) };
    const apply = (reservations: MemberReservations) => {
      const c = kit.ctx(context);
      return kit.handler.handle(
        member,
        streams.member(programId, memberId),
        {
          type: 'UpdateMember',
          data: { memberId, changes, reservations, ...(tier && { tier }), now: c.now },
        },
        c,
      );
    };
    for (let round = 1; ; round++) {
      const { state } = await kit.loadMember(programId, memberId);
      // The decider refuses a missing or deactivated member, or an invalid change, as before.
      if (
        !state.exists ||
        !state.active ||
        profileRefusal(changes) ||
        (tier && tierOverrideRefusal({ ...tier, now: kit.clock.now() }))
      )
        return run(await apply({}));
      const wanted = takenIdentifiers(state, changes);
      const old = await identifiers.holdings(
        programId,
        memberId,
        givenUpIdentifiers(state, changes),
      );
      const reserved = await identifiers.reserve(programId, memberId, wanted, context);
      if (!reserved.ok) return refused<never>(reserved);
      const result = await apply(reservationIds(reserved.held));
      if (result.ok) {
        await identifiers.release(programId, memberId, old, context);
        return run(result);
      }
      await identifiers.release(programId, memberId, reserved.held, context);
      if (result.rejection !== 'identifier_not_reserved') return refused<never>(result);
      if (round === reservationRounds) return lostReservations<never>();
    }
  };

/** Brings the points account in line with the member's activity as it is now. */
const settleActivation =
  ({ kit }: MemberDeps) =>
  async (
    programId: string,
    memberId: string,
    context: CommandContext,
  ): Promise<Position | null> => {
    const { state } = await kit.loadMember(programId, memberId);
    if (!state.exists) return null;
    const c = kit.ctx(context);
    const result = await kit.handler.handle(
      pointsAccount,
      streams.points(programId, memberId),
      state.active
        ? {
            type: 'UnfreezePoints',
            data: {
              memberId,
              refundTransactionId: (orderId) =>
                kit.ids.derivedId('transaction', `deferred refund:${programId}:${orderId}`),
              now: c.now,
            },
          }
        : { type: 'FreezePoints', data: { memberId, now: c.now } },
      c,
    );
    return result.ok ? result.position : null;
  };

/**
 * Deactivation freezes the member's points (nothing expires, refunds wait) and takes them off
 * the open leaderboards (the policy reactor); reactivation undoes both and pays the refunds that
 * waited. The member stream decides; the points stream follows (`settleActivation`, which the
 * reactor repeats for every such event, so a crash between the two heals).
 */
const setActive =
  (deps: MemberDeps) =>
  async (programId: string, memberId: string, active: boolean, context: CommandContext) => {
    const c = deps.kit.ctx(context);
    const changed = await deps.kit.handler.handle(
      member,
      streams.member(programId, memberId),
      active
        ? { type: 'ReactivateMember', data: { memberId, now: c.now } }
        : { type: 'DeactivateMember', data: { memberId, now: c.now } },
      c,
    );
    if (!changed.ok) return refused<never>(changed);
    const followUp = await settleActivation(deps)(programId, memberId, c);
    return {
      ok: true as const,
      value: { events: changed.events, state: changed.state },
      position: later(changed.position, followUp),
    };
  };

/**
 * Puts the member in the tier the program's rules give their points now (reason "Tier rules
 * changed"): what a rule-change job runs for each member. A member whose tier an override holds
 * is left alone (the tier job applies the rules when the hold lapses); a deactivated one is moved
 * too, since tiers do not depend on activity. Nothing when the tier is right.
 */
const applyTierRules =
  (deps: MemberDeps) => async (programId: string, memberId: string, context: CommandContext) => {
    const { kit } = deps;
    const c = kit.ctx(context);
    const { state } = await kit.loadMember(programId, memberId);
    if (!state.exists || tierLocked(state, c.now)) return unchanged();
    const { ruleTier } = await tierRules(deps)(programId, memberId);
    if (ruleTier === state.tier) return unchanged();
    return run(
      await kit.handler.handle(
        member,
        streams.member(programId, memberId),
        {
          type: 'ChangeTier',
          data: { memberId, newTier: ruleTier, reason: tierReasons.rulesChanged, now: c.now },
        },
        c,
      ),
    );
  };

/**
 * Ends an override's hold that has lapsed, putting the member in the tier the rules give them
 * now: what the tier job runs. Nothing while the hold is on, or when there is none.
 */
const endLapsedHold =
  (deps: MemberDeps) => async (programId: string, memberId: string, context: CommandContext) => {
    const { kit } = deps;
    const c = kit.ctx(context);
    const { state } = await kit.loadMember(programId, memberId);
    if (!state.exists || state.tierLockedUntil === null || tierLocked(state, c.now))
      return unchanged();
    return run(
      await kit.handler.handle(
        member,
        streams.member(programId, memberId),
        {
          type: 'OverrideTier',
          data: {
            memberId,
            lockedUntil: null,
            ...(await tierRules(deps)(programId, memberId)),
            now: c.now,
          },
        },
        c,
      ),
    );
  };

/** Members: registration, profile and tier changes, activation, and the tier rules' moves. */
export const memberCommands = (kit: CommandKit, identifiers: MemberIdentifiers) => {
  const deps = { kit, identifiers };
  const activate = setActive(deps);
  return {
    loadMember: kit.loadMember,
    registerMember: registerMember(deps),
    updateMember: updateMember(deps),
    deactivateMember: (programId: string, memberId: string, context: CommandContext) =>
      activate(programId, memberId, false, context),
    reactivateMember: (programId: string, memberId: string, context: CommandContext) =>
      activate(programId, memberId, true, context),
    settleActivation: settleActivation(deps),
    tierRules: tierRules(deps),
    applyTierRules: applyTierRules(deps),
    endLapsedHold: endLapsedHold(deps),
  };
};
