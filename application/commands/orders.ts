import { order } from '../../domain/order.ts';
import { pointsAccount } from '../../domain/pointsAccount.ts';
import type { Position } from '../../domain/recordedEvent.ts';
import { reward } from '../../domain/reward.ts';
import type { CommandContext } from '../commandHandler.ts';
import { later, refused, run, streams, type CommandKit } from './kit.ts';

/**
 * The refund and the unit given back after a cancellation. Both are idempotent by order id, and
 * the policy reactor repeats them for every OrderCancelled it sees, so a crash between the steps
 * heals itself.
 */
const settleCancellation =
  (kit: CommandKit) =>
  async (programId: string, orderId: string, context: CommandContext): Promise<Position | null> => {
    const c = kit.ctx(context);
    const { state: o } = await kit.handler.load(order, streams.order(programId, orderId));
    if (!o.exists || o.status !== 'cancelled') return null;
    const refund = await kit.handler.handle(
      pointsAccount,
      streams.points(programId, o.memberId),
      {
        type: 'RefundOrder',
        data: {
          transactionId: kit.idFor('transaction', context, `refund ${orderId}`),
          orderId,
          memberId: o.memberId,
          points: o.pointsSpent,
          now: c.now,
        },
      },
      c,
    );
    const release = await kit.handler.handle(
      reward,
      streams.reward(programId, o.rewardId),
      { type: 'ReleaseStock', data: { rewardId: o.rewardId, orderId, now: c.now } },
      c,
    );
    return later(refund.ok ? refund.position : null, release.ok ? release.position : null);
  };

/** An order's life after redemption: shipped, delivered or cancelled. */
export const orderCommands = (kit: CommandKit) => {
  const settle = settleCancellation(kit);
  return {
    settleCancellation: settle,

    async shipOrder(
      programId: string,
      orderId: string,
      input: { carrier: string; trackingNumber: string },
      context: CommandContext,
    ) {
      const c = kit.ctx(context);
      return run(
        await kit.handler.handle(
          order,
          streams.order(programId, orderId),
          { type: 'ShipOrder', data: { orderId, ...input, now: c.now } },
          c,
        ),
      );
    },

    async deliverOrder(programId: string, orderId: string, context: CommandContext) {
      const c = kit.ctx(context);
      return run(
        await kit.handler.handle(
          order,
          streams.order(programId, orderId),
          { type: 'DeliverOrder', data: { orderId, now: c.now } },
          c,
        ),
      );
    },

    /** Cancelling refunds the points and gives the unit back (`settleCancellation`). */
    async cancelOrder(programId: string, orderId: string, reason: string, context: CommandContext) {
      const c = kit.ctx(context);
      const cancelled = await kit.handler.handle(
        order,
        streams.order(programId, orderId),
        { type: 'CancelOrder', data: { orderId, reason, now: c.now } },
        c,
      );
      if (!cancelled.ok) return refused<never>(cancelled);
      const followUp = await settle(programId, orderId, c);
      return {
        ok: true as const,
        value: { state: cancelled.state },
        position: later(cancelled.position, followUp),
      };
    },
  };
};
