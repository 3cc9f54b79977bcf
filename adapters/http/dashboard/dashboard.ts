import { isDatabaseUnavailable } from '../../db/unavailable.ts';
import { readFileSync } from 'node:fs';
import express, {
  Router,
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import type { Kysely } from 'kysely';
import { isWebhookEventType, webhookEventTypes } from '../../../delivery/catalogue.ts';
import { validateEndpointUrl, type NetworkPolicy } from '../../../delivery/ssrf.ts';
import { isId } from '../../../domain/ids.ts';
import { dashboardQueries } from '../../db/dashboardQueries.ts';
import type { Queries } from '../../../projections/queries.ts';
import { tierReevaluations } from '../../../application/jobs.ts';
import type { ApplicationTables } from '../../../application/policyTables.ts';
import { tablesOf } from '../../db/schema.ts';
import type { Database } from '../../db/schema.ts';
import type { WebhookStore } from '../../webhooks/webhookStore.ts';
import { adminKeyId, bearerToken, clientAddress, type ApiKeyVerifier } from '../api/auth.ts';
import type { AuthThrottle } from '../authThrottle.ts';
import { wireString } from '../api/schemas.ts';
import { createEndpointSchema, updateEndpointSchema } from '../api/webhookRoutes.ts';
import { listApiKeys, revokeProgramKey } from '../../db/apiKeyStore.ts';
import { apiKeysBase, apiKeysPage, messagePage, programsPage, signInPage } from './accountPages.ts';
import { clientScript } from './clientScript.ts';
import { toHtmlString, type SafeHtml } from './html.ts';
import { base, page, type Shell } from './layout.ts';
import { memberPage, membersPage } from './membersPages.ts';
import { overviewPage } from './overviewPage.ts';
import {
  createSessionStore,
  clearCookie,
  cookiesOf,
  newToken,
  sameToken,
  sessionCookie,
  setCookie,
  signInCookie,
  type DashboardSession,
} from './sessions.ts';
import {
  deleteConfirmPage,
  deliveryHref,
  deliveryPage,
  endpointForm,
  endpointHref,
  endpointPage,
  webhooksBase,
  webhooksPage,
  type EndpointFormValues,
  type FormError,
} from './webhookPages.ts';

export type DashboardDeps = {
  db: Kysely<Database>;
  queries: Queries;
  webhooks: WebhookStore;
  network: NetworkPolicy;
  wakeDelivery: () => void;
  /** The API's own key check, so the dashboard accepts exactly the keys the API accepts. */
  keys: ApiKeyVerifier;
  /** The API's failed-key backoff: failed sign-ins count with failed API calls. */
  authThrottle: AuthThrottle;
  log: { error: (details: object, message: string) => void };
  /** Windows ("last 30 days") are measured from here; the system clock unless a test sets one. */
  clock?: { now: () => Date };
};

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

const dayMs = 24 * 60 * 60 * 1000;

const sessionOf = (res: Response): DashboardSession => res.locals.session as DashboardSession;
const programIdOf = (res: Response): string => res.locals.programId as string;

const formText = (body: unknown, name: string): string => {
  const value = (body as Record<string, unknown> | undefined)?.[name];
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  return '';
};

const formList = (body: unknown, name: string): string[] => {
  const value = (body as Record<string, unknown> | undefined)?.[name];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
};

/** "Select all" stands for every type in the catalogue, so the form works without script. */
const endpointValues = (body: unknown): EndpointFormValues => ({
  url: formText(body, 'url').trim(),
  description: formText(body, 'description').replace(/\r\n/g, '\n').trim(),
  events:
    formText(body, 'all_events') === 'on'
      ? [...webhookEventTypes]
      : formList(body, 'events').filter(isWebhookEventType),
});

/** A path inside the dashboard to return to after sign-in, or null: never another origin. */
const safeNext = (path: string): string | null =>
  /^\/dashboard\/[\w\-/.?=&%]*$/.test(path) && !path.includes('//') && path !== `${base}/`
    ? path
    : null;

const firstIssue = (issues: { path: PropertyKey[]; message: string }[]): FormError => {
  const issue = issues[0];
  const field = issue?.path[0];
  if (field === 'events') return { field, message: 'Select at least one event.' };
  if (field === 'url') return { field, message: 'Enter the endpoint URL.' };
  if (field === 'description')
    return { field, message: `Description ${issue?.message ?? 'is not valid'}.` };
  return { field: null, message: issue?.message ?? 'The form is not valid.' };
};

/**
 * The admin dashboard at /dashboard: server-rendered pages over the same application services
 * the API uses (queries, the webhook store). Forms are urlencoded POSTs carrying the session's
 * CSRF token; every page works without script, which only adds Copy buttons and "select all".
 */
export const dashboard = (deps: DashboardDeps): Router => {
  const clock = deps.clock ?? { now: () => new Date() };
  const sessions = createSessionStore(clock);
  const dq = dashboardQueries(deps.db);
  const router = Router();

  const send = (res: Response, status: number, body: SafeHtml): void => {
    res.status(status).type('html').send(toHtmlString(body));
  };

  /** Renders a page in the shell, taking the session's one-time flash. */
  const render = async (
    req: Request,
    res: Response,
    shell: Omit<Shell, 'session' | 'programName' | 'programs'>,
    body: SafeHtml,
    status = 200,
  ): Promise<void> => {
    const session = (res.locals.session as DashboardSession | undefined) ?? null;
    let programName: string | null = null;
    let programs: { id: string; name: string }[] | null = null;
    if (session?.programId)
      programName = (await deps.queries.program(session.programId))?.name ?? null;
    if (session?.principal.kind === 'root') programs = await dq.programs();
    const flash = shell.flash ?? session?.flash ?? null;
    if (session) session.flash = null;
    send(res, status, page({ ...shell, session, programName, programs, flash }, body));
  };

  const redirect = (res: Response, to: string) => res.redirect(303, to);

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

  const currentSession = (req: Request): DashboardSession | null =>
    sessions.get(cookiesOf(req).get(sessionCookie));

  const showSignIn = async (req: Request, res: Response, error: string | null, status: number) => {
    const token = newToken();
    setCookie(req, res, signInCookie, token, 15 * 60);
    const next = safeNext(
      req.method === 'GET' ? formText(req.query, 'next') : formText(req.body, 'next'),
    );
    await render(
      req,
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
    const waitS = deps.authThrottle.retryAfterS(address);
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
    const principal = key === null ? null : await deps.keys.verify(key, { cached: false });
    if (!principal) {
      deps.authThrottle.failed(address);
      return showSignIn(req, res, 'That API key is not valid.', 401);
    }
    deps.authThrottle.succeeded(address);
    const programId =
      principal.kind === 'program' ? principal.programId : ((await dq.programs())[0]?.id ?? null);
    const previous = cookiesOf(req).get(sessionCookie);
    sessions.destroy(previous);
    const { token } = sessions.create(principal, programId);
    setCookie(req, res, sessionCookie, token, null);
    clearCookie(req, res, signInCookie);
    redirect(res, safeNext(formText(req.body, 'next')) ?? `${base}/`);
  });

  // Everything below needs a session; every POST below needs its CSRF token.
  router.use(async (req, res, next) => {
    const token = cookiesOf(req).get(sessionCookie);
    const session = sessions.get(token);
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
      !(await dq.apiKeyActive(session.principal.keyId))
    ) {
      sessions.destroyForKey(session.principal.keyId);
      return redirect(res, `${base}/sign-in`);
    }
    res.locals.session = session;
    if (req.method === 'POST' && !sameToken(formText(req.body, '_csrf'), session.csrfToken)) {
      return render(
        req,
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
  });

  router.post('/sign-out', (req, res) => {
    sessions.destroy(cookiesOf(req).get(sessionCookie));
    clearCookie(req, res, sessionCookie);
    redirect(res, `${base}/sign-in`);
  });

  router.get('/', (_req, res) => {
    redirect(res, sessionOf(res).programId ? `${base}/overview` : `${base}/programs`);
  });

  const rootOnly: RequestHandler = async (req, res, next) => {
    if (sessionOf(res).principal.kind === 'root') return next();
    await render(
      req,
      res,
      { title: 'Not available', section: null },
      messagePage({ message: 'Only the root key can switch programs.', back: `${base}/` }),
      403,
    );
  };

  router.get('/programs', rootOnly, async (req, res) => {
    const session = sessionOf(res);
    await render(
      req,
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
    if (isId('program', programId) && (await deps.queries.program(programId))) {
      session.programId = programId;
      return redirect(res, `${base}/overview`);
    }
    session.flash = { kind: 'error', message: 'No such program.' };
    redirect(res, `${base}/programs`);
  });

  // Program pages: the session's program must still exist (a program key never changes it).
  // A root session without one (no program existed at sign-in) takes the first there is now.
  router.use(async (req, res, next) => {
    const session = sessionOf(res);
    if (session.programId === null && session.principal.kind === 'root')
      session.programId = (await dq.programs())[0]?.id ?? null;
    const programId = session.programId;
    const program = programId ? await deps.queries.program(programId) : null;
    if (!programId || !program) return redirect(res, `${base}/programs`);
    res.locals.programId = programId;
    res.locals.program = program;
    next();
  });

  router.get('/overview', async (req, res) => {
    const programId = programIdOf(res);
    const program = res.locals.program as NonNullable<Awaited<ReturnType<Queries['program']>>>;
    const now = clock.now();
    const since30 = new Date(now.getTime() - 30 * dayMs);
    const [members, points, perDay, deliveries, [reevaluation]] = await Promise.all([
      dq.memberCount(programId),
      dq.pointsSince(programId, since30),
      dq.awardedPerDay(programId, since30, program.timezone),
      dq.deliveriesSince(programId, new Date(now.getTime() - dayMs)),
      tierReevaluations(tablesOf<ApplicationTables>(deps.db), { programId, running: true }),
    ]);
    // Thirty bars, one per UTC calendar day, zero where nothing was awarded.
    const byDay = new Map(perDay.map((d) => [d.day, d.points]));
    const days = Array.from({ length: 30 }, (_, i) => {
      const day = new Date(now.getTime() - (29 - i) * dayMs).toISOString().slice(0, 10);
      return { day, value: byDay.get(day) ?? 0 };
    });
    await render(
      req,
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

  router.get('/members', async (req, res) => {
    // The API's rule for every string: NUL or an unpaired surrogate is a 400, not a failed query.
    if (typeof req.query.q === 'string' && !wireString().safeParse(req.query.q).success)
      throw Object.assign(new Error('q is not well-formed text'), { status: 400 });
    const q = typeof req.query.q === 'string' ? req.query.q.trim().slice(0, 200) : '';
    const cursor =
      typeof req.query.cursor === 'string' && /^\d{1,15}$/.test(req.query.cursor)
        ? req.query.cursor
        : undefined;
    const page = await deps.queries.members(programIdOf(res), {
      limit: 50,
      ...(q && { q }),
      ...(cursor && { cursor }),
    });
    await render(
      req,
      res,
      { title: 'Members', section: 'members' },
      membersPage({ q, members: page.data, nextCursor: page.next_cursor }),
    );
  });

  router.get('/members/:memberId', async (req, res, next) => {
    const memberId = req.params.memberId;
    if (!isId('member', memberId)) return next();
    const programId = programIdOf(res);
    const member = await deps.queries.member(programId, memberId);
    if (!member) return next();
    const cursor =
      typeof req.query.ledger_cursor === 'string' && /^\d{1,15}$/.test(req.query.ledger_cursor)
        ? req.query.ledger_cursor
        : undefined;
    const [ledger, orders] = await Promise.all([
      deps.queries.ledger(programId, memberId, { limit: 50, ...(cursor && { cursor }) }),
      deps.queries.memberOrders(programId, memberId),
    ]);
    await render(
      req,
      res,
      {
        title: member.name,
        section: 'members',
        crumbs: [{ href: `${base}/members`, label: 'Members' }],
      },
      memberPage({ member, ledger, orders }),
    );
  });

  router.get('/settings/api-keys', async (req, res) => {
    const session = sessionOf(res);
    await render(
      req,
      res,
      { title: 'API keys', section: 'apiKeys', crumbs: [{ href: apiKeysBase, label: 'Settings' }] },
      apiKeysPage({
        keys: await listApiKeys(deps.db, programIdOf(res)),
        currentKeyId: session.principal.keyId,
        csrfToken: session.csrfToken,
      }),
    );
  });

  router.post('/settings/api-keys/:keyId/revoke', async (req, res, next) => {
    const keyId = req.params.keyId;
    if (typeof keyId !== 'string' || !isId('apiKey', keyId)) return next();
    if ((await revokeProgramKey(deps.db, programIdOf(res), keyId)) === 'not_found') return next();
    deps.keys.forget(keyId);
    // Sessions in this process end now; elsewhere on their next request (apiKeyActive).
    sessions.destroyForKey(keyId);
    if (sessionOf(res).principal.keyId === keyId) {
      clearCookie(req, res, sessionCookie);
      return redirect(res, `${base}/sign-in`);
    }
    sessionOf(res).flash = { kind: 'notice', message: `Key ${keyId} revoked.` };
    redirect(res, apiKeysBase);
  });

  router.get('/settings/webhooks', async (req, res) => {
    const programId = programIdOf(res);
    const [endpoints, health, notifications] = await Promise.all([
      deps.webhooks.listEndpoints(programId),
      dq.endpointHealth(programId),
      dq.failureNotifications(programId),
    ]);
    await render(
      req,
      res,
      {
        title: 'Webhooks',
        section: 'webhooks',
        crumbs: [{ href: webhooksBase, label: 'Settings' }],
      },
      webhooksPage({ endpoints, health, notifications }),
    );
  });

  const webhookCrumbs = [{ href: webhooksBase, label: 'Webhooks' }];

  const showForm = async (
    req: Request,
    res: Response,
    options: {
      title: string;
      action: string;
      submitLabel: string;
      cancelHref: string;
      values: EndpointFormValues;
      error: FormError | null;
    },
  ) => {
    await render(
      req,
      res,
      { title: options.title, section: 'webhooks', crumbs: webhookCrumbs },
      endpointForm({ ...options, csrfToken: sessionOf(res).csrfToken }),
      options.error ? 400 : 200,
    );
  };

  /** The API's own rules (schema and URL policy), as a form error instead of a JSON 400. */
  const checkEndpoint = (values: EndpointFormValues, partial: boolean): FormError | null => {
    const schema = partial ? updateEndpointSchema : createEndpointSchema;
    const parsed = schema.safeParse(values);
    if (!parsed.success) return firstIssue(parsed.error.issues);
    const url = validateEndpointUrl(values.url, deps.network);
    return url.ok ? null : { field: 'url', message: url.message };
  };

  router.get('/settings/webhooks/new', async (req, res) => {
    await showForm(req, res, {
      title: 'Add Endpoint',
      action: webhooksBase,
      submitLabel: 'Save endpoint',
      cancelHref: webhooksBase,
      values: { url: '', description: '', events: [] },
      error: null,
    });
  });

  router.post('/settings/webhooks', async (req, res) => {
    const values = endpointValues(req.body);
    const error = checkEndpoint(values, false);
    if (error)
      return showForm(req, res, {
        title: 'Add Endpoint',
        action: webhooksBase,
        submitLabel: 'Save endpoint',
        cancelHref: webhooksBase,
        values,
        error,
      });
    const { endpoint, secret } = await deps.webhooks.createEndpoint({
      programId: programIdOf(res),
      url: values.url,
      events: values.events,
      description: values.description,
    });
    sessionOf(res).flash = {
      kind: 'secret',
      message: 'Endpoint saved.',
      endpointId: endpoint.endpointId,
      secret,
      label: 'Your webhook secret',
    };
    redirect(res, endpointHref(endpoint.endpointId));
  });

  /** Loads the endpoint named in the path, in the session's program, or falls through to 404. */
  const endpointParam = async (req: Request, res: Response) => {
    const endpointId = req.params.endpointId;
    if (typeof endpointId !== 'string' || !isId('webhookEndpoint', endpointId)) return null;
    return deps.webhooks.getEndpoint(programIdOf(res), endpointId);
  };

  const showEndpoint = async (
    req: Request,
    res: Response,
    secret: { value: string; label: string; hint: string } | null,
  ) => {
    const programId = programIdOf(res);
    const endpoint = await endpointParam(req, res);
    if (!endpoint) return false;
    const session = sessionOf(res);
    const flash = session.flash;
    let shown = secret;
    if (flash?.kind === 'secret' && flash.endpointId === endpoint.endpointId) {
      shown = {
        value: flash.secret,
        label: flash.label,
        hint: 'Copy it into your receiver now. You can reveal it again here later.',
      };
      session.flash = { kind: 'notice', message: flash.message };
    }
    const cursor = typeof req.query.cursor === 'string' ? req.query.cursor.slice(0, 200) : null;
    const [page, health] = await Promise.all([
      deps.webhooks.listDeliveries({
        programId,
        endpointId: endpoint.endpointId,
        cursor,
        limit: 20,
      }),
      dq.endpointHealth(programId),
    ]);
    const deliveries = (
      await Promise.all(page.items.map((d) => deps.webhooks.getDelivery(programId, d.deliveryId)))
    ).filter((d) => d !== null);
    const testType =
      typeof req.query.type === 'string' && isWebhookEventType(req.query.type)
        ? req.query.type
        : (endpoint.events.find(isWebhookEventType) ?? 'points.awarded');
    await render(
      req,
      res,
      { title: endpoint.description || endpoint.url, section: 'webhooks', crumbs: webhookCrumbs },
      endpointPage({
        endpoint,
        csrfToken: session.csrfToken,
        health: health.get(endpoint.endpointId),
        secret: shown,
        deliveries,
        nextCursor: page.nextCursor,
        testType,
        now: clock.now(),
      }),
    );
    return true;
  };

  router.get('/settings/webhooks/:endpointId', async (req, res, next) => {
    if (!(await showEndpoint(req, res, null))) next();
  });

  router.post('/settings/webhooks/:endpointId/reveal', async (req, res, next) => {
    const endpoint = await endpointParam(req, res);
    if (!endpoint) return next();
    const secret = await deps.webhooks.revealSecret(programIdOf(res), endpoint.endpointId);
    if (secret === null) return next();
    await showEndpoint(req, res, {
      value: secret,
      label: 'Webhook secret',
      hint: 'Anyone with this secret can sign requests as Incentable: keep it out of logs and code.',
    });
  });

  router.post('/settings/webhooks/:endpointId/rotate', async (req, res, next) => {
    const endpoint = await endpointParam(req, res);
    if (!endpoint) return next();
    const rotated = await deps.webhooks.rotateSecret(programIdOf(res), endpoint.endpointId);
    if (!rotated) return next();
    sessionOf(res).flash = {
      kind: 'secret',
      message: 'Secret rotated. The previous secret keeps signing for 24 hours.',
      endpointId: endpoint.endpointId,
      secret: rotated.secret,
      label: 'New webhook secret',
    };
    redirect(res, endpointHref(endpoint.endpointId));
  });

  router.post('/settings/webhooks/:endpointId/enabled', async (req, res, next) => {
    const endpoint = await endpointParam(req, res);
    if (!endpoint) return next();
    const enabled = formText(req.body, 'enabled') === 'true';
    await deps.webhooks.updateEndpoint(programIdOf(res), endpoint.endpointId, { enabled });
    // Deliveries held back while disabled may go now.
    if (enabled) deps.wakeDelivery();
    sessionOf(res).flash = {
      kind: 'notice',
      message: enabled ? 'Endpoint enabled.' : 'Endpoint disabled.',
    };
    redirect(res, endpointHref(endpoint.endpointId));
  });

  router.get('/settings/webhooks/:endpointId/edit', async (req, res, next) => {
    const endpoint = await endpointParam(req, res);
    if (!endpoint) return next();
    const href = endpointHref(endpoint.endpointId);
    await showForm(req, res, {
      title: 'Edit endpoint',
      action: `${href}/edit`,
      submitLabel: 'Save changes',
      cancelHref: href,
      values: { url: endpoint.url, description: endpoint.description, events: endpoint.events },
      error: null,
    });
  });

  router.post('/settings/webhooks/:endpointId/edit', async (req, res, next) => {
    const endpoint = await endpointParam(req, res);
    if (!endpoint) return next();
    const href = endpointHref(endpoint.endpointId);
    const values = endpointValues(req.body);
    const error = checkEndpoint(values, true);
    if (error)
      return showForm(req, res, {
        title: 'Edit endpoint',
        action: `${href}/edit`,
        submitLabel: 'Save changes',
        cancelHref: href,
        values,
        error,
      });
    await deps.webhooks.updateEndpoint(programIdOf(res), endpoint.endpointId, values);
    sessionOf(res).flash = { kind: 'notice', message: 'Endpoint saved.' };
    redirect(res, href);
  });

  router.get('/settings/webhooks/:endpointId/delete', async (req, res, next) => {
    const endpoint = await endpointParam(req, res);
    if (!endpoint) return next();
    await render(
      req,
      res,
      { title: 'Delete endpoint', section: 'webhooks', crumbs: webhookCrumbs },
      deleteConfirmPage({ endpoint, csrfToken: sessionOf(res).csrfToken }),
    );
  });

  router.post('/settings/webhooks/:endpointId/delete', async (req, res, next) => {
    const endpoint = await endpointParam(req, res);
    if (!endpoint) return next();
    await deps.webhooks.deleteEndpoint(programIdOf(res), endpoint.endpointId);
    sessionOf(res).flash = { kind: 'notice', message: `Endpoint ${endpoint.url} deleted.` };
    redirect(res, webhooksBase);
  });

  router.post('/settings/webhooks/:endpointId/test', async (req, res, next) => {
    const endpoint = await endpointParam(req, res);
    if (!endpoint) return next();
    const type = formText(req.body, 'type');
    const href = endpointHref(endpoint.endpointId);
    if (!isWebhookEventType(type)) {
      sessionOf(res).flash = { kind: 'error', message: 'Choose an event type.' };
      return redirect(res, href);
    }
    const queued = await deps.webhooks.enqueueTest(programIdOf(res), endpoint.endpointId, type);
    if (!queued) return next();
    deps.wakeDelivery();
    sessionOf(res).flash = {
      kind: 'notice',
      message: `Test event ${type} queued (${queued.envelopeId}). Refresh the log to see the attempt.`,
    };
    redirect(res, `${href}?type=${encodeURIComponent(type)}`);
  });

  router.get('/settings/webhooks/:endpointId/deliveries/:deliveryId', async (req, res, next) => {
    const endpoint = await endpointParam(req, res);
    const deliveryId = req.params.deliveryId;
    if (!endpoint || !isId('webhookDelivery', deliveryId)) return next();
    const entry = await deps.webhooks.getDelivery(programIdOf(res), deliveryId);
    if (!entry || entry.delivery.endpointId !== endpoint.endpointId) return next();
    await render(
      req,
      res,
      {
        title: `Delivery ${deliveryId}`,
        section: 'webhooks',
        crumbs: [
          ...webhookCrumbs,
          { href: endpointHref(endpoint.endpointId), label: endpoint.description || endpoint.url },
        ],
      },
      deliveryPage({ entry, csrfToken: sessionOf(res).csrfToken }),
    );
  });

  // The failure e-mail (deliveryWorker) links here.
  router.get('/webhooks/:endpointId/deliveries/:deliveryId', (req, res, next) => {
    const { endpointId, deliveryId } = req.params;
    if (!isId('webhookEndpoint', endpointId) || !isId('webhookDelivery', deliveryId)) return next();
    redirect(res, deliveryHref(endpointId, deliveryId));
  });

  router.post(
    '/settings/webhooks/:endpointId/deliveries/:deliveryId/resend',
    async (req, res, next) => {
      const endpoint = await endpointParam(req, res);
      const deliveryId = req.params.deliveryId;
      if (!endpoint || !isId('webhookDelivery', deliveryId)) return next();
      const programId = programIdOf(res);
      const found = await deps.webhooks.getDelivery(programId, deliveryId);
      if (!found || found.delivery.endpointId !== endpoint.endpointId) return next();
      const queued = await deps.webhooks.redeliver(programId, deliveryId);
      if (!queued) return next();
      deps.wakeDelivery();
      sessionOf(res).flash = {
        kind: 'notice',
        message: `Resend of ${found.envelope.envelopeId} queued as ${queued.deliveryId}.`,
      };
      redirect(res, endpointHref(endpoint.endpointId));
    },
  );

  router.use(async (req, res) => {
    await render(
      req,
      res,
      { title: 'Not found', section: null },
      messagePage({ message: 'There is nothing at this address.', back: `${base}/` }),
      404,
    );
  });

  router.use(async (error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return render(
        req,
        res,
        { title: 'Request not understood', section: null },
        messagePage({ message: 'The request could not be read.', back: `${base}/` }),
        status,
      );
    }
    if (isDatabaseUnavailable(error)) {
      res.set('Retry-After', '1');
      return send(
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
    deps.log.error({ err: error }, 'dashboard request failed');
    // A bare page: the shell itself reads the database, which may be what failed.
    send(
      res,
      500,
      page(
        { title: 'Something went wrong', session: null, section: null },
        messagePage({ message: 'Something went wrong on our side. Please try again.', back: null }),
      ),
    );
  });

  return router;
};
