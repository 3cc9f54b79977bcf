import { accept, reject, type Decider, type Decision, type Refusal } from './decider.ts';
import { isIntegerBetween, isName, isPoints, isoOf } from './validation.ts';

export type RewardKind = 'physical' | 'digital';

export type RewardChanges = {
  name?: string;
  pointsCost?: number;
  /** The new remaining stock; null = unlimited. */
  stock?: number | null;
  active?: boolean;
};

export type RewardCommand =
  | {
      type: 'CreateReward';
      data: {
        rewardId: string;
        name: string;
        pointsCost: number;
        stock: number | null;
        kind: RewardKind;
        now: Date;
      };
    }
  | { type: 'ChangeReward'; data: { rewardId: string; changes: RewardChanges; now: Date } }
  | { type: 'ReserveStock'; data: { rewardId: string; orderId: string; now: Date } }
  | { type: 'ReleaseStock'; data: { rewardId: string; orderId: string; now: Date } };

export type RewardEvent =
  | {
      type: 'RewardCreated';
      data: {
        rewardId: string;
        name: string;
        pointsCost: number;
        stock: number | null;
        kind: RewardKind;
        at: string;
      };
    }
  | { type: 'RewardChanged'; data: { rewardId: string; changes: RewardChanges; at: string } }
  | {
      type: 'StockReserved';
      data: { rewardId: string; orderId: string; remaining: number | null; at: string };
    }
  | {
      type: 'StockReleased';
      data: { rewardId: string; orderId: string; remaining: number | null; at: string };
    };

export type RewardRejection =
  | 'reward_exists'
  | 'reward_not_found'
  | 'reward_inactive'
  | 'out_of_stock'
  | 'invalid_points_cost'
  | 'invalid_stock'
  | 'invalid_name'
  | 'invalid_kind'
  | 'invalid_active';

export type Reward =
  | { exists: false }
  | {
      exists: true;
      rewardId: string;
      name: string;
      pointsCost: number;
      /** Remaining units; null = unlimited. */
      stock: number | null;
      kind: RewardKind;
      active: boolean;
      /** Orders holding a unit now. */
      reservedOrderIds: string[];
      /** Orders that held a unit and gave it back; they never reserve again. */
      releasedOrderIds: string[];
    };

export const maxStock = 1_000_000_000;

export const initialState = (): Reward => ({ exists: false });

const validate = (changes: RewardChanges & { kind?: unknown }): Refusal<RewardRejection> | null => {
  if (changes.name !== undefined && !isName(changes.name)) {
    return reject(
      'invalid_name',
      'name must be 1-200 characters without control characters',
      'name',
    );
  }
  if (changes.pointsCost !== undefined && !isPoints(changes.pointsCost)) {
    return reject(
      'invalid_points_cost',
      'pointsCost must be a positive integer no larger than 1000000000',
      'points_cost',
    );
  }
  if (
    changes.stock !== undefined &&
    changes.stock !== null &&
    !isIntegerBetween(changes.stock, 0, maxStock)
  ) {
    return reject(
      'invalid_stock',
      'stock must be null or an integer from 0 to 1000000000',
      'stock',
    );
  }
  if (changes.active !== undefined && typeof changes.active !== 'boolean') {
    return reject('invalid_active', 'active must be true or false', 'active');
  }
  if (changes.kind !== undefined && changes.kind !== 'physical' && changes.kind !== 'digital') {
    return reject('invalid_kind', 'kind is physical or digital', 'kind');
  }
  return null;
};

const changeKeys = ['name', 'pointsCost', 'stock', 'active'] as const;

export const decide = (
  command: RewardCommand,
  state: Reward,
): Decision<RewardEvent, RewardRejection> => {
  switch (command.type) {
    case 'CreateReward': {
      if (state.exists) return reject('reward_exists', 'the reward already exists', 'reward_id');
      const { rewardId, name, pointsCost, stock, kind, now } = command.data;
      const refusal = validate({ name, pointsCost, stock, kind });
      if (refusal) return refusal;
      return accept([
        {
          type: 'RewardCreated',
          data: { rewardId, name, pointsCost, stock, kind, at: isoOf(now) },
        },
      ]);
    }
    case 'ChangeReward': {
      if (!state.exists) return reject('reward_not_found', 'no such reward', 'reward_id');
      const refusal = validate(command.data.changes);
      if (refusal) return refusal;
      const changes: Record<string, unknown> = {};
      for (const key of changeKeys) {
        const value = command.data.changes[key];
        if (value !== undefined && value !== state[key]) changes[key] = value;
      }
      if (Object.keys(changes).length === 0) return accept([]);
      return accept([
        {
          type: 'RewardChanged',
          data: { rewardId: state.rewardId, changes, at: isoOf(command.data.now) },
        },
      ]);
    }
    case 'ReserveStock': {
      if (!state.exists) return reject('reward_not_found', 'no such reward', 'reward_id');
      const { orderId, now } = command.data;
      if (state.reservedOrderIds.includes(orderId) || state.releasedOrderIds.includes(orderId)) {
        return accept([]);
      }
      if (!state.active) return reject('reward_inactive', 'the reward is not active', 'reward_id');
      if (state.stock === 0)
        return reject('out_of_stock', 'the reward is out of stock', 'reward_id');
      return accept([
        {
          type: 'StockReserved',
          data: {
            rewardId: state.rewardId,
            orderId,
            remaining: state.stock === null ? null : state.stock - 1,
            at: isoOf(now),
          },
        },
      ]);
    }
    case 'ReleaseStock': {
      if (!state.exists) return reject('reward_not_found', 'no such reward', 'reward_id');
      const { orderId, now } = command.data;
      if (!state.reservedOrderIds.includes(orderId)) return accept([]);
      return accept([
        {
          type: 'StockReleased',
          data: {
            rewardId: state.rewardId,
            orderId,
            remaining: state.stock === null ? null : state.stock + 1,
            at: isoOf(now),
          },
        },
      ]);
    }
  }
};

export const evolve = (state: Reward, event: RewardEvent): Reward => {
  switch (event.type) {
    case 'RewardCreated': {
      const { at: _at, ...created } = event.data;
      return { exists: true, ...created, active: true, reservedOrderIds: [], releasedOrderIds: [] };
    }
    case 'RewardChanged':
      return state.exists ? { ...state, ...event.data.changes } : state;
    case 'StockReserved':
      if (!state.exists) return state;
      return {
        ...state,
        stock: event.data.remaining,
        reservedOrderIds: [...state.reservedOrderIds, event.data.orderId],
      };
    case 'StockReleased':
      if (!state.exists) return state;
      return {
        ...state,
        stock: event.data.remaining,
        reservedOrderIds: state.reservedOrderIds.filter((id) => id !== event.data.orderId),
        releasedOrderIds: [...state.releasedOrderIds, event.data.orderId],
      };
  }
};

export const reward: Decider<RewardCommand, RewardEvent, Reward, RewardRejection> = {
  initialState,
  decide,
  evolve,
};
