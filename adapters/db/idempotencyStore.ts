import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.ts';

/**
 * One request's hold on an Idempotency-Key: the key in its scope, the holder (a random id per
 * request) and how long the hold lasts without renewal.
 */
export type KeyHold = { scope: string; key: string; owner: string; leaseMs: number };

/** A key's record as a repeat of its request reads it. */
export type StoredKey = {
  requestSha256: string;
  status: 'pending' | 'done';
  responseStatus: number | null;
  /** The stored JSON as it was written (sealed, when it held a secret). */
  responseBody: unknown;
  owner: string | null;
  /** The hold ran out (or there is none): a retry may take the key over. */
  expired: boolean;
};

/**
 * The transaction `withinTransaction` hands its callback: passed on to the writes that commit with
 * the key's record (the API key or webhook endpoint a request creates, and `complete`). The http
 * layer passes it along and never queries with it.
 */
export type SharedTransaction = Kysely<Database>;

/** The lease's end, on the database's clock (so every process agrees on it). */
const leaseUntil = (leaseMs: number) =>
  sql<Date>`clock_timestamp() + make_interval(secs => ${leaseMs / 1000})`;

/**
 * The idempotency_keys table, as the Idempotency-Key middleware (adapters/http/api/idempotency.ts)
 * and the scheduler's purge use it. A hold is only ever changed by its owner, so a request whose
 * key was taken over cannot settle over the request that took it.
 */
export const idempotencyStore = (db: Kysely<Database>) => {
  /** The hold's row, while it still belongs to its owner and is pending. */
  const pendingOf = (hold: KeyHold, executor: Kysely<Database>) =>
    executor
      .updateTable('idempotency_keys')
      .where('scope', '=', hold.scope)
      .where('key', '=', hold.key)
      .where('owner', '=', hold.owner)
      .where('status', '=', 'pending');

  return {
    /** Runs `work` in one transaction; what it writes through the handle commits together. */
    withinTransaction: <T>(work: (tx: SharedTransaction) => Promise<T>): Promise<T> =>
      db.transaction().execute(work),

    /** Takes a key nobody holds: a pending row with a lease. False when the key has a row. */
    async claim(hold: KeyHold, requestSha256: string): Promise<boolean> {
      const inserted = await db
        .insertInto('idempotency_keys')
        .values({
          scope: hold.scope,
          key: hold.key,
          request_sha256: requestSha256,
          status: 'pending',
          response_status: null,
          response_body: null,
          owner: hold.owner,
          lease_until: leaseUntil(hold.leaseMs),
        })
        .onConflict((oc) => oc.columns(['scope', 'key']).doNothing())
        .returning('key')
        .executeTakeFirst();
      return inserted !== undefined;
    },

    /** The key's record, or undefined when it has none (purged, or never claimed). */
    async lookup(scope: string, key: string): Promise<StoredKey | undefined> {
      const row = await db
        .selectFrom('idempotency_keys')
        .select([
          'request_sha256',
          'status',
          'response_status',
          'response_body',
          'owner',
          sql<boolean>`coalesce(lease_until < clock_timestamp(), true)`.as('expired'),
        ])
        .where('scope', '=', scope)
        .where('key', '=', key)
        .executeTakeFirst();
      return (
        row && {
          requestSha256: row.request_sha256,
          status: row.status,
          responseStatus: row.response_status,
          responseBody: row.response_body,
          owner: row.owner,
          expired: row.expired,
        }
      );
    },

    /**
     * Takes over a pending key from `previousOwner` (whose lease ran out), for `hold`'s owner.
     * False when another request took it first, or it was settled meanwhile.
     */
    async takeOver(hold: KeyHold, previousOwner: string | null): Promise<boolean> {
      const taken = await db
        .updateTable('idempotency_keys')
        .set({ owner: hold.owner, lease_until: leaseUntil(hold.leaseMs) })
        .where('scope', '=', hold.scope)
        .where('key', '=', hold.key)
        .where('status', '=', 'pending')
        .where((eb) =>
          previousOwner === null ? eb('owner', 'is', null) : eb('owner', '=', previousOwner),
        )
        .executeTakeFirst();
      return Number(taken.numUpdatedRows) === 1;
    },

    /** Extends the hold's lease by its length from now (the heartbeat of a running request). */
    async renew(hold: KeyHold): Promise<void> {
      await db
        .updateTable('idempotency_keys')
        .set({ lease_until: leaseUntil(hold.leaseMs) })
        .where('scope', '=', hold.scope)
        .where('key', '=', hold.key)
        .where('owner', '=', hold.owner)
        .execute();
    },

    /**
     * Stores the response a repeat gets back (`bodyJson`: the body as JSON text) and lets the hold
     * go. With `tx`, inside the transaction of the write the response answers for.
     */
    async complete(
      hold: KeyHold,
      response: { status: number; bodyJson: string },
      tx?: SharedTransaction,
    ): Promise<void> {
      await pendingOf(hold, tx ?? db)
        .set({
          status: 'done',
          response_status: response.status,
          response_body: sql`${response.bodyJson}::jsonb`,
          owner: null,
          lease_until: null,
        })
        .execute();
    },

    /** Ends the hold's lease now and keeps the key pending: the next retry takes it over. */
    async release(hold: KeyHold, tx?: SharedTransaction): Promise<void> {
      await pendingOf(hold, tx ?? db)
        .set({ lease_until: sql`clock_timestamp()` })
        .execute();
    },

    /** Deletes records older than `olderThanHours` (the scheduler runs this; default keeps 48 h). */
    async purge(olderThanHours = 48): Promise<number> {
      const result = await db
        .deleteFrom('idempotency_keys')
        .where('created_at', '<', sql<Date>`now() - make_interval(hours => ${olderThanHours})`)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
};

export type IdempotencyStore = ReturnType<typeof idempotencyStore>;
