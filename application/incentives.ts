import { streamName, type IdKind } from '../domain/ids.ts';
import { leaderboard, type LeaderboardRejection } from '../domain/leaderboard.ts';
import {
  member,
  tierLocked,
  tierOverrideRefusal,
  givenUpIdentifiers,
  profileRefusal,
  takenIdentifiers,
  type MemberAttributes,
  type MemberChanges,
  type MemberRejection,
  type MemberReservations,
} from '../domain/member.ts';
import { order, type OrderRejection } from '../domain/order.ts';
import type { Period } from '../domain/periods.ts';
import {
  pointsAccount,
  type PointsAccountRejection,
  type PointsExpiryMode,
} from '../domain/pointsAccount.ts';
import {
  program,
  tierFor,
  type ProgramChanges,
  type ProgramRejection,
  type ProgramSettings,
} from '../domain/program.ts';
import {
  reward,
  type RewardChanges,
  type RewardKind,
  type RewardRejection,
} from '../domain/reward.ts';
import { tierReasons } from '../domain/policies.ts';
import type { Position } from '../domain/recordedEvent.ts';
import type { CommandContext, CommandHandler, CommandResult } from './commandHandler.ts';
import type { Clock, Ids } from './ports.ts';
import {
  memberIdentifiers,
  reservationIds,
  reservationStream,
  type MemberIdentifiersOptions,
} from './memberIdentifiers.ts';
import { reactorCaughtUp, type ReactorProgress } from './policyReactor.ts';

/** Every refusal the API can answer with; mapped to HTTP in one exhaustive table. */
export type Rejection =
  | ProgramRejection
  | MemberRejection
  | PointsAccountRejection
  | RewardRejection
  | OrderRejection
  | LeaderboardRejection
  | 'concurrency_conflict'
  /** A close must wait for the policy reactor to score the awards made before it. */
  | 'scores_pending';

export type Outcome<T> =
  | { ok: true; value: T; position: Position | null }
  | {
      ok: false;
      rejection: Rejection;
      message: string;
      field?: string;
      /** With `member_exists`: the member that has the email or external id. */
      memberId?: string;
    };

/**
 * A new entity's id: random, or derived from the request's Idempotency-Key (and what the id is
 * for), so that a retry of a command that died half-way names the same entities again.
 */
const idFor = (ids: Ids, kind: IdKind, context: CommandContext, purpose: string): string =>
  context.idempotency
    ? ids.derivedId(kind, `${context.idempotency.key}:${purpose}`)
    : ids.newId(kind);

export const streams = {
  program: (programId: string) => streamName('program', programId, programId),
  member: (programId: string, memberId: string) => streamName('member', programId, memberId),
  points: (programId: string, memberId: string) => streamName('points', programId, memberId),
  reward: (programId: string, rewardId: string) => streamName('reward', programId, rewardId),
  order: (programId: string, orderId: string) => streamName('order', programId, orderId),
  leaderboard: (programId: string, leaderboardId: string) =>
    streamName('leaderboard', programId, leaderboardId),
  /** One per program and email or external id: see memberIdentifiers.ts. */
  reservation: reservationStream,
};

const refused = <T>(result: {
  ok: false;
  rejection: Rejection;
  message: string;
  field?: string;
  memberId?: string;
}): Outcome<T> => ({
  ok: false,
  rejection: result.rejection,
  message: result.message,
  ...(result.field !== undefined && { field: result.field }),
  ...(result.memberId !== undefined && { memberId: result.memberId }),
});

/** A member command that lost its reservation to a takeover this many times gives up. */
const reservationRounds = 3;

const lostReservations = <T>(): Outcome<T> => ({
  ok: false,
  rejection: 'concurrency_conflict',
  message: `the reservations kept being taken over: gave up after ${reservationRounds} rounds`,
});

const later = (a: Position | null, b: Position | null): Position | null => {
  if (!a) return b;
  if (!b) return a;
  return a.commit > b.commit || (a.commit === b.commit && a.prepare > b.prepare) ? a : b;
};

/**
 * The application services: each API command as the sequence of stream commands it takes.
 * Single-stream commands go straight through the command handler; redemption and cancellation
 * span streams and say below how they stay consistent.
 */
export const incentives = (
  deps: {
    handler: CommandHandler;
    clock: Clock;
    ids: Ids;
    /** How far the policy reactor has got: a forced period close waits for it. */
    reactor: ReactorProgress;
    /** How long a forced close waits for the reactor before refusing with `scores_pending`. */
    reactorWaitMs: number;
    /** The member a transaction belongs to (the ledger), or null when there is none. */
    transactionOwner: (programId: string, transactionId: string) => Promise<string | null>;
  } & Pick<MemberIdentifiersOptions, 'knownHolders' | 'graceMs' | 'waitMs'>,
) => {
  const { handler, clock } = deps;
  const identifiers = memberIdentifiers(deps);
  const ctx = (context: CommandContext) => ({ ...context, now: clock.now() });
  const run = <E extends { type: string; data: unknown }, S, R extends string>(
    result: CommandResult<E, S, R>,
  ): Outcome<{ events: E[]; state: S }> =>
    result.ok
      ? {
          ok: true,
          value: { events: result.events, state: result.state },
          position: result.position,
        }
      : refused(result as never);

  const loadProgram = (programId: string) => handler.load(program, streams.program(programId));
  const loadMember = (programId: string, memberId: string) =>
    handler.load(member, streams.member(programId, memberId));
  /** Programs are never deleted: a program this process has seen exists without a read. */
  const programExists = async (programId: string): Promise<boolean> => {
    const cached = await handler.load(program, streams.program(programId), { maxAgeMs: Infinity });
    return cached.state.exists || (await loadProgram(programId)).state.exists;
  };

  /**
   * A guard, not a decision: a member state checked within the last second will do. A member
   * seen missing is read again (another process may have just registered them).
   */
  const activeMember = async (programId: string, memberId: string): Promise<Outcome<null>> => {
    let { state } = await handler.load(member, streams.member(programId, memberId), {
      maxAgeMs: 1_000,
    });
    if (!state.exists) ({ state } = await loadMember(programId, memberId));
    if (!state.exists)
      return {
        ok: false,
        rejection: 'member_not_found',
        message: `no member ${memberId} in this program`,
        field: 'member_id',
      };
    if (!state.active)
      return {
        ok: false,
        rejection: 'member_inactive',
        message: `member ${memberId} is deactivated`,
        field: 'member_id',
      };
    return { ok: true, value: null, position: null };
  };

  return {
    loadProgram,
    loadMember,
    programExists,

    async createProgram(input: ProgramSettings, context: CommandContext) {
      const programId = idFor(deps.ids, 'program', context, 'program');
      const c = ctx({ ...context, programId });
      return run(
        await handler.handle(
          program,
          streams.program(programId),
          { type: 'CreateProgram', data: { ...input, programId, now: c.now } },
          c,
        ),
      );
    },

    async updateProgram(programId: string, changes: ProgramChanges, context: CommandContext) {
      const c = ctx(context);
      return run(
        await handler.handle(
          program,
          streams.program(programId),
          { type: 'UpdateProgram', data: { programId, changes, now: c.now } },
          c,
        ),
      );
    },

    /**
     * Registration reserves the external id and the email first (memberIdentifiers.ts), then
     * registers with the reservations' ids. A reservation taken over meanwhile (its request
     * stalled past the grace) makes the member decider refuse: the request starts over, and
     * finds the member that has the value now. A refusal gives the reservations back.
     */
    async registerMember(
      programId: string,
      input: {
        email: string;
        name: string;
        externalId: string | null;
        attributes: MemberAttributes;
      },
      context: CommandContext,
    ) {
      const { state: p } = await loadProgram(programId);
      if (!p.exists)
        return refused<never>({
          ok: false,
          rejection: 'program_not_found',
          message: `no program ${programId}`,
        });
      const invalid = profileRefusal(input);
      if (invalid) return refused<never>(invalid);
      const memberId = idFor(deps.ids, 'member', context, 'member');
      const stream = streams.member(programId, memberId);
      const register = (reservations: MemberReservations) => {
        const c = ctx(context);
        return handler.handle(
          member,
          stream,
          {
            type: 'RegisterMember',
            data: {
              ...input,
              memberId,
              programId,
              initialTier: tierFor(p.tiers, 0),
              reservations,
              now: c.now,
            },
          },
          c,
        );
      };
      // A retry of a request that registered the member answers with its events (the command
      // handler finds them under the key), whatever has happened to its values since.
      if (context.idempotency?.recover && (await loadMember(programId, memberId)).state.exists)
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
    },

    /**
     * A change of email or external id reserves the new value before the change and gives the
     * old one back after it; an email in other letter case is the same value and keeps its
     * reservation. The old reservation is read before the change and released by its id, so a
     * concurrent change that took the value back (and renewed its reservation) keeps it.
     */
    async updateMember(
      programId: string,
      memberId: string,
      changes: MemberChanges,
      context: CommandContext,
      override?: { tier?: string | null; lockedUntil?: string | null },
    ) {
      const tier = override && { ...override, ...(await this.tierRules(programId, memberId)) };
      const update = (reservations: MemberReservations) => {
        const c = ctx(context);
        return handler.handle(
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
        const { state } = await loadMember(programId, memberId);
        // The decider refuses a missing or deactivated member, or an invalid change, as before.
        if (
          !state.exists ||
          !state.active ||
          profileRefusal(changes) ||
          (tier && tierOverrideRefusal({ ...tier, now: clock.now() }))
        )
          return run(await update({}));
        const wanted = takenIdentifiers(state, changes);
        const old = await identifiers.holdings(
          programId,
          memberId,
          givenUpIdentifiers(state, changes),
        );
        const reserved = await identifiers.reserve(programId, memberId, wanted, context);
        if (!reserved.ok) return refused<never>(reserved);
        const result = await update(reservationIds(reserved.held));
        if (result.ok) {
          await identifiers.release(programId, memberId, old, context);
          return run(result);
        }
        await identifiers.release(programId, memberId, reserved.held, context);
        if (result.rejection !== 'identifier_not_reserved') return refused<never>(result);
        if (round === reservationRounds) return lostReservations<never>();
      }
    },

    /**
     * Deactivation freezes the member's points (nothing expires, refunds wait) and takes them off
     * the open leaderboards (the policy reactor); reactivation undoes both and pays the refunds
     * that waited. The member stream decides; the points stream follows (`settleActivation`,
     * which the reactor repeats for every such event, so a crash between the two heals).
     */
    async deactivateMember(programId: string, memberId: string, context: CommandContext) {
      return this.setActive(programId, memberId, false, context);
    },

    async reactivateMember(programId: string, memberId: string, context: CommandContext) {
      return this.setActive(programId, memberId, true, context);
    },

    async setActive(programId: string, memberId: string, active: boolean, context: CommandContext) {
      const c = ctx(context);
      const changed = await handler.handle(
        member,
        streams.member(programId, memberId),
        active
          ? { type: 'ReactivateMember', data: { memberId, now: c.now } }
          : { type: 'DeactivateMember', data: { memberId, now: c.now } },
        c,
      );
      if (!changed.ok) return refused<never>(changed);
      const followUp = await this.settleActivation(programId, memberId, c);
      return {
        ok: true as const,
        value: { events: changed.events, state: changed.state },
        position: later(changed.position, followUp),
      };
    },

    /** Brings the points account in line with the member's activity as it is now. */
    async settleActivation(
      programId: string,
      memberId: string,
      context: CommandContext,
    ): Promise<Position | null> {
      const { state } = await loadMember(programId, memberId);
      if (!state.exists) return null;
      const c = ctx(context);
      const result = await handler.handle(
        pointsAccount,
        streams.points(programId, memberId),
        state.active
          ? {
              type: 'UnfreezePoints',
              data: {
                memberId,
                refundTransactionId: (orderId) =>
                  deps.ids.derivedId('transaction', `deferred refund:${programId}:${orderId}`),
                now: c.now,
              },
            }
          : { type: 'FreezePoints', data: { memberId, now: c.now } },
        c,
      );
      return result.ok ? result.position : null;
    },

    /**
     * Undoes one award or manual deduction: the points account decides (at most once, not below
     * zero unless allowed); tiers and leaderboard scores follow in the policy reactor. The
     * transaction's member is found through the ledger, waiting for it to show a transaction
     * just made.
     */
    async reverseTransaction(
      programId: string,
      transactionId: string,
      input: { reason: string; allowNegative: boolean },
      context: CommandContext,
    ) {
      const memberId = await deps.transactionOwner(programId, transactionId);
      if (memberId === null)
        return refused<never>({
          ok: false,
          rejection: 'transaction_not_found',
          message: `no transaction ${transactionId} in this program`,
          field: 'transaction_id',
        });
      const guard = await activeMember(programId, memberId);
      if (!guard.ok) return guard;
      const c = ctx(context);
      return run(
        await handler.handle(
          pointsAccount,
          streams.points(programId, memberId),
          {
            type: 'ReverseTransaction',
            data: {
              transactionId: idFor(deps.ids, 'transaction', context, 'reversal'),
              reversalOf: transactionId,
              memberId,
              reason: input.reason,
              allowNegative: input.allowNegative,
              now: c.now,
            },
          },
          c,
        ),
      );
    },

    /**
     * The tier the program's rules give the member's points now, and the program's tier names:
     * what a tier override is checked against and falls back to.
     */
    async tierRules(programId: string, memberId: string) {
      const [{ state: p }, { state: account }] = await Promise.all([
        loadProgram(programId),
        handler.load(pointsAccount, streams.points(programId, memberId)),
      ]);
      if (!p.exists) return { tierNames: [], ruleTier: null };
      const value = p.tierBasis === 'lifetime' ? account.lifetimePoints : account.balance;
      return { tierNames: p.tiers.map((t) => t.name), ruleTier: tierFor(p.tiers, value) };
    },

    /**
     * Puts the member in the tier the program's rules give their points now (reason "Tier rules
     * changed"): what a rule-change job runs for each member. A member whose tier an override
     * holds is left alone (the tier job applies the rules when the hold lapses); a deactivated
     * one is moved too, since tiers do not depend on activity. Nothing when the tier is right.
     */
    async applyTierRules(programId: string, memberId: string, context: CommandContext) {
      const c = ctx(context);
      const { state } = await loadMember(programId, memberId);
      if (!state.exists || tierLocked(state, c.now))
        return { ok: true as const, value: { events: [] }, position: null };
      const { ruleTier } = await this.tierRules(programId, memberId);
      if (ruleTier === state.tier)
        return { ok: true as const, value: { events: [] }, position: null };
      return run(
        await handler.handle(
          member,
          streams.member(programId, memberId),
          {
            type: 'ChangeTier',
            data: { memberId, newTier: ruleTier, reason: tierReasons.rulesChanged, now: c.now },
          },
          c,
        ),
      );
    },

    /**
     * Ends an override's hold that has lapsed, putting the member in the tier the rules give
     * them now: what the tier job runs. Nothing while the hold is on, or when there is none.
     */
    async endLapsedHold(programId: string, memberId: string, context: CommandContext) {
      const c = ctx(context);
      const { state } = await loadMember(programId, memberId);
      if (!state.exists || state.tierLockedUntil === null || tierLocked(state, c.now))
        return { ok: true as const, value: { events: [] }, position: null };
      return run(
        await handler.handle(
          member,
          streams.member(programId, memberId),
          {
            type: 'OverrideTier',
            data: {
              memberId,
              lockedUntil: null,
              ...(await this.tierRules(programId, memberId)),
              now: c.now,
            },
          },
          c,
        ),
      );
    },

    async movePoints(
      programId: string,
      memberId: string,
      input: {
        direction: 'award' | 'deduct';
        points: number;
        reason: string;
        reference: string | null;
      },
      context: CommandContext,
    ) {
      const guard = await activeMember(programId, memberId);
      if (!guard.ok) return guard;
      const c = ctx(context);
      const data = {
        transactionId: idFor(deps.ids, 'transaction', context, 'points'),
        memberId,
        points: input.points,
        reason: input.reason,
        reference: input.reference,
        now: c.now,
      };
      const command =
        input.direction === 'award'
          ? ({ type: 'AwardPoints', data } as const)
          : ({ type: 'DeductPoints', data } as const);
      return run(
        await handler.handle(pointsAccount, streams.points(programId, memberId), command, c),
      );
    },

    async createReward(
      programId: string,
      input: { name: string; pointsCost: number; stock: number | null; kind: RewardKind },
      context: CommandContext,
    ) {
      const rewardId = idFor(deps.ids, 'reward', context, 'reward');
      const c = ctx(context);
      return run(
        await handler.handle(
          reward,
          streams.reward(programId, rewardId),
          { type: 'CreateReward', data: { ...input, rewardId, now: c.now } },
          c,
        ),
      );
    },

    async changeReward(
      programId: string,
      rewardId: string,
      changes: RewardChanges,
      context: CommandContext,
    ) {
      const c = ctx(context);
      return run(
        await handler.handle(
          reward,
          streams.reward(programId, rewardId),
          { type: 'ChangeReward', data: { rewardId, changes, now: c.now } },
          c,
        ),
      );
    },

    /**
     * Redemption spans three streams. Order matters: the balance is checked first (no stock is
     * held for a member who cannot pay), then a unit is reserved, then one append records the
     * deduction with the redemption, and the order is opened last. A refusal after the
     * reservation releases it; StockReserved names the order, so a unit held by a crash between
     * steps can be found and released.
     */
    async redeem(programId: string, memberId: string, rewardId: string, context: CommandContext) {
      const guard = await activeMember(programId, memberId);
      if (!guard.ok) return guard;
      const { state: r } = await handler.load(reward, streams.reward(programId, rewardId));
      if (!r.exists)
        return refused<never>({
          ok: false,
          rejection: 'reward_not_found',
          message: `no reward ${rewardId}`,
          field: 'reward_id',
        });
      if (!r.active)
        return refused<never>({
          ok: false,
          rejection: 'reward_inactive',
          message: `reward ${rewardId} is not available`,
          field: 'reward_id',
        });
      const { state: account } = await handler.load(
        pointsAccount,
        streams.points(programId, memberId),
      );
      if (account.balance < r.pointsCost) {
        return refused<never>({
          ok: false,
          rejection: 'insufficient_points',
          message: `balance ${account.balance} is below the reward's cost ${r.pointsCost}`,
          field: 'reward_id',
        });
      }
      const orderId = idFor(deps.ids, 'order', context, 'redemption order');
      const c = ctx(context);
      const reserved = await handler.handle(
        reward,
        streams.reward(programId, rewardId),
        { type: 'ReserveStock', data: { rewardId, orderId, now: c.now } },
        c,
      );
      if (!reserved.ok) return refused<never>(reserved);
      const transactionId = idFor(deps.ids, 'transaction', context, 'redemption');
      const redeemed = await handler.handle(
        pointsAccount,
        streams.points(programId, memberId),
        {
          type: 'RedeemReward',
          data: {
            transactionId,
            orderId,
            memberId,
            rewardId,
            rewardName: r.name,
            pointsCost: r.pointsCost,
            now: c.now,
          },
        },
        c,
      );
      if (!redeemed.ok) {
        await handler.handle(
          reward,
          streams.reward(programId, rewardId),
          { type: 'ReleaseStock', data: { rewardId, orderId, now: c.now } },
          c,
        );
        return refused<never>(redeemed);
      }
      const placed = await handler.handle(
        order,
        streams.order(programId, orderId),
        {
          type: 'PlaceOrder',
          data: {
            orderId,
            memberId,
            rewardId,
            rewardName: r.name,
            kind: r.kind,
            pointsSpent: r.pointsCost,
            transactionId,
            now: c.now,
          },
        },
        c,
      );
      if (!placed.ok) return refused<never>(placed);
      return {
        ok: true as const,
        value: {
          orderId,
          transactionId,
          rewardId,
          rewardName: r.name,
          pointsSpent: r.pointsCost,
          newBalance: redeemed.state.balance,
          memberId,
        },
        position: later(redeemed.position, placed.position),
      };
    },

    async shipOrder(
      programId: string,
      orderId: string,
      input: { carrier: string; trackingNumber: string },
      context: CommandContext,
    ) {
      const c = ctx(context);
      return run(
        await handler.handle(
          order,
          streams.order(programId, orderId),
          { type: 'ShipOrder', data: { orderId, ...input, now: c.now } },
          c,
        ),
      );
    },

    async deliverOrder(programId: string, orderId: string, context: CommandContext) {
      const c = ctx(context);
      return run(
        await handler.handle(
          order,
          streams.order(programId, orderId),
          { type: 'DeliverOrder', data: { orderId, now: c.now } },
          c,
        ),
      );
    },

    /**
     * Cancelling refunds the points and gives the unit back. Both follow-ups are idempotent by
     * order id, and the policy reactor repeats them for every OrderCancelled it sees, so a crash
     * between the steps heals itself.
     */
    async cancelOrder(programId: string, orderId: string, reason: string, context: CommandContext) {
      const c = ctx(context);
      const cancelled = await handler.handle(
        order,
        streams.order(programId, orderId),
        { type: 'CancelOrder', data: { orderId, reason, now: c.now } },
        c,
      );
      if (!cancelled.ok) return refused<never>(cancelled);
      const followUp = await this.settleCancellation(programId, orderId, c);
      return {
        ok: true as const,
        value: { state: cancelled.state },
        position: later(cancelled.position, followUp),
      };
    },

    async settleCancellation(
      programId: string,
      orderId: string,
      context: CommandContext,
    ): Promise<Position | null> {
      const c = ctx(context);
      const { state: o } = await handler.load(order, streams.order(programId, orderId));
      if (!o.exists || o.status !== 'cancelled') return null;
      const refund = await handler.handle(
        pointsAccount,
        streams.points(programId, o.memberId),
        {
          type: 'RefundOrder',
          data: {
            transactionId: idFor(deps.ids, 'transaction', context, `refund ${orderId}`),
            orderId,
            memberId: o.memberId,
            points: o.pointsSpent,
            now: c.now,
          },
        },
        c,
      );
      const release = await handler.handle(
        reward,
        streams.reward(programId, o.rewardId),
        { type: 'ReleaseStock', data: { rewardId: o.rewardId, orderId, now: c.now } },
        c,
      );
      return later(refund.ok ? refund.position : null, release.ok ? release.position : null);
    },

    async createLeaderboard(
      programId: string,
      input: { name: string; period: Period; topN: number },
      context: CommandContext,
    ) {
      const { state: p } = await loadProgram(programId);
      if (!p.exists)
        return refused<never>({
          ok: false,
          rejection: 'program_not_found',
          message: `no program ${programId}`,
        });
      const leaderboardId = idFor(deps.ids, 'leaderboard', context, 'leaderboard');
      const c = ctx(context);
      return run(
        await handler.handle(
          leaderboard,
          streams.leaderboard(programId, leaderboardId),
          {
            type: 'CreateLeaderboard',
            data: {
              leaderboardId,
              name: input.name,
              period: input.period,
              timezone: p.timezone,
              topN: input.topN,
              now: c.now,
            },
          },
          c,
        ),
      );
    },

    /**
     * Ends the current period: at its natural end (`force` false: the scheduler, which waits for
     * the policy reactor itself), or now. A forced close first waits for the reactor to have
     * handled the log as it stands, so every award made before the call is on the board, and
     * takes its `now` after that wait.
     */
    async closePeriod(
      programId: string,
      leaderboardId: string,
      force: boolean,
      context: CommandContext,
    ) {
      // An unknown board is a 404 at once, not a wait for the reactor that ends in a 503.
      const { state: board } = await handler.load(
        leaderboard,
        streams.leaderboard(programId, leaderboardId),
      );
      if (!board.exists)
        return refused<never>({
          ok: false,
          rejection: 'leaderboard_not_found',
          message: 'no such leaderboard',
          field: 'leaderboard_id',
        });
      if (force && !(await reactorCaughtUp(deps.reactor, deps.reactorWaitMs)))
        return refused<never>({
          ok: false,
          rejection: 'scores_pending',
          message:
            'awards made before now are still being scored on the leaderboard; retry shortly',
        });
      const c = ctx(context);
      return run(
        await handler.handle(
          leaderboard,
          streams.leaderboard(programId, leaderboardId),
          { type: 'ClosePeriod', data: { leaderboardId, now: c.now, force } },
          c,
        ),
      );
    },

    async expirePoints(
      programId: string,
      memberId: string,
      expiry: { mode: PointsExpiryMode; days: number },
      context: CommandContext,
    ) {
      const c = ctx(context);
      return run(
        await handler.handle(
          pointsAccount,
          streams.points(programId, memberId),
          {
            type: 'ExpirePoints',
            data: {
              transactionId: idFor(deps.ids, 'transaction', context, `expiry ${memberId}`),
              memberId,
              mode: expiry.mode,
              expiryDays: expiry.days,
              now: c.now,
            },
          },
          c,
        ),
      );
    },
  };
};

export type Incentives = ReturnType<typeof incentives>;
