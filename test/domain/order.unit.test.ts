import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { order, type OrderCommand, type OrderEvent } from '../../domain/order.ts';
import type { RewardKind } from '../../domain/reward.ts';
import { refusalOf, specOf } from './given.ts';

const { given, stateAfter } = specOf(order);
const now = new Date('2024-06-15T14:30:00.000Z');
const at = '2024-06-15T14:30:00.000Z';

const placement = {
  orderId: 'ord_1',
  memberId: 'mem_1',
  rewardId: 'rwd_1',
  rewardName: 'Headphones',
  kind: 'physical' as RewardKind,
  pointsSpent: 5000,
  transactionId: 'txn_1',
};
const place = (overrides: Partial<typeof placement> = {}): OrderCommand => ({
  type: 'PlaceOrder',
  data: { ...placement, ...overrides, now },
});
const ship = (carrier = 'DHL', trackingNumber = 'JD0146000033'): OrderCommand => ({
  type: 'ShipOrder',
  data: { orderId: 'ord_1', carrier, trackingNumber, now },
});
const deliver: OrderCommand = { type: 'DeliverOrder', data: { orderId: 'ord_1', now } };
const cancel = (reason = 'Out of stock at supplier'): OrderCommand => ({
  type: 'CancelOrder',
  data: { orderId: 'ord_1', reason, now },
});

const placed = (kind: RewardKind = 'physical'): OrderEvent => ({
  type: 'OrderPlaced',
  data: { ...placement, kind, at },
});
const ids = { orderId: 'ord_1', memberId: 'mem_1', rewardId: 'rwd_1' };
const shipped: OrderEvent = {
  type: 'OrderShipped',
  data: { ...ids, carrier: 'DHL', trackingNumber: 'JD0146000033', at },
};
const delivered: OrderEvent = { type: 'OrderDelivered', data: { ...ids, at } };
const cancelled: OrderEvent = {
  type: 'OrderCancelled',
  data: { ...ids, pointsSpent: 5000, reason: 'Out of stock at supplier', at },
};

const refusal = (history: OrderEvent[], command: OrderCommand) =>
  refusalOf(given(history).when(command));

describe('order', () => {
  describe('with no history', () => {
    it('places the order', () => {
      assert.deepEqual(given().when(place()), { ok: true, events: [placed()] });
      const state = stateAfter([placed()]);
      assert.equal(state.exists && state.status, 'redeemed');
    });

    it('refuses an invalid reward name, kind or amount', () => {
      assert.deepEqual(refusalOf(given().when(place({ rewardName: '' }))), {
        rejection: 'invalid_name',
        field: 'reward_name',
      });
      assert.deepEqual(refusalOf(given().when(place({ kind: 'gift' as never }))), {
        rejection: 'invalid_kind',
        field: 'kind',
      });
      assert.deepEqual(refusalOf(given().when(place({ pointsSpent: 0 }))), {
        rejection: 'invalid_points',
        field: 'points_spent',
      });
    });

    for (const [what, command] of [
      ['ship', ship()],
      ['deliver', deliver],
      ['cancel', cancel()],
    ] as const) {
      it(`refuses to ${what} an order that does not exist`, () => {
        assert.deepEqual(refusal([], command), { rejection: 'order_not_found', field: 'order_id' });
      });
    }
  });

  describe('a physical order, redeemed', () => {
    const history = [placed()];

    it('refuses to place it again', () => {
      assert.deepEqual(refusal(history, place()), { rejection: 'order_exists', field: 'order_id' });
    });

    it('ships with carrier and tracking number', () => {
      assert.deepEqual(given(history).when(ship('UPS 📦', '1Z999AA10123456784')), {
        ok: true,
        events: [
          {
            type: 'OrderShipped',
            data: { ...ids, carrier: 'UPS 📦', trackingNumber: '1Z999AA10123456784', at },
          },
        ],
      });
    });

    it('refuses an invalid carrier', () => {
      for (const carrier of ['', ' ', 'c'.repeat(101), 'DHL\r']) {
        assert.deepEqual(refusal(history, ship(carrier)), {
          rejection: 'invalid_carrier',
          field: 'carrier',
        });
      }
    });

    it('refuses an invalid tracking number', () => {
      for (const trackingNumber of ['', 't'.repeat(101), 'A\u0000B']) {
        assert.deepEqual(refusal(history, ship('DHL', trackingNumber)), {
          rejection: 'invalid_tracking_number',
          field: 'tracking_number',
        });
      }
    });

    it('accepts a tracking number of 100 characters', () => {
      assert.equal(given(history).when(ship('DHL', 't'.repeat(100))).ok, true);
    });

    it('refuses delivery before shipping', () => {
      assert.deepEqual(refusal(history, deliver), {
        rejection: 'order_not_shipped',
        field: 'order_id',
      });
    });

    it('cancels with the points to refund', () => {
      assert.deepEqual(given(history).when(cancel()), { ok: true, events: [cancelled] });
    });

    it('refuses to cancel with an invalid reason', () => {
      assert.deepEqual(refusal(history, cancel('')), {
        rejection: 'invalid_reason',
        field: 'reason',
      });
      assert.deepEqual(refusal(history, cancel('x'.repeat(501))), {
        rejection: 'invalid_reason',
        field: 'reason',
      });
    });
  });

  describe('a physical order, shipped', () => {
    const history = [placed(), shipped];

    it('delivers', () => {
      assert.deepEqual(given(history).when(deliver), { ok: true, events: [delivered] });
    });

    it('refuses to ship again', () => {
      assert.deepEqual(refusal(history, ship()), {
        rejection: 'order_already_shipped',
        field: 'order_id',
      });
    });

    it('still cancels', () => {
      assert.deepEqual(given(history).when(cancel()), { ok: true, events: [cancelled] });
    });
  });

  describe('a delivered order', () => {
    const history = [placed(), shipped, delivered];

    it('refuses to ship, deliver or cancel', () => {
      assert.deepEqual(refusal(history, ship()), {
        rejection: 'order_already_delivered',
        field: 'order_id',
      });
      assert.deepEqual(refusal(history, deliver), {
        rejection: 'order_already_delivered',
        field: 'order_id',
      });
      assert.deepEqual(refusal(history, cancel()), {
        rejection: 'order_already_delivered',
        field: 'order_id',
      });
    });
  });

  describe('a cancelled order', () => {
    const history = [placed(), cancelled];

    it('refuses to ship, deliver or cancel again', () => {
      assert.deepEqual(refusal(history, ship()), {
        rejection: 'order_cancelled',
        field: 'order_id',
      });
      assert.deepEqual(refusal(history, deliver), {
        rejection: 'order_cancelled',
        field: 'order_id',
      });
      assert.deepEqual(refusal(history, cancel()), {
        rejection: 'order_cancelled',
        field: 'order_id',
      });
    });
  });

  describe('a digital order', () => {
    const history = [placed('digital')];

    it('is delivered without shipping', () => {
      assert.deepEqual(given(history).when(deliver), { ok: true, events: [delivered] });
    });

    it('refuses to ship', () => {
      assert.deepEqual(refusal(history, ship()), {
        rejection: 'digital_order_not_shippable',
        field: 'order_id',
      });
    });
  });
});
