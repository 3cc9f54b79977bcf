import { readFileSync } from 'node:fs';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { isDatabaseUnavailable } from '../../db/unavailable.ts';
import { messagePage } from './accountPages.ts';
import {
  accountRoutes,
  apiKeyPageRoutes,
  programGuard,
  sessionGuard,
  signInRoutes,
} from './accountRoutes.ts';
import { clientScript } from './clientScript.ts';
import { dashboardContext, type DashboardContext, type DashboardDeps } from './context.ts';
import { base, page } from './layout.ts';
import { membersRoutes } from './membersRoutes.ts';
import { overviewRoutes } from './overviewRoutes.ts';
import { createSessionStore } from './sessions.ts';
import { webhooksRoutes } from './webhooksRoutes.ts';

export type { DashboardDeps };

const staticFiles = {
  'dashboard.css': {
    type: 'text/css; charset=utf-8',
    body: readFileSync(new URL('./static/dashboard.css', import.meta.url)),
  },
  'dashboard.js': { type: 'text/javascript; charset=utf-8', body: Buffer.from(clientScript) },
} as const;

/**
 * Pages may load only this process's stylesheet and script: no inline script or style, no
 * frames, forms post only here. An escaping slip would still not run script.
 */
const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** A form that could not be read is a page saying so; a database outage a 503; the rest a 500. */
const errorPage =
  (ctx: DashboardContext) =>
  async (error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return ctx.render(
        res,
        { title: 'Request not understood', section: null },
        messagePage({ message: 'The request could not be read.', back: `${base}/` }),
        status,
      );
    }
    if (isDatabaseUnavailable(error)) {
      res.set('Retry-After', '1');
      return ctx.send(
        res,
        503,
        page(
          { title: 'Temporarily unavailable', session: null, section: null },
          messagePage({
            message:
              'The service is temporarily unavailable: its database cannot be reached. Please try again in a moment.',
            back: null,
          }),
        ),
      );
    }
    ctx.log.error({ err: error }, 'dashboard request failed');
    // A bare page: the shell itself reads the database, which may be what failed.
    ctx.send(
      res,
      500,
      page(
        { title: 'Something went wrong', session: null, section: null },
        messagePage({ message: 'Something went wrong on our side. Please try again.', back: null }),
      ),
    );
  };

/**
 * The admin dashboard at /dashboard: server-rendered pages over the same application services
 * the API uses (queries, the webhook store). Forms are urlencoded POSTs carrying the session's
 * CSRF token; every page works without script, which only adds Copy buttons and "select all".
 * One router per section, beside its pages; the order below is the order of the checks.
 */
export const dashboard = (deps: DashboardDeps): Router => {
  const ctx = dashboardContext(deps, createSessionStore(deps.clock ?? { now: () => new Date() }));
  const router = Router();

  router.use((_req, res, next) => {
    res.set({
      'Content-Security-Policy': contentSecurityPolicy,
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'same-origin',
      'Cache-Control': 'no-store',
    });
    next();
  });

  router.get('/static/:file', (req, res, next) => {
    const file = staticFiles[req.params.file as keyof typeof staticFiles] as
      (typeof staticFiles)[keyof typeof staticFiles] | undefined;
    if (!file) return next();
    res.set({ 'Content-Type': file.type, 'Cache-Control': 'public, max-age=300' });
    res.send(file.body);
  });

  router.use(express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 100 }));
  router.use(signInRoutes(ctx));
  router.use(sessionGuard(ctx));
  router.use(accountRoutes(ctx));
  router.use(programGuard(ctx));
  router.use(overviewRoutes(ctx));
  router.use(membersRoutes(ctx));
  router.use(apiKeyPageRoutes(ctx));
  router.use(webhooksRoutes(ctx));

  router.use(async (_req, res) => {
    await ctx.render(
      res,
      { title: 'Not found', section: null },
      messagePage({ message: 'There is nothing at this address.', back: `${base}/` }),
      404,
    );
  });
  router.use(errorPage(ctx));

  return router;
};
