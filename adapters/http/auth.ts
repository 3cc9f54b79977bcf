import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { sha256 } from './apiKeys.ts';
import { sendError } from './errors.ts';

/** Who is calling: the root key, or a key bound to one program. */
export type Principal =
  { kind: 'root'; keyId: string } | { kind: 'program'; programId: string; keyId: string };

const equalHex = (a: string, b: string): boolean =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * Bearer-key authentication. Verified keys are cached for a short while so a busy client does not
 * cost a query per request; a revoked key stops working within `cacheMs`.
 */
export const authenticate = (
  db: Kysely<Database>,
  options: { adminApiKey: string | null; cacheMs?: number },
): RequestHandler => {
  const adminHash = options.adminApiKey ? sha256(options.adminApiKey) : null;
  const cacheMs = options.cacheMs ?? 30_000;
  const cache = new Map<string, { principal: Principal; until: number }>();
  return (req, res, next) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer ([\x21-\x7e]{16,512})$/.exec(header);
    if (!match)
      return sendError(
        res,
        401,
        'unauthorized',
        'send an API key as "Authorization: Bearer <key>"',
      );
    const token = match[1]!;
    const tokenHash = sha256(token);
    const hit = cache.get(tokenHash);
    if (hit && hit.until > Date.now()) {
      res.locals.principal = hit.principal;
      return next();
    }
    if (adminHash && equalHex(tokenHash, adminHash)) {
      res.locals.principal = { kind: 'root', keyId: 'key_admin' } satisfies Principal;
      return next();
    }
    const dot = token.indexOf('.');
    const keyId = dot > 0 ? token.slice(0, dot) : '';
    const secret = dot > 0 ? token.slice(dot + 1) : '';
    db.selectFrom('api_keys')
      .select(['key_id', 'program_id', 'secret_sha256'])
      .where('key_id', '=', keyId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst()
      .then((row) => {
        if (!row || !equalHex(row.secret_sha256, sha256(secret))) {
          return sendError(res, 401, 'unauthorized', 'the API key is not valid');
        }
        const principal: Principal =
          row.program_id === null
            ? { kind: 'root', keyId: row.key_id }
            : { kind: 'program', programId: row.program_id, keyId: row.key_id };
        if (cache.size > 10_000) cache.clear();
        cache.set(tokenHash, { principal, until: Date.now() + cacheMs });
        res.locals.principal = principal;
        next();
      })
      .catch(next);
  };
};

export const principalOf = (res: Response): Principal => res.locals.principal as Principal;

/** A program key may only touch its own program. */
export const canAccessProgram = (principal: Principal, programId: string): boolean =>
  principal.kind === 'root' || principal.programId === programId;
