import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Leases in rows, timed by the database's clock, instead of session-level advisory locks.
 *
 * A subscription's row names its active consumer (`owner`) and how long that consumer's claim
 * holds (`lease_until`). Each batch's transaction first renews the lease with the owner in its
 * WHERE clause, which also takes the row's lock, and a takeover is an UPDATE of the same row: so
 * a consumer that lost its claim (its database session was terminated, it stalled past the lease)
 * can never commit a batch, and a new owner's first batch waits for the old one's to end. An
 * advisory lock lived on one connection: when that connection died the lock was gone while the
 * process went on projecting, and two consumers ran at once.
 *
 * An idempotency record's lease lets a retry take over a request that died (a kill -9, a crash)
 * after a few seconds, instead of waiting out the 48 hours a pending row used to live.
 */
export const leasesMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`alter table incentable_subscriptions
      add column owner text, add column lease_until timestamptz`.execute(db);
    await sql`alter table idempotency_keys
      add column owner text, add column lease_until timestamptz`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`alter table idempotency_keys drop column owner, drop column lease_until`.execute(db);
    await sql`alter table incentable_subscriptions
      drop column owner, drop column lease_until`.execute(db);
  },
};
