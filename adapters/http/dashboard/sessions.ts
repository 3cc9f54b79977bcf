import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Principal } from '../../db/apiKeyVerifier.ts';

/**
 * A signed-in dashboard user. It holds the key's id and what the key may reach, never the key.
 * `programId` is the program being looked at: fixed for a program key, switchable for root.
 */
export type DashboardSession = {
  principal: Principal;
  programId: string | null;
  /** Per-session CSRF token, checked on every POST. */
  csrfToken: string;
  /** Shown once on the next page (a created or rotated secret, a notice), then dropped. */
  flash: Flash | null;
  createdAtMs: number;
  lastSeenAtMs: number;
};

export type Flash =
  | { kind: 'notice'; message: string }
  | { kind: 'error'; message: string }
  | { kind: 'secret'; message: string; endpointId: string; secret: string; label: string };

export const sessionCookie = 'incentable_dashboard';
/** The sign-in form's CSRF token lives in its own cookie (double submit): no session exists yet. */
export const signInCookie = 'incentable_dashboard_signin';

const idleMs = 2 * 60 * 60 * 1000;
const absoluteMs = 12 * 60 * 60 * 1000;
const maxSessions = 10_000;

export const newToken = (): string => randomBytes(32).toString('base64url');

const digest = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Compares two tokens in constant time; false for anything missing. */
export const sameToken = (a: unknown, b: unknown): boolean => {
  if (typeof a !== 'string' || typeof b !== 'string' || a.length === 0) return false;
  const x = Buffer.from(digest(a));
  const y = Buffer.from(digest(b));
  return timingSafeEqual(x, y);
};

/**
 * Sessions in this process's memory: a restart signs everyone out, and several API processes
 * behind one address need sticky sessions. The map is keyed by sha256 of the cookie value, so
 * a heap dump does not hand out live cookies. Idle sessions end after 2 h, every session after 12 h.
 */
export const createSessionStore = (clock: { now: () => Date }) => {
  const sessions = new Map<string, DashboardSession>();

  const expired = (s: DashboardSession, nowMs: number) =>
    nowMs - s.lastSeenAtMs > idleMs || nowMs - s.createdAtMs > absoluteMs;

  const sweep = (nowMs: number) => {
    for (const [key, s] of sessions) if (expired(s, nowMs)) sessions.delete(key);
  };

  return {
    create(
      principal: Principal,
      programId: string | null,
    ): { token: string; session: DashboardSession } {
      const nowMs = clock.now().getTime();
      if (sessions.size >= maxSessions) sweep(nowMs);
      const token = newToken();
      const session: DashboardSession = {
        principal,
        programId,
        csrfToken: newToken(),
        flash: null,
        createdAtMs: nowMs,
        lastSeenAtMs: nowMs,
      };
      sessions.set(digest(token), session);
      return { token, session };
    },

    get(token: string | undefined): DashboardSession | null {
      if (!token) return null;
      const key = digest(token);
      const session = sessions.get(key);
      if (!session) return null;
      const nowMs = clock.now().getTime();
      if (expired(session, nowMs)) {
        sessions.delete(key);
        return null;
      }
      session.lastSeenAtMs = nowMs;
      return session;
    },

    destroy(token: string | undefined): void {
      if (token) sessions.delete(digest(token));
    },

    /** Ends every session opened with this key (for a key found revoked). */
    destroyForKey(keyId: string): void {
      for (const [key, s] of sessions) if (s.principal.keyId === keyId) sessions.delete(key);
    },
  };
};

export type SessionStore = ReturnType<typeof createSessionStore>;

/** Cookies of the request, parsed by hand: one header, no dependency. */
export const cookiesOf = (req: Request): Map<string, string> => {
  const cookies = new Map<string, string>();
  for (const part of (req.get('cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    try {
      if (!cookies.has(name)) cookies.set(name, decodeURIComponent(value));
    } catch {
      // A malformed escape is someone else's cookie or a forgery: ignore it.
    }
  }
  return cookies;
};

/**
 * httpOnly (no script reads it), SameSite=Strict (no other site's page sends it), scoped to
 * /dashboard, and Secure whenever the request came over TLS (directly, or through a proxy
 * TRUST_PROXY trusts) or the app says so (`res.locals.secureCookies`: PUBLIC_URL is https, or
 * production). `maxAgeS` null makes a session cookie (gone when the browser closes).
 */
export const setCookie = (
  req: Request,
  res: Response,
  name: string,
  value: string,
  maxAgeS: number | null,
): void => {
  res.cookie(name, value, {
    path: '/dashboard',
    httpOnly: true,
    sameSite: 'strict',
    secure: req.secure || res.locals.secureCookies === true,
    // express takes milliseconds and sends Max-Age in seconds (with the matching Expires).
    ...(maxAgeS !== null && { maxAge: maxAgeS * 1000 }),
  });
};

/**
 * Ends a cookie with `Max-Age=0` (and the same attributes it was set with). Not
 * `res.clearCookie`: express 5's drops Max-Age and sends only an Expires date in 1970.
 */
export const clearCookie = (req: Request, res: Response, name: string): void =>
  setCookie(req, res, name, '', 0);
