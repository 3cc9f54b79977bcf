import { Router } from 'express';
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
import { orderStateView } from './views.ts';
import type * as r from './responses.ts';
import type { Body, CommandView, NothingToShow } from './responses.ts';

export type OrderRouteDeps = ResourceRouteDeps;

/** Orders: the fulfilment queue, one order, and its steps (ship, deliver, cancel). */
export const orderRoutes = (deps: OrderRouteDeps): Router => {
  const { incentives, queries } = deps;
  const waited = readAfter(deps.waitForReadModels);
  const router = Router();

  // Orders, oldest first: a fulfilment queue by status (docs/api.md, "Orders").
  router.get('/programs/:programId/orders', async (req, res) => {
    const filter = parse(s.ordersQuery, req.query, res);
    if (!filter || !(await waited(req, res))) return;
    res.json(
      (await queries.orders(programOf(res), filter)) satisfies Body<typeof r.orderListSchema>,
    );
  });

  router.get('/programs/:programId/members/:memberId/orders', async (req, res) => {
    const memberId = idParam(req, res, 'memberId', 'member');
    if (!memberId) return;
    const filter = parse(s.memberOrdersQuery, req.query, res);
    if (!filter || !(await waited(req, res))) return;
    if (!(await queries.member(programOf(res), memberId)))
      return sendError(res, 404, {
        code: 'member_not_found',
        message: `no member ${memberId}`,
        field: 'member_id',
      });
    res.json(
      (await queries.orders(programOf(res), { ...filter, memberId })) satisfies Body<
        typeof r.orderListSchema
      >,
    );
  });

  router.get('/programs/:programId/orders/:orderId', async (req, res) => {
    const orderId = idParam(req, res, 'orderId', 'order');
    if (!orderId || !(await waited(req, res))) return;
    const view = await queries.order(programOf(res), orderId);
    if (!view)
      return sendError(res, 404, {
        code: 'order_not_found',
        message: `no order ${orderId}`,
        field: 'order_id',
      });
    res.json(view satisfies Body<typeof r.orderSchema>);
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
    reply(
      res,
      outcome,
      200,
      ({ state }): CommandView<typeof r.orderShippedSchema> | NothingToShow =>
        // As orderStateView: an order that does not exist shows nothing, not half a shipment.
        state.exists
          ? {
              id: orderId,
              status: state.status,
              member_id: state.memberId,
              reward_id: state.rewardId,
              carrier: shipment.carrier,
              tracking_number: shipment.trackingNumber,
            }
          : {},
    );
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
