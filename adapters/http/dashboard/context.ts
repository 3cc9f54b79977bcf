import type { Response } from 'express';
import type { NetworkPolicy } from '../../../delivery/ssrf.ts';
import type { Queries } from '../../../projections/queries.ts';
import type { ApiKeyStore } from '../../db/apiKeyStore.ts';
import type { DashboardQueries } from '../../db/dashboardQueries.ts';
import type { WebhookStore } from '../../webhooks/webhookStore.ts';
import type { ApiKeyVerifier } from '../../db/apiKeyVerifier.ts';
import type { AuthThrottle } from '../authThrottle.ts';
import { toHtmlString, type SafeHtml } from './html.ts';
import { base, page, type Shell } from './layout.ts';
import type { DashboardSession, SessionStore } from './sessions.ts';

export type DashboardDeps = {
  /** The dashboard's own aggregates (adapters/db/dashboardQueries.ts). */
  dashboardQueries: DashboardQueries;
  /** The API keys, as the API's key routes keep them. */
  apiKeys: ApiKeyStore;
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

/** What every section's router shares: its dependencies, the sessions and the page shell. */
export type DashboardContext = DashboardDeps & {
  clock: { now: () => Date };
  sessions: SessionStore;
  /** Sends a page as it is (no shell, no database read). */
  send: (res: Response, status: number, body: SafeHtml) => void;
  /** Renders a page in the shell, taking the session's one-time flash. */
  render: (
    res: Response,
    shell: Omit<Shell, 'session' | 'programName' | 'programs'>,
    body: SafeHtml,
    status?: number,
  ) => Promise<void>;
};

export const dashboardContext = (deps: DashboardDeps, sessions: SessionStore): DashboardContext => {
  const send = (res: Response, status: number, body: SafeHtml): void => {
    res.status(status).type('html').send(toHtmlString(body));
  };
  return {
    ...deps,
    clock: deps.clock ?? { now: () => new Date() },
    sessions,
    send,
    async render(res, shell, body, status = 200) {
      const session = (res.locals.session as DashboardSession | undefined) ?? null;
      let programName: string | null = null;
      let programs: { id: string; name: string }[] | null = null;
      if (session?.programId)
        programName = (await deps.queries.program(session.programId))?.name ?? null;
      if (session?.principal.kind === 'root') programs = await deps.dashboardQueries.programs();
      const flash = shell.flash ?? session?.flash ?? null;
      if (session) session.flash = null;
      send(res, status, page({ ...shell, session, programName, programs, flash }, body));
    },
  };
};

export const sessionOf = (res: Response): DashboardSession =>
  res.locals.session as DashboardSession;

/** The session's program, as the program guard checked it. */
export const programIdOf = (res: Response): string => res.locals.programId as string;

export const redirect = (res: Response, to: string): void => res.redirect(303, to);

/** A form field's value (the first, if sent twice), or '' when absent. */
export const formText = (body: unknown, name: string): string => {
  const value = (body as Record<string, unknown> | undefined)?.[name];
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  return '';
};

/** Every value a form sent under `name` (checkboxes). */
export const formList = (body: unknown, name: string): string[] => {
  const value = (body as Record<string, unknown> | undefined)?.[name];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
};

/** A path inside the dashboard to return to after sign-in, or null: never another origin. */
export const safeNext = (path: string): string | null =>
  /^\/dashboard\/[\w\-/.?=&%]*$/.test(path) && !path.includes('//') && path !== `${base}/`
    ? path
    : null;

/** A page-number cursor from a query parameter, or undefined when absent or not one. */
export const cursorParam = (value: unknown): string | undefined =>
  typeof value === 'string' && /^\d{1,15}$/.test(value) ? value : undefined;
