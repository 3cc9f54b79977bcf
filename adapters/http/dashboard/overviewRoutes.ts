import { Router } from 'express';
import type { Queries } from '../../../projections/queries.ts';
import { programIdOf, type DashboardContext } from './context.ts';
import { overviewPage } from './overviewPage.ts';

const dayMs = 24 * 60 * 60 * 1000;

/** Overview: members, points over 30 days, today's deliveries, a running tier re-evaluation. */
export const overviewRoutes = (ctx: DashboardContext): Router => {
  const { dashboardQueries: dq, clock } = ctx;
  const router = Router();

  router.get('/overview', async (_req, res) => {
    const programId = programIdOf(res);
    const program = res.locals.program as NonNullable<Awaited<ReturnType<Queries['program']>>>;
    const now = clock.now();
    const since30 = new Date(now.getTime() - 30 * dayMs);
    const [members, points, perDay, deliveries, [reevaluation]] = await Promise.all([
      dq.memberCount(programId),
      dq.pointsSince(programId, since30),
      dq.awardedPerDay(programId, since30, program.timezone),
      dq.deliveriesSince(programId, new Date(now.getTime() - dayMs)),
      dq.runningTierReevaluations(programId),
    ]);
    // Thirty bars, one per UTC calendar day, zero where nothing was awarded.
    const byDay = new Map(perDay.map((d) => [d.day, d.points]));
    const days = Array.from({ length: 30 }, (_, i) => {
      const day = new Date(now.getTime() - (29 - i) * dayMs).toISOString().slice(0, 10);
      return { day, value: byDay.get(day) ?? 0 };
    });
    await ctx.render(
      res,
      { title: 'Overview', section: 'overview' },
      overviewPage({
        members,
        awarded: points.awarded,
        redeemed: points.redeemed,
        days,
        deliveries,
        pointsExpiry: program.points_expiry,
        // Before its first page the job has not counted the members: the program's count then.
        reevaluation: reevaluation && {
          handled: reevaluation.handled,
          total: reevaluation.total ?? members,
        },
      }),
    );
  });

  return router;
};
