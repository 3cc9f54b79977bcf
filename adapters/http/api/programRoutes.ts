import { Router } from 'express';
import type { Incentives } from '../../../application/incentives.ts';
import { canAccessProgram, principalOf } from './auth.ts';
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
import { programCreatedView, programView } from './views.ts';

export type ProgramRouteDeps = { incentives: Incentives; waitForReadModels: WaitForReadModels };

/**
 * Runs before every route under a program: the id must be well formed, the key must reach the
 * program (403), and the program must exist (404). Sets res.locals.programId.
 */
export const programGuard = (incentives: Incentives): Router => {
  const router = Router();
  router.use('/programs/:programId', async (req, res, next) => {
    const programId = idParam(req, res, 'programId', 'program');
    if (!programId) return;
    if (!canAccessProgram(principalOf(res), programId))
      return sendError(res, 403, {
        code: 'forbidden',
        message: 'this key belongs to another program',
      });
    if (!(await incentives.programExists(programId)))
      return sendError(res, 404, {
        code: 'program_not_found',
        message: `no program ${programId}`,
        field: 'program_id',
      });
    res.locals.programId = programId;
    next();
  });
  return router;
};

export const programRoutes = (deps: ProgramRouteDeps): Router => {
  const { incentives } = deps;
  const waited = readAfter(deps.waitForReadModels);
  const router = Router();

  router.post('/programs', async (req, res) => {
    if (principalOf(res).kind !== 'root')
      return sendError(res, 403, {
        code: 'forbidden',
        message: 'only the root key creates programs',
      });
    const settings = parse(s.createProgramBody, req.body, res);
    if (!settings) return;
    const outcome = await incentives.createProgram(settings, contextOf(res, null));
    reply(res, outcome, 201, programCreatedView);
  });

  router.get('/programs/:programId', async (req, res) => {
    if (!(await waited(req, res))) return;
    const { state } = await incentives.loadProgram(programOf(res));
    if (!state.exists)
      return sendError(res, 404, { code: 'program_not_found', message: 'no such program' });
    res.json(programView(state));
  });

  router.patch('/programs/:programId', async (req, res) => {
    const changes = parse(s.updateProgramBody, req.body, res);
    if (!changes) return;
    const programId = programOf(res);
    const outcome = await incentives.updateProgram(programId, changes, contextOf(res, programId));
    reply(res, outcome, 200, ({ state }) => (state.exists ? programView(state) : {}));
  });

  return router;
};
