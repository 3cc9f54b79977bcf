import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  reward,
  type RewardChanges,
  type RewardCommand,
  type RewardEvent,
  type RewardKind,
} from '../../domain/reward.ts';
import { refusalOf, specOf } from './given.ts';

const { given, stateAfter } = specOf(reward);
const now = new Date('2024-06-15T14:30:00.000Z');
const at = '2024-06-15T14:30:00.000Z';

type Creation = { name: string; pointsCost: number; stock: number | null; kind: RewardKind };
const creation: Creation = {
  name: 'Noise-cancelling headphones',
  pointsCost: 5000,
  stock: 2,
  kind: 'physical',
};

const create = (overrides: Partial<Creation> = {}): RewardCommand => ({
  type: 'CreateReward',
  data: { rewardId: 'rwd_1', ...creation, ...overrides, now },
});
const change = (changes: RewardChanges): RewardCommand => ({
  type: 'ChangeReward',
  data: { rewardId: 'rwd_1', changes, now },
});
const reserve = (orderId: string): RewardCommand => ({
  type: 'ReserveStock',
  data: { rewardId: 'rwd_1', orderId, now },
});
const release = (orderId: string): RewardCommand => ({
  type: 'ReleaseStock',
  data: { rewardId: 'rwd_1', orderId, now },
});

const created = (overrides: Partial<Creation> = {}): RewardEvent => ({
  type: 'RewardCreated',
  data: { rewardId: 'rwd_1', ...creation, ...overrides, at },
});
const reserved = (orderId: string, remaining: number | null): RewardEvent => ({
  type: 'StockReserved',
  data: { rewardId: 'rwd_1', orderId, remaining, at },
});
const released = (orderId: string, remaining: number | null): RewardEvent => ({
  type: 'StockReleased',
  data: { rewardId: 'rwd_1', orderId, remaining, at },
});
const deactivated: RewardEvent = {
  type: 'RewardChanged',
  data: { rewardId: 'rwd_1', changes: { active: false }, at },
};

describe('reward', () => {
  describe('with no history', () => {
    it('creates the reward', () => {
      assert.deepEqual(given().when(create()), { ok: true, events: [created()] });
    });

    it('creates a digital reward with unlimited stock', () => {
      assert.deepEqual(given().when(create({ stock: null, kind: 'digital' })), {
        ok: true,
        events: [created({ stock: null, kind: 'digital' })],
      });
    });

    const invalid: [string, Partial<Creation>, string, string][] = [
      ['an empty name', { name: '' }, 'invalid_name', 'name'],
      ['a name with a control character', { name: 'Mug\u001b' }, 'invalid_name', 'name'],
      ['a cost of zero', { pointsCost: 0 }, 'invalid_points_cost', 'points_cost'],
      [
        'a cost above 1000000000',
        { pointsCost: 1_000_000_001 },
        'invalid_points_cost',
        'points_cost',
      ],
      ['a fractional cost', { pointsCost: 9.99 }, 'invalid_points_cost', 'points_cost'],
      ['negative stock', { stock: -1 }, 'invalid_stock', 'stock'],
      ['fractional stock', { stock: 1.5 }, 'invalid_stock', 'stock'],
      ['stock above 1000000000', { stock: 1_000_000_001 }, 'invalid_stock', 'stock'],
      ['an unknown kind', { kind: 'service' as never }, 'invalid_kind', 'kind'],
    ];
    for (const [what, overrides, rejection, field] of invalid) {
      it(`refuses to create with ${what}`, () => {
        assert.deepEqual(refusalOf(given().when(create(overrides))), { rejection, field });
      });
    }

    for (const [what, command] of [
      ['change', change({ name: 'X' })],
      ['reserve stock of', reserve('ord_1')],
      ['release stock of', release('ord_1')],
    ] as const) {
      it(`refuses to ${what} a reward that does not exist`, () => {
        assert.deepEqual(refusalOf(given().when(command)), {
          rejection: 'reward_not_found',
          field: 'reward_id',
        });
      });
    }
  });

  describe('once created with 2 in stock', () => {
    it('refuses to create it again', () => {
      assert.deepEqual(refusalOf(given([created()]).when(create())), {
        rejection: 'reward_exists',
        field: 'reward_id',
      });
    });

    it('records only the changes that differ', () => {
      assert.deepEqual(
        given([created()]).when(
          change({ name: creation.name, pointsCost: 4500, stock: 10, active: true }),
        ),
        {
          ok: true,
          events: [
            {
              type: 'RewardChanged',
              data: { rewardId: 'rwd_1', changes: { pointsCost: 4500, stock: 10 }, at },
            },
          ],
        },
      );
    });

    it('records nothing when nothing changes', () => {
      assert.deepEqual(given([created()]).when(change({ stock: 2, active: true })), {
        ok: true,
        events: [],
      });
    });

    it('makes the stock unlimited', () => {
      assert.deepEqual(given([created()]).when(change({ stock: null })), {
        ok: true,
        events: [
          { type: 'RewardChanged', data: { rewardId: 'rwd_1', changes: { stock: null }, at } },
        ],
      });
    });

    it('validates changes', () => {
      assert.deepEqual(refusalOf(given([created()]).when(change({ pointsCost: -1 }))), {
        rejection: 'invalid_points_cost',
        field: 'points_cost',
      });
      assert.deepEqual(refusalOf(given([created()]).when(change({ stock: -3 }))), {
        rejection: 'invalid_stock',
        field: 'stock',
      });
      assert.deepEqual(refusalOf(given([created()]).when(change({ name: ' ' }))), {
        rejection: 'invalid_name',
        field: 'name',
      });
      assert.deepEqual(refusalOf(given([created()]).when(change({ active: 'yes' as never }))), {
        rejection: 'invalid_active',
        field: 'active',
      });
    });

    it('reserves a unit for an order', () => {
      assert.deepEqual(given([created()]).when(reserve('ord_1')), {
        ok: true,
        events: [reserved('ord_1', 1)],
      });
    });

    it('reserves an order once', () => {
      assert.deepEqual(given([created(), reserved('ord_1', 1)]).when(reserve('ord_1')), {
        ok: true,
        events: [],
      });
    });

    it('refuses to reserve when the stock is gone', () => {
      const history = [created(), reserved('ord_1', 1), reserved('ord_2', 0)];
      const state = stateAfter(history);
      assert.equal(state.exists && state.stock, 0);
      assert.deepEqual(refusalOf(given(history).when(reserve('ord_3'))), {
        rejection: 'out_of_stock',
        field: 'reward_id',
      });
    });

    it('refuses to reserve an inactive reward', () => {
      assert.deepEqual(refusalOf(given([created(), deactivated]).when(reserve('ord_1'))), {
        rejection: 'reward_inactive',
        field: 'reward_id',
      });
    });

    it('reactivates an inactive reward', () => {
      assert.deepEqual(given([created(), deactivated]).when(change({ active: true })), {
        ok: true,
        events: [
          { type: 'RewardChanged', data: { rewardId: 'rwd_1', changes: { active: true }, at } },
        ],
      });
    });

    it('reserves unlimited stock without counting', () => {
      assert.deepEqual(given([created({ stock: null })]).when(reserve('ord_1')), {
        ok: true,
        events: [reserved('ord_1', null)],
      });
    });
  });

  describe('releasing stock', () => {
    const history = [created(), reserved('ord_1', 1), reserved('ord_2', 0)];

    it('returns the unit of a reserved order', () => {
      assert.deepEqual(given(history).when(release('ord_1')), {
        ok: true,
        events: [released('ord_1', 1)],
      });
    });

    it('makes the unit available again', () => {
      assert.deepEqual(given([...history, released('ord_1', 1)]).when(reserve('ord_3')), {
        ok: true,
        events: [reserved('ord_3', 0)],
      });
    });

    it('releases an order once', () => {
      assert.deepEqual(given([...history, released('ord_1', 1)]).when(release('ord_1')), {
        ok: true,
        events: [],
      });
    });

    it('does nothing for an order that holds no unit', () => {
      assert.deepEqual(given(history).when(release('ord_9')), { ok: true, events: [] });
    });

    it('does not reserve again for a released order', () => {
      assert.deepEqual(given([...history, released('ord_1', 1)]).when(reserve('ord_1')), {
        ok: true,
        events: [],
      });
    });

    it('releases on an inactive reward', () => {
      assert.deepEqual(given([...history, deactivated]).when(release('ord_2')), {
        ok: true,
        events: [released('ord_2', 1)],
      });
    });
  });
});
