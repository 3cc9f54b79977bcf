import { Router, type Request, type Response } from 'express';
import { periodStartOf } from '../../../domain/periods.ts';
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
import { endedPeriodView, leaderboardCreatedView } from './views.ts';
import type * as r from './responses.ts';
import type { Body, CommandView } from './responses.ts';

export type LeaderboardRouteDeps = ResourceRouteDeps;

/** Leaderboards, their standings, and their ended periods. */
export const leaderboardRoutes = (deps: LeaderboardRouteDeps): Router => {
  const { incentives, queries } = deps;
  const waited = readAfter(deps.waitForReadModels);
  const router = Router();

  router.post('/programs/:programId/leaderboards', async (req, res) => {
    const input = parse(s.createLeaderboardBody, req.body, res);
    if (!input) return;
    const programId = programOf(res);
    const outcome = await incentives.createLeaderboard(programId, input, contextOf(res, programId));
    reply(res, outcome, 201, leaderboardCreatedView);
  });

  router.get('/programs/:programId/leaderboards', async (req, res) => {
    if (!(await waited(req, res))) return;
    res.json({
      data: await queries.leaderboards(programOf(res)),
    } satisfies Body<typeof r.leaderboardListSchema>);
  });

  const withLeaderboard = async (req: Request, res: Response) => {
    const leaderboardId = idParam(req, res, 'leaderboardId', 'leaderboard');
    if (!leaderboardId || !(await waited(req, res))) return undefined;
    const view = await queries.leaderboard(programOf(res), leaderboardId);
    if (!view)
      sendError(res, 404, {
        code: 'leaderboard_not_found',
        message: `no leaderboard ${leaderboardId}`,
        field: 'leaderboard_id',
      });
    return view ?? undefined;
  };

  router.get('/programs/:programId/leaderboards/:leaderboardId', async (req, res) => {
    const view = await withLeaderboard(req, res);
    if (view) res.json(view satisfies Body<typeof r.leaderboardSchema>);
  });

  router.get('/programs/:programId/leaderboards/:leaderboardId/standings', async (req, res) => {
    const view = await withLeaderboard(req, res);
    if (view)
      res.json({
        leaderboard_id: view.id,
        period_start: view.period_start,
        period_end: view.period_end,
        standings: await queries.standings(view.id),
      } satisfies Body<typeof r.standingsSchema>);
  });

  router.get('/programs/:programId/leaderboards/:leaderboardId/periods', async (req, res) => {
    const view = await withLeaderboard(req, res);
    if (view)
      res.json({
        leaderboard_id: view.id,
        data: await queries.periods(view.id),
      } satisfies Body<typeof r.periodListSchema>);
  });

  router.get(
    '/programs/:programId/leaderboards/:leaderboardId/periods/:periodId/standings',
    async (req, res) => {
      const page = parse(s.pageQuery, req.query, res);
      if (!page) return;
      const view = await withLeaderboard(req, res);
      if (!view) return;
      const periodId = req.params.periodId ?? '';
      const periodStart = periodStartOf(periodId);
      if (!periodStart)
        return sendError(res, 400, {
          code: 'validation_error',
          message: 'period_id is the period_id of an ended period, e.g. 20250303T000000.000Z',
          field: 'period_id',
        });
      const period = await queries.period(view.id, periodStart);
      if (!period)
        return sendError(res, 404, {
          code: 'period_not_found',
          message: `no ended period ${periodId} on leaderboard ${view.id}`,
          field: 'period_id',
        });
      const { standings: _topTen, ...ended } = period;
      res.json({
        leaderboard_id: view.id,
        ...ended,
        ...(await queries.periodStandings(view.id, periodStart, page)),
      } satisfies Body<typeof r.periodStandingsSchema>);
    },
  );

  router.post('/programs/:programId/leaderboards/:leaderboardId/close-period', async (req, res) => {
    const leaderboardId = idParam(req, res, 'leaderboardId', 'leaderboard');
    if (!leaderboardId || !parse(s.emptySchema, req.body, res)) return;
    const programId = programOf(res);
    const outcome = await incentives.closePeriod(
      programId,
      leaderboardId,
      true,
      contextOf(res, programId),
    );
    reply(res, outcome, 200, ({ events, state }): CommandView<typeof r.periodClosedSchema> => {
      const endedNow = events.find((e) => e.type === 'PeriodEnded');
      // Nothing ended: a repeat of the last close (within a minute, no score since) answers
      // with the period that close ended.
      const ended =
        endedNow?.type === 'PeriodEnded'
          ? endedNow.data
          : events.length === 0 && state.exists
            ? state.lastEnded
            : null;
      return {
        leaderboard_id: leaderboardId,
        ended: ended ? endedPeriodView(ended) : null,
        current_period: state.exists
          ? { period_start: state.periodStart, period_end: state.periodEnd }
          : null,
      };
    });
  });

  return router;
};
