import { Router, type Request, type RequestHandler, type Response } from 'express';
import { isId } from '../../../domain/ids.ts';
import { adminKeyId } from '../../db/apiKeyVerifier.ts';
import { bearerToken, clientAddress } from '../api/auth.ts';
import { apiKeysBase, apiKeysPage, messagePage, programsPage, signInPage } from './accountPages.ts';
import {
  formText,
  programIdOf,
  redirect,
  safeNext,
  sessionOf,
  type DashboardContext,
} from './context.ts';
import { base } from './layout.ts';
import {
  clearCookie,
  cookiesOf,
  newToken,
  sameToken,
  sessionCookie,
  setCookie,
  signInCookie,
  type DashboardSession,
} from './sessions.ts';

/** Sign-in: the API key checked as the API checks it, failures counted with the API's. */
export const signInRoutes = (ctx: DashboardContext): Router => {
  const { sessions, dashboardQueries: dq } = ctx;
  const router = Router();

  const currentSession = (req: Request): DashboardSession | null =>
    sessions.get(cookiesOf(req).get(sessionCookie));

  const showSignIn = async (req: Request, res: Response, error: string | null, status: number) => {
    const token = newToken();
    setCookie(req, res, signInCookie, token, 15 * 60);
    const next = safeNext(
      req.method === 'GET' ? formText(req.query, 'next') : formText(req.body, 'next'),
    );
    await ctx.render(
      res,
      { title: 'Sign in', section: null },
      signInPage({ csrfToken: token, error, next }),
      status,
    );
  };

  router.get('/sign-in', async (req, res) => {
    if (currentSession(req)) return redirect(res, `${base}/`);
    await showSignIn(req, res, null, 200);
  });

  router.post('/sign-in', async (req, res) => {
    // Without a session, the form's token is checked against its own cookie (double submit).
    if (!sameToken(cookiesOf(req).get(signInCookie), formText(req.body, '_csrf')))
      return showSignIn(req, res, 'The form expired. Please sign in again.', 403);
    const address = clientAddress(req);
    const waitS = ctx.authThrottle.retryAfterS(address);
    if (waitS > 0) {
      res.set('Retry-After', String(waitS));
      return showSignIn(
        req,
        res,
        `Too many failed sign-ins from your address. Try again in ${waitS} ${waitS === 1 ? 'second' : 'seconds'}.`,
        429,
      );
    }
    // The same form as the API's bearer token; never a cached answer at sign-in.
    const key = bearerToken(`Bearer ${formText(req.body, 'api_key').trim()}`);
    const principal = key === null ? null : await ctx.keys.verify(key, { cached: false });
    if (!principal) {
      ctx.authThrottle.failed(address);
      return showSignIn(req, res, 'That API key is not valid.', 401);
    }
    ctx.authThrottle.succeeded(address);
    const programId =
      principal.kind === 'program' ? principal.programId : ((await dq.programs())[0]?.id ?? null);
    const previous = cookiesOf(req).get(sessionCookie);
    sessions.destroy(previous);
    const { token } = sessions.create(principal, programId);
    setCookie(req, res, sessionCookie, token, null);
    clearCookie(req, res, signInCookie);
    redirect(res, safeNext(formText(req.body, 'next')) ?? `${base}/`);
  });

  return router;
};

/**
 * Everything after it needs a session whose key still works; every POST after it needs the
 * session's CSRF token.
 */
export const sessionGuard =
  (ctx: DashboardContext): RequestHandler =>
  async (req, res, next) => {
    const token = cookiesOf(req).get(sessionCookie);
    const session = ctx.sessions.get(token);
    if (!session) {
      // A GET remembers where it was going (the failure e-mail links deep into the log).
      const back = req.method === 'GET' && safeNext(req.originalUrl);
      return redirect(
        res,
        back ? `${base}/sign-in?next=${encodeURIComponent(back)}` : `${base}/sign-in`,
      );
    }
    if (
      session.principal.keyId !== adminKeyId &&
      !(await ctx.dashboardQueries.apiKeyActive(session.principal.keyId))
    ) {
      ctx.sessions.destroyForKey(session.principal.keyId);
      return redirect(res, `${base}/sign-in`);
    }
    res.locals.session = session;
    if (req.method === 'POST' && !sameToken(formText(req.body, '_csrf'), session.csrfToken)) {
      return ctx.render(
        res,
        { title: 'Form expired', section: null },
        messagePage({
          message:
            'This form was not sent from the current session. Go back, reload, and try again.',
          back: `${base}/`,
        }),
        403,
      );
    }
    next();
  };

/** Signing out, the start page, and the root key's program switcher. */
export const accountRoutes = (ctx: DashboardContext): Router => {
  const { dashboardQueries: dq } = ctx;
  const router = Router();

  router.post('/sign-out', (req, res) => {
    ctx.sessions.destroy(cookiesOf(req).get(sessionCookie));
    clearCookie(req, res, sessionCookie);
    redirect(res, `${base}/sign-in`);
  });

  router.get('/', (_req, res) => {
    redirect(res, sessionOf(res).programId ? `${base}/overview` : `${base}/programs`);
  });

  const rootOnly: RequestHandler = async (_req, res, next) => {
    if (sessionOf(res).principal.kind === 'root') return next();
    await ctx.render(
      res,
      { title: 'Not available', section: null },
      messagePage({ message: 'Only the root key can switch programs.', back: `${base}/` }),
      403,
    );
  };

  router.get('/programs', rootOnly, async (_req, res) => {
    const session = sessionOf(res);
    await ctx.render(
      res,
      { title: 'Programs', section: 'programs' },
      programsPage({
        programs: await dq.programs(),
        current: session.programId,
        csrfToken: session.csrfToken,
      }),
    );
  });

  router.post('/program', rootOnly, async (req, res) => {
    const session = sessionOf(res);
    const programId = formText(req.body, 'program_id');
    if (isId('program', programId) && (await ctx.queries.program(programId))) {
      session.programId = programId;
      return redirect(res, `${base}/overview`);
    }
    session.flash = { kind: 'error', message: 'No such program.' };
    redirect(res, `${base}/programs`);
  });

  return router;
};

/**
 * The program pages need the session's program to still exist (a program key never changes
 * it). A root session without one (no program existed at sign-in) takes the first there is now.
 */
export const programGuard =
  (ctx: DashboardContext): RequestHandler =>
  async (_req, res, next) => {
    const session = sessionOf(res);
    if (session.programId === null && session.principal.kind === 'root')
      session.programId = (await ctx.dashboardQueries.programs())[0]?.id ?? null;
    const programId = session.programId;
    const program = programId ? await ctx.queries.program(programId) : null;
    if (!programId || !program) return redirect(res, `${base}/programs`);
    res.locals.programId = programId;
    res.locals.program = program;
    next();
  };

/** Settings -> API keys: the program's keys, and revoking one. */
export const apiKeyPageRoutes = (ctx: DashboardContext): Router => {
  const router = Router();

  router.get('/settings/api-keys', async (_req, res) => {
    const session = sessionOf(res);
    await ctx.render(
      res,
      { title: 'API keys', section: 'apiKeys', crumbs: [{ href: apiKeysBase, label: 'Settings' }] },
      apiKeysPage({
        keys: await ctx.apiKeys.list(programIdOf(res)),
        currentKeyId: session.principal.keyId,
        csrfToken: session.csrfToken,
      }),
    );
  });

  router.post('/settings/api-keys/:keyId/revoke', async (req, res, next) => {
    const keyId = req.params.keyId;
    if (typeof keyId !== 'string' || !isId('apiKey', keyId)) return next();
    if ((await ctx.apiKeys.revokeProgramKey(programIdOf(res), keyId)) === 'not_found')
      return next();
    ctx.keys.forget(keyId);
    // Sessions in this process end now; elsewhere on their next request (apiKeyActive).
    ctx.sessions.destroyForKey(keyId);
    if (sessionOf(res).principal.keyId === keyId) {
      clearCookie(req, res, sessionCookie);
      return redirect(res, `${base}/sign-in`);
    }
    sessionOf(res).flash = { kind: 'notice', message: `Key ${keyId} revoked.` };
    redirect(res, apiKeysBase);
  });

  return router;
};
