import { Router } from 'express';
import { isId } from '../../../domain/ids.ts';
import { wireString } from '../api/schemas.ts';
import { cursorParam, programIdOf, type DashboardContext } from './context.ts';
import { base } from './layout.ts';
import { memberPage, membersPage } from './membersPages.ts';

/** Members: the searchable list and one member's ledger and orders. */
export const membersRoutes = (ctx: DashboardContext): Router => {
  const { queries } = ctx;
  const router = Router();

  router.get('/members', async (req, res) => {
    // The API's rule for every string: NUL or an unpaired surrogate is a 400, not a failed query.
    if (typeof req.query.q === 'string' && !wireString().safeParse(req.query.q).success)
      throw Object.assign(new Error('q is not well-formed text'), { status: 400 });
    const q = typeof req.query.q === 'string' ? req.query.q.trim().slice(0, 200) : '';
    const cursor = cursorParam(req.query.cursor);
    const page = await queries.members(programIdOf(res), {
      limit: 50,
      ...(q && { q }),
      ...(cursor && { cursor }),
    });
    await ctx.render(
      res,
      { title: 'Members', section: 'members' },
      membersPage({ q, members: page.data, nextCursor: page.next_cursor }),
    );
  });

  router.get('/members/:memberId', async (req, res, next) => {
    const memberId = req.params.memberId;
    if (!isId('member', memberId)) return next();
    const programId = programIdOf(res);
    const member = await queries.member(programId, memberId);
    if (!member) return next();
    const cursor = cursorParam(req.query.ledger_cursor);
    const [ledger, orders] = await Promise.all([
      queries.ledger(programId, memberId, { limit: 50, ...(cursor && { cursor }) }),
      queries.memberOrders(programId, memberId),
    ]);
    await ctx.render(
      res,
      {
        title: member.name,
        section: 'members',
        crumbs: [{ href: `${base}/members`, label: 'Members' }],
      },
      memberPage({ member, ledger, orders }),
    );
  });

  return router;
};
