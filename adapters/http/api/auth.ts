import type { Request, RequestHandler, Response } from 'express';
import { sha256 } from '../../db/apiKeyStore.ts';
import { equalHex, type ApiKeyVerifier, type Principal } from '../../db/apiKeyVerifier.ts';
import type { AuthThrottle } from '../authThrottle.ts';
import { sendError, sendTooManyAttempts } from './errors.ts';

/** What a bearer header holds, or null when it is missing or not of the form. */
export const bearerToken = (header: string | undefined): string | null =>
  /^Bearer ([\x21-\x7e]{16,512})$/.exec(header ?? '')?.[1] ?? null;

/** The address a request came from, as the throttle counts it (express's trust proxy applies). */
export const clientAddress = (req: Request): string =>
  req.ip ?? req.socket.remoteAddress ?? 'unknown';

/**
 * Bearer-key authentication for the API. A missing or malformed header is 401 `unauthorized`;
 * a key that is unknown, wrong or revoked is 401 `invalid_api_key` and counts against the
 * caller's address, which after repeated failures gets 429 `too_many_attempts` (authThrottle.ts).
 */
export const authenticate = (keys: ApiKeyVerifier, throttle: AuthThrottle): RequestHandler => {
  return (req, res, next) => {
    const token = bearerToken(req.get('authorization'));
    if (token === null)
      return sendError(res, 401, {
        code: 'unauthorized',
        message: 'send an API key as "Authorization: Bearer <key>"',
      });
    const address = clientAddress(req);
    const waitS = throttle.retryAfterS(address);
    if (waitS > 0) return sendTooManyAttempts(res, waitS);
    keys
      .verify(token)
      .then((principal) => {
        if (!principal) {
          throttle.failed(address);
          return sendError(res, 401, {
            code: 'invalid_api_key',
            message: 'the API key is not valid or was revoked',
          });
        }
        throttle.succeeded(address);
        res.locals.principal = principal;
        next();
      })
      .catch(next);
  };
};

/**
 * One configured bearer token for a route (METRICS_TOKEN on /metrics); `null` leaves it open.
 * A wrong token counts against the address like a wrong API key.
 */
export const requireToken = (token: string | null, throttle: AuthThrottle): RequestHandler => {
  const expected = token === null ? null : sha256(token);
  return (req, res, next) => {
    if (expected === null) return next();
    const address = clientAddress(req);
    const waitS = throttle.retryAfterS(address);
    if (waitS > 0) return sendTooManyAttempts(res, waitS);
    const presented = bearerToken(req.get('authorization'));
    if (presented !== null && equalHex(sha256(presented), expected)) {
      throttle.succeeded(address);
      return next();
    }
    if (presented !== null) throttle.failed(address);
    res.set('WWW-Authenticate', 'Bearer realm="metrics"');
    sendError(res, 401, {
      code: 'unauthorized',
      message: 'send the metrics token as "Authorization: Bearer <token>"',
    });
  };
};

export const principalOf = (res: Response): Principal => res.locals.principal as Principal;

/** A program key may only touch its own program. */
export const canAccessProgram = (principal: Principal, programId: string): boolean =>
  principal.kind === 'root' || principal.programId === programId;
