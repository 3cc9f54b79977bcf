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
import { movementView, reversalView } from './views.ts';
import type * as r from './responses.ts';
import type { Body } from './responses.ts';

export type PointsRouteDeps = ResourceRouteDeps;

/** Points: award, deduct, reverse, and a member's transactions. */
export const pointsRoutes = (deps: PointsRouteDeps): Router => {
  const { incentives, queries } = deps;
  const waited = readAfter(deps.waitForReadModels);
  const router = Router();

  router.post('/programs/:programId/transactions/:transactionId/reverse', async (req, res) => {
    const transactionId = idParam(req, res, 'transactionId', 'transaction');
    if (!transactionId) return;
    const input = parse(s.reverseTransactionBody, req.body, res);
    if (!input) return;
    const programId = programOf(res);
    const outcome = await incentives.reverseTransaction(
      programId,
      transactionId,
      input,
      contextOf(res, programId),
    );
    reply(res, outcome, 201, reversalView);
  });

  for (const direction of ['award', 'deduct'] as const) {
    router.post(`/programs/:programId/members/:memberId/points/${direction}`, async (req, res) => {
      const memberId = idParam(req, res, 'memberId', 'member');
      if (!memberId) return;
      const input = parse(s.pointsBody, req.body, res);
      if (!input) return;
      const programId = programOf(res);
      const outcome = await incentives.movePoints(
        programId,
        memberId,
        { direction, ...input },
        contextOf(res, programId),
      );
      reply(res, outcome, 201, movementView);
    });
  }

  router.get('/programs/:programId/members/:memberId/transactions', async (req, res) => {
    const memberId = idParam(req, res, 'memberId', 'member');
    if (!memberId) return;
    const page = parse(s.listPageQuery, req.query, res);
    if (!page || !(await waited(req, res))) return;
    if (!(await queries.member(programOf(res), memberId)))
      return sendError(res, 404, {
        code: 'member_not_found',
        message: `no member ${memberId}`,
        field: 'member_id',
      });
    res.json(
      (await queries.ledger(programOf(res), memberId, page)) satisfies Body<
        typeof r.ledgerPageSchema
      >,
    );
  });

  return router;
};
