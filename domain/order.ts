import { accept, reject, type Decider, type Decision } from './decider.ts';
import type { RewardKind } from './reward.ts';
import { isName, isPoints, isReason, isText, isoOf } from './validation.ts';

export type OrderCommand =
  | {
      type: 'PlaceOrder';
      data: {
        orderId: string;
        memberId: string;
        rewardId: string;
        rewardName: string;
        kind: RewardKind;
        pointsSpent: number;
        /** The points transaction that paid for it. */
        transactionId: string;
        now: Date;
      };
    }
  | {
      type: 'ShipOrder';
      data: { orderId: string; carrier: string; trackingNumber: string; now: Date };
    }
  | { type: 'DeliverOrder'; data: { orderId: string; now: Date } }
  | { type: 'CancelOrder'; data: { orderId: string; reason: string; now: Date } };

export type OrderEvent =
  | {
      type: 'OrderPlaced';
      data: {
        orderId: string;
        memberId: string;
        rewardId: string;
        rewardName: string;
        kind: RewardKind;
        pointsSpent: number;
        transactionId: string;
        at: string;
      };
    }
  | {
      type: 'OrderShipped';
      data: {
        orderId: string;
        memberId: string;
        rewardId: string;
        carrier: string;
        trackingNumber: string;
        at: string;
      };
    }
  | {
      type: 'OrderDelivered';
      data: { orderId: string; memberId: string; rewardId: string; at: string };
    }
  | {
      type: 'OrderCancelled';
      data: {
        orderId: string;
        memberId: string;
        rewardId: string;
        pointsSpent: number;
        reason: string;
        at: string;
      };
    };

export type OrderRejection =
  | 'order_exists'
  | 'order_not_found'
  | 'digital_order_not_shippable'
  | 'order_not_shipped'
  | 'order_already_shipped'
  | 'order_already_delivered'
  | 'order_cancelled'
  | 'invalid_carrier'
  | 'invalid_tracking_number'
  | 'invalid_reason'
  | 'invalid_name'
  | 'invalid_kind'
  | 'invalid_points';

/** redeemed -> shipped -> delivered for physical goods; digital goes redeemed -> delivered. */
export type OrderStatus = 'redeemed' | 'shipped' | 'delivered' | 'cancelled';

export type Order =
  | { exists: false }
  | {
      exists: true;
      status: OrderStatus;
      orderId: string;
      memberId: string;
      rewardId: string;
      kind: RewardKind;
      pointsSpent: number;
    };

export const initialState = (): Order => ({ exists: false });

const notFound = () => reject<OrderRejection>('order_not_found', 'no such order', 'order_id');

export const decide = (
  command: OrderCommand,
  state: Order,
): Decision<OrderEvent, OrderRejection> => {
  switch (command.type) {
    case 'PlaceOrder': {
      if (state.exists) return reject('order_exists', 'the order already exists', 'order_id');
      const { now, ...placed } = command.data;
      if (!isName(placed.rewardName)) {
        return reject(
          'invalid_name',
          'rewardName must be 1-200 characters without control characters',
          'reward_name',
        );
      }
      if (placed.kind !== 'physical' && placed.kind !== 'digital') {
        return reject('invalid_kind', 'kind is physical or digital', 'kind');
      }
      if (!isPoints(placed.pointsSpent)) {
        return reject(
          'invalid_points',
          'pointsSpent must be a positive integer no larger than 1000000000',
          'points_spent',
        );
      }
      return accept([{ type: 'OrderPlaced', data: { ...placed, at: isoOf(now) } }]);
    }
    case 'ShipOrder': {
      if (!state.exists) return notFound();
      if (state.status === 'cancelled')
        return reject('order_cancelled', 'the order is cancelled', 'order_id');
      if (state.status === 'delivered') {
        return reject('order_already_delivered', 'the order is already delivered', 'order_id');
      }
      if (state.status === 'shipped') {
        return reject('order_already_shipped', 'the order is already shipped', 'order_id');
      }
      if (state.kind === 'digital') {
        return reject('digital_order_not_shippable', 'a digital reward is not shipped', 'order_id');
      }
      const { carrier, trackingNumber, now } = command.data;
      if (!isText(carrier, { min: 1, max: 100 })) {
        return reject(
          'invalid_carrier',
          'carrier must be 1-100 characters without control characters',
          'carrier',
        );
      }
      if (!isText(trackingNumber, { min: 1, max: 100 })) {
        return reject(
          'invalid_tracking_number',
          'trackingNumber must be 1-100 characters without control characters',
          'tracking_number',
        );
      }
      const { orderId, memberId, rewardId } = state;
      return accept([
        {
          type: 'OrderShipped',
          data: { orderId, memberId, rewardId, carrier, trackingNumber, at: isoOf(now) },
        },
      ]);
    }
    case 'DeliverOrder': {
      if (!state.exists) return notFound();
      if (state.status === 'cancelled')
        return reject('order_cancelled', 'the order is cancelled', 'order_id');
      if (state.status === 'delivered') {
        return reject('order_already_delivered', 'the order is already delivered', 'order_id');
      }
      if (state.kind === 'physical' && state.status === 'redeemed') {
        return reject(
          'order_not_shipped',
          'a physical order is shipped before it is delivered',
          'order_id',
        );
      }
      const { orderId, memberId, rewardId } = state;
      return accept([
        {
          type: 'OrderDelivered',
          data: { orderId, memberId, rewardId, at: isoOf(command.data.now) },
        },
      ]);
    }
    case 'CancelOrder': {
      if (!state.exists) return notFound();
      if (state.status === 'cancelled')
        return reject('order_cancelled', 'the order is cancelled', 'order_id');
      if (state.status === 'delivered') {
        return reject(
          'order_already_delivered',
          'a delivered order cannot be cancelled',
          'order_id',
        );
      }
      const { reason, now } = command.data;
      if (!isReason(reason)) {
        return reject(
          'invalid_reason',
          'reason must be 1-500 characters without control characters',
          'reason',
        );
      }
      const { orderId, memberId, rewardId, pointsSpent } = state;
      return accept([
        {
          type: 'OrderCancelled',
          data: { orderId, memberId, rewardId, pointsSpent, reason, at: isoOf(now) },
        },
      ]);
    }
  }
};

export const evolve = (state: Order, event: OrderEvent): Order => {
  switch (event.type) {
    case 'OrderPlaced': {
      const { orderId, memberId, rewardId, kind, pointsSpent } = event.data;
      return { exists: true, status: 'redeemed', orderId, memberId, rewardId, kind, pointsSpent };
    }
    case 'OrderShipped':
      return state.exists ? { ...state, status: 'shipped' } : state;
    case 'OrderDelivered':
      return state.exists ? { ...state, status: 'delivered' } : state;
    case 'OrderCancelled':
      return state.exists ? { ...state, status: 'cancelled' } : state;
  }
};

export const order: Decider<OrderCommand, OrderEvent, Order, OrderRejection> = {
  initialState,
  decide,
  evolve,
};
