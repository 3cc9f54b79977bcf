import { Router } from 'express';
import { memberAsOf, type streamReader } from '../../audit/history.ts';
import type { AuditProofs } from '../../audit/proofService.ts';
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
import { memberRegisteredView } from './views.ts';
import type * as r from './responses.ts';
import type { Body, CommandView } from './responses.ts';

export type MemberRouteDeps = ResourceRouteDeps & {
  /** The event streams, for a member as of a past time. */
  history: ReturnType<typeof streamReader>;
  /** Member statements with inclusion proofs (docs/audit.md). */
  proofs: AuditProofs;
};

/**
 * An ISO-8601 date or date-time (`2026-12-01`, `2026-12-01T09:30:00Z`, with an offset or
 * fraction). Date.parse alone takes `1` or `tomorrow 12:00` in some form, and a caller who sent
 * those meant something else.
 */
const isoTimestamp =
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)?)?$/;

export const memberRoutes = (deps: MemberRouteDeps): Router => {
  const { incentives, queries } = deps;
  const waited = readAfter(deps.waitForReadModels);
  const router = Router();

  router.post('/programs/:programId/members', async (req, res) => {
    const input = parse(s.createMemberBody, req.body, res);
    if (!input) return;
    const programId = programOf(res);
    const outcome = await incentives.registerMember(programId, input, contextOf(res, programId));
    reply(res, outcome, 201, memberRegisteredView);
  });

  router.get('/programs/:programId/members', async (req, res) => {
    const filter = parse(s.membersQuery, req.query, res);
    if (!filter || !(await waited(req, res))) return;
    res.json(
      (await queries.members(programOf(res), filter)) satisfies Body<typeof r.memberListSchema>,
    );
  });

  router.get('/programs/:programId/members/:memberId', async (req, res) => {
    const memberId = idParam(req, res, 'memberId', 'member');
    if (!memberId) return;
    const query = parse(s.memberQuerySchema, req.query, res);
    if (!query || !(await waited(req, res))) return;
    if (query.as_of !== undefined) {
      const at = isoTimestamp.test(query.as_of) ? Date.parse(query.as_of) : Number.NaN;
      if (Number.isNaN(at))
        return sendError(res, 400, {
          code: 'validation_error',
          message: 'as_of must be an ISO-8601 timestamp',
          field: 'as_of',
        });
      const past = await memberAsOf(deps.history, programOf(res), memberId, new Date(at));
      if (!past)
        return sendError(res, 404, {
          code: 'member_not_found',
          message: `no member ${memberId} at ${query.as_of}`,
          field: 'member_id',
        });
      return res.json(past satisfies Body<typeof r.memberAsOfSchema>);
    }
    const view = await queries.member(programOf(res), memberId);
    if (!view)
      return sendError(res, 404, {
        code: 'member_not_found',
        message: `no member ${memberId}`,
        field: 'member_id',
      });
    res.json(view satisfies Body<typeof r.memberSchema>);
  });

  /**
   * The member's balance and ledger as of a moment, each of their events with its leaf and
   * inclusion proof against a signed checkpoint: checkable offline (audit verify-statement).
   */
  router.get('/programs/:programId/members/:memberId/statement', async (req, res) => {
    const memberId = idParam(req, res, 'memberId', 'member');
    if (!memberId) return;
    const query = parse(s.statementQuerySchema, req.query, res);
    if (!query) return;
    const at =
      query.as_of === undefined
        ? Date.now()
        : isoTimestamp.test(query.as_of)
          ? Date.parse(query.as_of)
          : Number.NaN;
    if (Number.isNaN(at))
      return sendError(res, 400, {
        code: 'validation_error',
        message: 'as_of must be an ISO-8601 timestamp',
        field: 'as_of',
      });
    const outcome = await deps.proofs.statement({
      programId: programOf(res),
      memberId,
      asOf: new Date(at),
    });
    if (outcome.ok) return res.json(outcome.statement satisfies Body<typeof r.statementSchema>);
    if (outcome.reason === 'unknown_member')
      return sendError(res, 404, {
        code: 'member_not_found',
        message: `no member ${memberId} at ${new Date(at).toISOString()}`,
        field: 'member_id',
      });
    res.set('Retry-After', '1');
    return sendError(res, 503, {
      code: 'not_yet_in_tree',
      message: "the member's latest events are not in the audit tree yet; retry in a moment",
    });
  });

  router.patch('/programs/:programId/members/:memberId', async (req, res) => {
    const memberId = idParam(req, res, 'memberId', 'member');
    if (!memberId) return;
    const body = parse(s.updateMemberBody, req.body, res);
    if (!body) return;
    const programId = programOf(res);
    const outcome = await incentives.updateMember(
      programId,
      memberId,
      body,
      contextOf(res, programId),
    );
    reply(res, outcome, 200, ({ state }): CommandView<typeof r.memberChangedSchema> => ({
      id: memberId,
      tier: state.tier,
      tier_locked_until: state.exists ? state.tierLockedUntil : null,
      status: state.active ? 'active' : 'deactivated',
    }));
  });

  for (const [action, active] of [
    ['deactivate', false],
    ['reactivate', true],
  ] as const) {
    router.post(`/programs/:programId/members/:memberId/${action}`, async (req, res) => {
      const memberId = idParam(req, res, 'memberId', 'member');
      if (!memberId || !parse(s.emptySchema, req.body, res)) return;
      const programId = programOf(res);
      const context = contextOf(res, programId);
      const outcome = active
        ? await incentives.reactivateMember(programId, memberId, context)
        : await incentives.deactivateMember(programId, memberId, context);
      reply(res, outcome, 200, (): CommandView<typeof r.memberStatusSchema> => ({
        id: memberId,
        status: active ? 'active' : 'deactivated',
      }));
    });
  }

  return router;
};
