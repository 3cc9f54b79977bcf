import { timingSafeEqual } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { sha256 } from './apiKeyStore.ts';
import type { Database } from './schema.ts';

/** Who is calling: the root key, or a key bound to one program. */
export type Principal =
  { kind: 'root'; keyId: string } | { kind: 'program'; programId: string; keyId: string };

/** The id the configured ADMIN_API_KEY acts as: it has no row, so it is never listed or revoked. */
export const adminKeyId = 'key_admin';

/**
 * How long a verified key is trusted without asking the database again: the longest a key
 * revoked in another process keeps working here. The revoking process forgets it at once.
 */
export const verifiedKeyCacheMs = 5_000;

/**
 * Checks bearer keys against the api_keys table (and ADMIN_API_KEY). One per process, shared by
 * the API and the dashboard's sign-in, so a revocation through either clears the same cache.
 */
export type ApiKeyVerifier = {
  /** The principal `token` stands for, or null for a key that is unknown, wrong or revoked. */
  verify: (token: string, options?: { cached?: boolean }) => Promise<Principal | null>;
  /** Stops trusting a key in this process now (it was revoked). */
  forget: (keyId: string) => void;
};

/** Constant-time equality of two hex digests. */
export const equalHex = (a: string, b: string): boolean =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

export const apiKeyVerifier = (
  db: Kysely<Database>,
  options: { adminApiKey: string | null; cacheMs?: number },
): ApiKeyVerifier => {
  const adminHash = options.adminApiKey ? sha256(options.adminApiKey) : null;
  const cacheMs = options.cacheMs ?? verifiedKeyCacheMs;
  /** By sha256 of the whole token: a heap dump does not hand out keys. */
  const cache = new Map<string, { principal: Principal; untilMs: number }>();

  /**
   * last_used_at is written when the stored value is a minute old or more, and only on a cache
   * miss: at most one write per key per minute, however busy the key and however many
   * processes check it (the WHERE clause makes the second process's write a no-op).
   */
  const recordUse = async (keyId: string): Promise<void> => {
    await db
      .updateTable('api_keys')
      .set({ last_used_at: sql<string>`now()` })
      .where('key_id', '=', keyId)
      .where((eb) =>
        eb.or([
          eb('last_used_at', 'is', null),
          eb('last_used_at', '<', sql<Date>`now() - interval '1 minute'`),
        ]),
      )
      .execute();
  };

  const lookUp = async (token: string): Promise<Principal | null> => {
    if (adminHash && equalHex(sha256(token), adminHash)) return { kind: 'root', keyId: adminKeyId };
    const dot = token.indexOf('.');
    if (dot <= 0) return null;
    const row = await db
      .selectFrom('api_keys')
      .select([
        'key_id',
        'program_id',
        'secret_sha256',
        sql<boolean>`last_used_at is null or last_used_at < now() - interval '1 minute'`.as(
          'use_stale',
        ),
      ])
      .where('key_id', '=', token.slice(0, dot))
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (!row || !equalHex(row.secret_sha256, sha256(token.slice(dot + 1)))) return null;
    // Bookkeeping, not authentication: a failed write must not turn a good key away.
    if (row.use_stale) await recordUse(row.key_id).catch(() => {});
    return row.program_id === null
      ? { kind: 'root', keyId: row.key_id }
      : { kind: 'program', programId: row.program_id, keyId: row.key_id };
  };

  return {
    async verify(token, { cached = true } = {}) {
      const tokenHash = sha256(token);
      const hit = cache.get(tokenHash);
      if (cached && hit && hit.untilMs > Date.now()) return hit.principal;
      const principal = await lookUp(token);
      if (!principal) {
        cache.delete(tokenHash);
        return null;
      }
      if (principal.keyId !== adminKeyId && cacheMs > 0) {
        if (cache.size > 10_000) cache.clear();
        cache.set(tokenHash, { principal, untilMs: Date.now() + cacheMs });
      }
      return principal;
    },
    forget(keyId) {
      for (const [tokenHash, entry] of cache)
        if (entry.principal.keyId === keyId) cache.delete(tokenHash);
    },
  };
};
