import { createHash, randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.ts';
import { newId } from '../ids.ts';

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * Serialises every change to the set of active root keys across processes: the first start's
 * check-then-insert, and the CLI's "never revoke the last one". Transaction-scoped, so it cannot
 * outlive the work it guards (a dropped connection ends the transaction and frees it).
 */
const lockRootKeys = async (tx: Kysely<Database>): Promise<void> => {
  await sql`select pg_advisory_xact_lock(hashtextextended('incentable.root_keys', 0))`.execute(tx);
};

/** A key is `<key id>.<secret>`; only sha256(secret) is stored, the secret is shown once. */
export const createApiKey = async (
  db: Kysely<Database>,
  input: { programId: string | null; label: string | null },
): Promise<{ id: string; key: string }> => {
  const keyId = newId('apiKey');
  const secret = randomBytes(32).toString('base64url');
  await db
    .insertInto('api_keys')
    .values({
      key_id: keyId,
      program_id: input.programId,
      secret_sha256: sha256(secret),
      label: input.label,
    })
    .execute();
  return { id: keyId, key: `${keyId}.${secret}` };
};

/**
 * Makes sure a root key exists. With ADMIN_API_KEY configured that value is the root key; without
 * it, the first start generates one and returns it so the caller can print it once. Several
 * processes starting at once on an empty database make one key between them: the check and the
 * insert run under the root-key lock.
 */
export const ensureRootKey = async (
  db: Kysely<Database>,
  configured: string | null,
): Promise<string | null> => {
  if (configured) return null;
  return db.transaction().execute(async (tx) => {
    await lockRootKeys(tx);
    const existing = await tx
      .selectFrom('api_keys')
      .select('key_id')
      .where('program_id', 'is', null)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (existing) return null;
    return (await createApiKey(tx, { programId: null, label: 'root (generated on first start)' }))
      .key;
  });
};

/** A key as lists show it: never its secret or the secret's hash. */
export type ApiKeyView = {
  id: string;
  label: string | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
};

/** A program's keys, or the root keys for `null`, oldest first; revoked ones included. */
export const listApiKeys = async (
  db: Kysely<Database>,
  programId: string | null,
): Promise<ApiKeyView[]> => {
  const rows = await db
    .selectFrom('api_keys')
    .select(['key_id', 'label', 'created_at', 'last_used_at', 'revoked_at'])
    .where('program_id', programId === null ? 'is' : '=', programId)
    .orderBy('created_at')
    .orderBy('key_id')
    .execute();
  return rows.map((r) => ({
    id: r.key_id,
    label: r.label,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
  }));
};

/**
 * Revokes one of a program's keys. Revoking a revoked key changes nothing (its first revocation
 * time stays) and is not an error; a key of another program, or a root key, is not found here.
 */
export const revokeProgramKey = async (
  db: Kysely<Database>,
  programId: string,
  keyId: string,
): Promise<'revoked' | 'not_found'> => {
  const row = await db
    .updateTable('api_keys')
    .set({ revoked_at: sql<string>`coalesce(revoked_at, now())` })
    .where('key_id', '=', keyId)
    .where('program_id', '=', programId)
    .returning('key_id')
    .executeTakeFirst();
  return row ? 'revoked' : 'not_found';
};

export type RootKeyRevocation =
  | { outcome: 'revoked' }
  | { outcome: 'already_revoked'; revokedAt: Date }
  | { outcome: 'not_found' }
  | { outcome: 'program_key'; programId: string }
  | { outcome: 'last_root_key' };

/**
 * Revokes a root key (program_id null), unless it is the last active one: that would leave only
 * ADMIN_API_KEY, if one is configured, and no way in without it. Under the root-key lock, so two
 * revocations at once cannot each leave the other as the last.
 */
export const revokeRootKey = async (
  db: Kysely<Database>,
  keyId: string,
): Promise<RootKeyRevocation> =>
  db.transaction().execute(async (tx): Promise<RootKeyRevocation> => {
    await lockRootKeys(tx);
    const key = await tx
      .selectFrom('api_keys')
      .select(['program_id', 'revoked_at'])
      .where('key_id', '=', keyId)
      .executeTakeFirst();
    if (!key) return { outcome: 'not_found' };
    if (key.program_id !== null) return { outcome: 'program_key', programId: key.program_id };
    if (key.revoked_at) return { outcome: 'already_revoked', revokedAt: key.revoked_at };
    const others = await tx
      .selectFrom('api_keys')
      .select('key_id')
      .where('program_id', 'is', null)
      .where('revoked_at', 'is', null)
      .where('key_id', '!=', keyId)
      .executeTakeFirst();
    if (!others) return { outcome: 'last_root_key' };
    await tx
      .updateTable('api_keys')
      .set({ revoked_at: sql<string>`now()` })
      .where('key_id', '=', keyId)
      .execute();
    return { outcome: 'revoked' };
  });

/**
 * The API keys as the HTTP routes and the dashboard use them: create (inside the transaction that
 * settles the request's Idempotency-Key, when given one), list, revoke.
 */
export const apiKeyStore = (db: Kysely<Database>) => ({
  create: (input: { programId: string | null; label: string | null }, tx?: Kysely<Database>) =>
    createApiKey(tx ?? db, input),
  list: (programId: string | null) => listApiKeys(db, programId),
  revokeProgramKey: (programId: string, keyId: string) => revokeProgramKey(db, programId, keyId),
});

export type ApiKeyStore = ReturnType<typeof apiKeyStore>;
