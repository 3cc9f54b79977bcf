import { Router } from 'express';
import type { Incentives } from '../../../application/incentives.ts';
import { isId } from '../../../domain/ids.ts';
import type { Queries } from '../../../projections/queries.ts';
import { sendError } from './errors.ts';
import {
  contextOf,
  idParam,
  parse,
  programOf,
  readAfter,
  reply,
  type WaitForReadModels,
} from './request.ts';
import * as s from './schemas.ts';
import { orderStateView, rewardCreatedView } from './views.ts';

export type RewardRouteDeps = {
  incentives: Incentives;
  queries: Queries;
  waitForReadModels: WaitForReadModels;
};

/** Rewards, redemptions and the orders they place. */
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
    res.json(await queries.rewards(programOf(res), page));
  });

  router.get('/programs/:programId/rewards/:rewardId', async (req, res) => {
    const rewardId = idParam(req, res, 'rewardId', 'reward');
    if (!rewardId || !(await waited(req, res))) return;
    const view = await queries.reward(programOf(res), rewardId);
    if (!view) return sendError(res, 404, 'reward_not_found', `no reward ${rewardId}`, 'reward_id');
    res.json(view);
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
    reply(res, outcome, 200, ({ state }) =>
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
      return sendError(
        res,
        400,
        'validation_error',
        'reward_id is not a valid reward id',
        'reward_id',
      );
    const programId = programOf(res);
    const outcome = await incentives.redeem(
      programId,
      memberId,
      body.reward_id,
      contextOf(res, programId),
    );
    reply(res, outcome, 201, (v) => ({
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

  // Orders, oldest first: a fulfilment queue by status (docs/api.md, "Orders").
  router.get('/programs/:programId/orders', async (req, res) => {
    const filter = parse(s.ordersQuery, req.query, res);
    if (!filter || !(await waited(req, res))) return;
    res.json(await queries.orders(programOf(res), filter));
  });

  router.get('/programs/:programId/members/:memberId/orders', async (req, res) => {
    const memberId = idParam(req, res, 'memberId', 'member');
    if (!memberId) return;
    const filter = parse(s.memberOrdersQuery, req.query, res);
    if (!filter || !(await waited(req, res))) return;
    if (!(await queries.member(programOf(res), memberId)))
      return sendError(res, 404, 'member_not_found', `no member ${memberId}`, 'member_id');
    res.json(await queries.orders(programOf(res), { ...filter, memberId }));
  });

  router.get('/programs/:programId/orders/:orderId', async (req, res) => {
    const orderId = idParam(req, res, 'orderId', 'order');
    if (!orderId || !(await waited(req, res))) return;
    const view = await queries.order(programOf(res), orderId);
    if (!view) return sendError(res, 404, 'order_not_found', `no order ${orderId}`, 'order_id');
    res.json(view);
  });

  router.post('/programs/:programId/orders/:orderId/ship', async (req, res) => {
    const orderId = idParam(req, res, 'orderId', 'order');
    if (!orderId) return;
    const shipment = parse(s.shipBody, req.body, res);
    if (!shipment) return;
    const programId = programOf(res);
    const outcome = await incentives.shipOrder(
      programId,
      orderId,
      shipment,
      contextOf(res, programId),
    );
    reply(res, outcome, 200, (v) => ({
      ...orderStateView(orderId)(v),
      carrier: shipment.carrier,
      tracking_number: shipment.trackingNumber,
    }));
  });

  router.post('/programs/:programId/orders/:orderId/deliver', async (req, res) => {
    const orderId = idParam(req, res, 'orderId', 'order');
    if (!orderId || !parse(s.emptySchema, req.body, res)) return;
    const programId = programOf(res);
    reply(
      res,
      await incentives.deliverOrder(programId, orderId, contextOf(res, programId)),
      200,
      orderStateView(orderId),
    );
  });

  router.post('/programs/:programId/orders/:orderId/cancel', async (req, res) => {
    const orderId = idParam(req, res, 'orderId', 'order');
    if (!orderId) return;
    const reason = parse(s.cancelBody, req.body, res);
    if (reason === undefined) return;
    const programId = programOf(res);
    const outcome = await incentives.cancelOrder(
      programId,
      orderId,
      reason,
      contextOf(res, programId),
    );
    reply(res, outcome, 200, orderStateView(orderId));
  });

  return router;
};
