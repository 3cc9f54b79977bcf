import { Router } from 'express';
import { isId } from '../../../domain/ids.ts';
import { sendError } from './errors.ts';
import {
  contextOf,
  idParam,
  parse,
  programOf,
  readAfter,
  reply,
  type ResourceRouteDeps,
} from './request.ts';
import * as s from './schemas.ts';
import { rewardCreatedView } from './views.ts';
import type * as r from './responses.ts';
import type { Body, CommandView, NothingToShow } from './responses.ts';

export type RewardRouteDeps = ResourceRouteDeps;

/** Rewards, and redeeming one (which places an order: orderRoutes.ts). */
export const rewardRoutes = (deps: RewardRouteDeps): Router => {
  const { incentives, queries } = deps;
  const waited = readAfter(deps.waitForReadModels);
  const router = Router();

  router.post('/programs/:programId/rewards', async (req, res) => {
    const input = parse(s.createRewardBody, req.body, res);
    if (!input) return;
    const programId = programOf(res);
    const outcome = await incentives.createReward(programId, input, contextOf(res, programId));
    reply(res, outcome, 201, rewardCreatedView);
  });

  router.get('/programs/:programId/rewards', async (req, res) => {
    const page = parse(s.listPageQuery, req.query, res);
    if (!page || !(await waited(req, res))) return;
    res.json(
      (await queries.rewards(programOf(res), page)) satisfies Body<typeof r.rewardListSchema>,
    );
  });

  router.get('/programs/:programId/rewards/:rewardId', async (req, res) => {
    const rewardId = idParam(req, res, 'rewardId', 'reward');
    if (!rewardId || !(await waited(req, res))) return;
    const view = await queries.reward(programOf(res), rewardId);
    if (!view)
      return sendError(res, 404, {
        code: 'reward_not_found',
        message: `no reward ${rewardId}`,
        field: 'reward_id',
      });
    res.json(view satisfies Body<typeof r.rewardSchema>);
  });

  router.patch('/programs/:programId/rewards/:rewardId', async (req, res) => {
    const rewardId = idParam(req, res, 'rewardId', 'reward');
    if (!rewardId) return;
    const changes = parse(s.updateRewardBody, req.body, res);
    if (!changes) return;
    const programId = programOf(res);
    const outcome = await incentives.changeReward(
      programId,
      rewardId,
      changes,
      contextOf(res, programId),
    );
    reply(
      res,
      outcome,
      200,
      ({ state }): CommandView<typeof r.rewardChangedSchema> | NothingToShow =>
        state.exists
          ? {
              id: rewardId,
              name: state.name,
              points_cost: state.pointsCost,
              stock: state.stock,
              kind: state.kind,
              active: state.active,
            }
          : {},
    );
  });

  router.post('/programs/:programId/members/:memberId/redemptions', async (req, res) => {
    const memberId = idParam(req, res, 'memberId', 'member');
    if (!memberId) return;
    const body = parse(s.redemptionSchema, req.body, res);
    if (!body) return;
    if (!isId('reward', body.reward_id))
      return sendError(res, 400, {
        code: 'validation_error',
        message: 'reward_id is not a valid reward id',
        field: 'reward_id',
      });
    const programId = programOf(res);
    const outcome = await incentives.redeem(
      programId,
      memberId,
      body.reward_id,
      contextOf(res, programId),
    );
    reply(res, outcome, 201, (v): CommandView<typeof r.orderPlacedSchema> => ({
      id: v.orderId,
      member_id: v.memberId,
      reward_id: v.rewardId,
      reward_name: v.rewardName,
      points_spent: v.pointsSpent,
      status: 'redeemed',
      transaction_id: v.transactionId,
      new_balance: v.newBalance,
    }));
  });

  return router;
};
