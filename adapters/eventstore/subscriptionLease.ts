import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { sql, type Kysely } from 'kysely';
import type { Position } from '../../domain/recordedEvent.ts';
import type { Database } from '../db/schema.ts';

/** How long a consumer's claim holds without renewal. A standby takes over after it runs out. */
export const defaultLeaseMs = 5_000;

export type SubscriptionLeaseOptions = {
  db: Kysely<Database>;
  /** The checkpoint row's name. */
  name: string;
  /**
   * The embedded database is locked to one process (its data-directory lock): the lease there
   * is taken unconditionally, so a restart after a kill -9 does not wait out its own old claim.
   */
  exclusive: boolean;
  leaseMs?: number;
};

/**
 * The single-active consumer of one subscription, kept in its checkpoint row (migration 008):
 * `owner` and `lease_until`, on the database's clock. Every batch renews the lease first in the
 * statement that takes the row's lock, so:
 * - a consumer that lost its claim (a standby took over after its lease ran out) finds out
 *   before it handles anything, and its transaction commits nothing;
 * - a takeover is an update of the same row, so it waits for a running batch's transaction to
 *   end, and the new owner's first batch starts after the old owner's last one ended.
 * Nothing lives on a connection of its own: a dropped connection loses no lock, and the owner
 * carries on after it reconnects as long as its lease has not run out.
 */
export class SubscriptionLease {
  /** `host:pid:random`: who holds a subscription, readable in the row. */
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  readonly #db: Kysely<Database>;
  readonly #name: string;
  readonly #exclusive: boolean;
  readonly #leaseMs: number;

  constructor(options: SubscriptionLeaseOptions) {
    this.#db = options.db;
    this.#name = options.name;
    this.#exclusive = options.exclusive;
    this.#leaseMs = options.leaseMs ?? defaultLeaseMs;
  }

  get leaseMs(): number {
    return this.#leaseMs;
  }

  /**
   * Becomes the active consumer if nobody holds a live lease. Returns the saved checkpoint
   * (null: from the start), or `false` when another consumer is active.
   */
  async tryAcquire(): Promise<{ checkpoint: Position | null } | false> {
    const free = this.#exclusive
      ? sql`true`
      : sql`incentable_subscriptions.owner is null or incentable_subscriptions.owner = excluded.owner
          or incentable_subscriptions.lease_until < clock_timestamp()`;
    const result = await sql<{ commit: string; prepare: string }>`
      insert into incentable_subscriptions
        (name, commit_position, prepare_position, updated_at, owner, lease_until)
      values (${this.#name}, '0'::xid8, 0, now(), ${this.owner}, ${this.#until()})
      on conflict (name) do update set owner = excluded.owner, lease_until = excluded.lease_until
        where ${free}
      returning commit_position::text as commit, prepare_position::text as prepare`.execute(
      this.#db,
    );
    const row = result.rows[0];
    if (!row) return false;
    const checkpoint = { commit: BigInt(row.commit), prepare: BigInt(row.prepare) };
    return {
      checkpoint: checkpoint.commit === 0n && checkpoint.prepare === 0n ? null : checkpoint,
    };
  }

  /**
   * Extends the lease if this consumer still holds it; inside a batch's transaction this also
   * locks the row until the batch commits. False: another consumer took over.
   */
  async renew(executor: Kysely<Database>): Promise<boolean> {
    if (this.#exclusive) return true;
    const result = await sql`
      update incentable_subscriptions set lease_until = ${this.#until()}
      where name = ${this.#name} and owner = ${this.owner}`.execute(executor);
    return Number(result.numAffectedRows ?? 0) === 1;
  }

  /** Records the checkpoint and extends the lease. False: another consumer took over. */
  async save(executor: Kysely<Database>, position: Position): Promise<boolean> {
    const owned = this.#exclusive ? sql`true` : sql`owner = ${this.owner}`;
    const result = await sql`
      update incentable_subscriptions set commit_position = ${position.commit.toString()}::xid8,
        prepare_position = ${position.prepare.toString()}::bigint, updated_at = now(),
        lease_until = ${this.#until()}
      where name = ${this.#name} and ${owned}`.execute(executor);
    return Number(result.numAffectedRows ?? 0) === 1;
  }

  /** Gives the subscription up so a standby takes over at once (a clean stop). */
  async release(): Promise<void> {
    await sql`
      update incentable_subscriptions set owner = null, lease_until = null
      where name = ${this.#name} and owner = ${this.owner}`.execute(this.#db);
  }

  #until() {
    return sql`clock_timestamp() + make_interval(secs => ${this.#leaseMs / 1000})`;
  }
}

/** Thrown inside a batch's transaction to roll it back when the lease was taken over. */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
}
