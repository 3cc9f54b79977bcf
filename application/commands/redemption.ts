import { order } from '../../domain/order.ts';
import { pointsAccount } from '../../domain/pointsAccount.ts';
import { reward, type RewardChanges, type RewardKind } from '../../domain/reward.ts';
import type { CommandContext } from '../commandHandler.ts';
import { later, refused, run, streams, type CommandKit } from './kit.ts';

/**
 * Redemption spans three streams. Order matters: the balance is checked first (no stock is held
 * for a member who cannot pay), then a unit is reserved, then one append records the deduction
 * with the redemption, and the order is opened last. A refusal after the reservation releases
 * it; StockReserved names the order, so a unit held by a crash between steps can be found and
 * released.
 */
const redeem =
  (kit: CommandKit) =>
  async (programId: string, memberId: string, rewardId: string, context: CommandContext) => {
    const { handler } = kit;
    const guard = await kit.activeMember(programId, memberId);
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
    const orderId = kit.idFor('order', context, 'redemption order');
    const c = kit.ctx(context);
    const reserved = await handler.handle(
      reward,
      streams.reward(programId, rewardId),
      { type: 'ReserveStock', data: { rewardId, orderId, now: c.now } },
      c,
    );
    if (!reserved.ok) return refused<never>(reserved);
    const transactionId = kit.idFor('transaction', context, 'redemption');
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
  };

/** The reward catalogue, and redeeming a reward for points. */
export const redemptionCommands = (kit: CommandKit) => ({
  redeem: redeem(kit),

  async createReward(
    programId: string,
    input: { name: string; pointsCost: number; stock: number | null; kind: RewardKind },
    context: CommandContext,
  ) {
    const rewardId = kit.idFor('reward', context, 'reward');
    const c = kit.ctx(context);
    return run(
      await kit.handler.handle(
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
    const c = kit.ctx(context);
    return run(
      await kit.handler.handle(
        reward,
        streams.reward(programId, rewardId),
        { type: 'ChangeReward', data: { rewardId, changes, now: c.now } },
        c,
      ),
    );
  },
});
