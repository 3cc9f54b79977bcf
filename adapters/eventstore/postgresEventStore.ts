import { sql, type Kysely } from 'kysely';
import type { EventMetadata, Position, RecordedEvent } from '../../domain/recordedEvent.ts';
import type { DatabaseHandle, Session } from '../db/database.ts';
import type { Database } from '../db/schema.ts';
import { readGuardSql } from './readGuard.ts';
import {
  ConcurrencyError,
  type AppendResult,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type Subscription,
  type SubscriptionOptions,
} from './port.ts';

const channel = 'incentable_events';

/** An event row as read: positions and revisions as text (they may pass 2^53). */
export type EventRow = {
  global_position: string;
  transaction_id: string;
  event_id: string;
  stream_name: string;
  stream_revision: string;
  type: string;
  data: unknown;
  metadata: EventMetadata;
  hash: string;
};

/**
 * Positions and revisions leave as text (they may pass 2^53). ORDER BY must name the table's
 * columns: the text aliases below would sort "10" before "2".
 */
const columns = sql`global_position::text as global_position, transaction_id::text as transaction_id,
  event_id::text as event_id, stream_name, stream_revision::text as stream_revision, type, data,
  metadata, hash`;

/** `readGuardSql` as a kysely fragment. */
export const readGuard = sql.raw(readGuardSql);

export const toRecorded = (row: EventRow): RecordedEvent => ({
  id: row.event_id,
  type: row.type,
  data: row.data,
  streamName: row.stream_name,
  revision: BigInt(row.stream_revision),
  position: { commit: BigInt(row.transaction_id), prepare: BigInt(row.global_position) },
  metadata: row.metadata,
  hash: row.hash,
});

const expectedCode = (expected: ExpectedRevision): string => {
  if (expected === 'no_stream') return '-1';
  if (expected === 'any') return '-2';
  if (expected === 'exists') return '-3';
  if (expected < 0n) throw new RangeError(`expected revision must be >= 0, got ${expected}`);
  return expected.toString();
};

type DriverError = { code?: unknown; detail?: unknown };

export type PostgresEventStoreOptions = {
  /** Fallback poll when no notification arrives (another process, a lost LISTEN). */
  pollIntervalMs?: number;
};

/**
 * The event store on Postgres or PGlite, through kysely. One SQL function call per append; readers
 * guard the global order with the snapshot's xmin so late commits are never skipped.
 */
export class PostgresEventStore implements EventStore {
  readonly #handle: DatabaseHandle;
  readonly #db: Kysely<Database>;
  readonly #pollIntervalMs: number;
  readonly #wakers = new Set<() => void>();
  readonly #subscriptions = new Set<PostgresSubscription>();
  #notifyInFlight = false;
  #notifyAgain = false;
  #session: Session | null = null;

  constructor(handle: DatabaseHandle, options: PostgresEventStoreOptions = {}) {
    this.#handle = handle;
    this.#db = handle.db;
    this.#pollIntervalMs = options.pollIntervalMs ?? 500;
  }

  async append(
    stream: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    if (events.length === 0) throw new RangeError('append needs at least one event');
    try {
      const result = await sql<{
        next_revision: string;
        commit_position: string;
        prepare_position: string;
      }>`
        select next_revision::text as next_revision, commit_position, prepare_position::text as prepare_position
        from incentable_append(
          ${stream}, ${expectedCode(expected)}::bigint,
          ${events.map((e) => e.id)}::uuid[], ${events.map((e) => e.type)}::text[],
          ${events.map((e) => JSON.stringify(e.data))}::text[]::jsonb[],
          ${events.map((e) => JSON.stringify(e.metadata))}::text[]::jsonb[])`.execute(this.#db);
      const row = result.rows[0];
      if (!row) throw new Error('incentable_append returned no row');
      this.#signalAppended();
      return {
        nextRevision: BigInt(row.next_revision),
        position: { commit: BigInt(row.commit_position), prepare: BigInt(row.prepare_position) },
      };
    } catch (error) {
      const driverError = error as DriverError;
      if (driverError.code === 'IN409') {
        throw new ConcurrencyError(stream, expected, BigInt(String(driverError.detail)));
      }
      // Two appenders racing to create a stream: the loser hits the unique key.
      if (driverError.code === '23505') throw new ConcurrencyError(stream, expected, 0n);
      throw error;
    }
  }

  async readStream(
    stream: string,
    options: { fromRevision?: bigint; limit?: number } = {},
  ): Promise<RecordedEvent[]> {
    const result = await sql<EventRow>`
      select ${columns} from incentable_events
      where stream_name = ${stream} and stream_revision >= ${(options.fromRevision ?? 0n).toString()}::bigint
      order by incentable_events.stream_revision
      limit ${options.limit ?? 1_000_000}`.execute(this.#db);
    return result.rows.map(toRecorded);
  }

  /**
   * Events after `after` in the global order. A page cut short by the xmin guard (a transaction
   * anywhere in the cluster still running) is retried for up to `waitMs`, so a caller sees every
   * event committed before the call unless a transaction stays open that long.
   */
  async readAll(options: {
    after: Position | null;
    limit: number;
    programId?: string;
    waitMs?: number;
  }): Promise<RecordedEvent[]> {
    const deadline = Date.now() + (options.waitMs ?? 5_000);
    for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
      const page = await this.readGuarded(options);
      if (!page.blocked || page.events.length === options.limit || Date.now() > deadline)
        return page.events;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  /**
   * Reads committed events below the oldest running transaction. `blocked` says that committed
   * events exist beyond that guard: a running transaction holds them back, so poll again soon.
   */
  async readGuarded(options: {
    after: Position | null;
    limit: number;
    programId?: string;
  }): Promise<{ events: RecordedEvent[]; blocked: boolean }> {
    const after = options.after ?? { commit: 0n, prepare: 0n };
    const program =
      options.programId === undefined
        ? sql`true`
        : sql`metadata->>'programId' = ${options.programId}`;
    // One statement, one snapshot: the page and the guard it was read under. The "blocked"
    // check below must use this guard, not a fresh snapshot's, or a transaction that ends in
    // between would make a short page look complete.
    const result = await sql<EventRow & { guard: string | null }>`
      with g as materialized (select ${readGuard} as xmin)
      (select ${columns}, null::text as guard from incentable_events, g
        where (transaction_id, global_position) > (${after.commit.toString()}::xid8, ${after.prepare.toString()}::bigint)
          and transaction_id < g.xmin
          and ${program}
        order by incentable_events.transaction_id, incentable_events.global_position
        limit ${options.limit})
      union all
      select null, null, null, null, null, null, null, null, null, g.xmin::text from g`.execute(
      this.#db,
    );
    const rows = result.rows.filter((row) => row.guard === null);
    const guard = result.rows.find((row) => row.guard !== null)?.guard ?? '0';
    const events = rows.map(toRecorded);
    if (events.length === options.limit) return { events, blocked: false };
    const held = await sql<{ blocked: boolean }>`
      select exists (select 1 from incentable_events where transaction_id >= ${guard}::xid8) as blocked`.execute(
      this.#db,
    );
    return { events, blocked: held.rows[0]?.blocked === true };
  }

  async subscribe(options: SubscriptionOptions): Promise<Subscription> {
    for (const existing of this.#subscriptions) {
      if (existing.name === options.name)
        throw new Error(`subscription ${options.name} is already running here`);
    }
    if (this.#handle.kind === 'postgres' && !this.#session) {
      this.#session = await this.#handle.openSession();
      await this.#session.listen(channel, () => this.#wakeAll());
    }
    const subscription = new PostgresSubscription({
      store: this,
      handle: this.#handle,
      options,
      pollIntervalMs: this.#pollIntervalMs,
      onStop: () => this.#subscriptions.delete(subscription),
    });
    this.#subscriptions.add(subscription);
    subscription.start();
    return subscription;
  }

  /** Resolves at the next append (here or, on Postgres, in another process) or after `ms`. */
  waitForAppend(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakers.add(wake);
    });
  }

  /** Wakes every waiting subscription loop now (used on stop). */
  wakeSubscribers(): void {
    this.#wakeAll();
  }

  async close(): Promise<void> {
    await Promise.all([...this.#subscriptions].map((s) => s.stop()));
    await this.#session?.close();
    this.#session = null;
  }

  #wakeAll(): void {
    for (const wake of [...this.#wakers]) wake();
  }

  /**
   * Wakes local subscribers now and other processes through one NOTIFY per round trip at most:
   * a notify inside the append would serialise every committing writer on the notify queue lock.
   */
  #signalAppended(): void {
    this.#wakeAll();
    if (this.#handle.kind !== 'postgres') return;
    if (this.#notifyInFlight) {
      this.#notifyAgain = true;
      return;
    }
    this.#notifyInFlight = true;
    void sql`select pg_notify(${channel}, '')`
      .execute(this.#db)
      .catch(() => {})
      .finally(() => {
        this.#notifyInFlight = false;
        if (this.#notifyAgain) {
          this.#notifyAgain = false;
          this.#signalAppended();
        }
      });
  }
}

type Waiter = { resolve: () => void; requestedAt: number };

/** One durable subscription: a loop that reads, handles and checkpoints in one transaction. */
class PostgresSubscription implements Subscription {
  readonly name: string;
  readonly #store: PostgresEventStore;
  readonly #handle: DatabaseHandle;
  readonly #options: SubscriptionOptions;
  readonly #pollIntervalMs: number;
  readonly #onStop: () => void;
  #checkpoint: Position | null = null;
  #stopped = false;
  #loop: Promise<void> = Promise.resolve();
  #readsStarted = 0;
  #waiters: Waiter[] = [];
  #lockSession: Session | null = null;

  constructor(args: {
    store: PostgresEventStore;
    handle: DatabaseHandle;
    options: SubscriptionOptions;
    pollIntervalMs: number;
    onStop: () => void;
  }) {
    this.name = args.options.name;
    this.#store = args.store;
    this.#handle = args.handle;
    this.#options = args.options;
    this.#pollIntervalMs = args.pollIntervalMs;
    this.#onStop = args.onStop;
  }

  start(): void {
    this.#loop = this.#run();
  }

  checkpoint(): Position | null {
    return this.#checkpoint;
  }

  caughtUp(): Promise<void> {
    return new Promise((resolve) =>
      this.#waiters.push({ resolve, requestedAt: this.#readsStarted }),
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#onStop();
    this.#store.wakeSubscribers();
    await this.#loop;
    await this.#lockSession?.close();
  }

  async #run(): Promise<void> {
    const db = this.#handle.db;
    // Single active consumer per name across processes: the session-level advisory lock.
    this.#lockSession = await this.#handle.openSession();
    while (
      !this.#stopped &&
      !(await this.#lockSession.tryAdvisoryLock(`subscription:${this.name}`))
    ) {
      await this.#store.waitForAppend(1000);
    }
    const saved = await db
      .selectFrom('incentable_subscriptions')
      .select([
        sql<string>`commit_position::text`.as('commit'),
        sql<string>`prepare_position::text`.as('prepare'),
      ])
      .where('name', '=', this.name)
      .executeTakeFirst();
    if (saved) this.#checkpoint = { commit: BigInt(saved.commit), prepare: BigInt(saved.prepare) };

    let failures = 0;
    let blockedPolls = 0;
    while (!this.#stopped) {
      const readNumber = ++this.#readsStarted;
      let page: { events: RecordedEvent[]; blocked: boolean };
      try {
        page = await this.#store.readGuarded({
          after: this.#checkpoint,
          limit: this.#options.batchSize ?? 500,
        });
      } catch (error) {
        this.#options.onError?.(error);
        await this.#store.waitForAppend(Math.min(5000, 50 * 2 ** Math.min(failures++, 7)));
        continue;
      }
      if (page.events.length > 0) {
        const last = page.events[page.events.length - 1]!.position;
        try {
          const saveCheckpoint = (executor: Kysely<Database>) =>
            sql`
              insert into incentable_subscriptions (name, commit_position, prepare_position, updated_at)
              values (${this.name}, ${last.commit.toString()}::xid8, ${last.prepare.toString()}::bigint, now())
              on conflict (name) do update set commit_position = excluded.commit_position,
                prepare_position = excluded.prepare_position, updated_at = excluded.updated_at`.execute(
              executor,
            );
          if (this.#options.transactional === false) {
            await this.#options.handle(page.events, db);
            await saveCheckpoint(db);
          } else {
            await db.transaction().execute(async (tx) => {
              await this.#options.handle(page.events, tx);
              await saveCheckpoint(tx);
            });
          }
          this.#checkpoint = last;
          failures = 0;
          blockedPolls = 0;
          this.#options.onBatchCommitted?.(page.events);
        } catch (error) {
          // At-least-once: nothing was committed, the same batch comes back after a pause.
          this.#options.onError?.(error);
          await this.#store.waitForAppend(Math.min(5000, 50 * 2 ** Math.min(failures++, 7)));
        }
        continue;
      }
      if (!page.blocked) {
        blockedPolls = 0;
        this.#waiters = this.#waiters.filter((waiter) => {
          if (waiter.requestedAt >= readNumber) return true;
          waiter.resolve();
          return false;
        });
        await this.#store.waitForAppend(this.#pollIntervalMs);
      } else {
        // A running transaction holds back committed events; it sends no signal when it ends.
        await this.#store.waitForAppend(Math.min(10, 1 + blockedPolls++));
      }
    }
    for (const waiter of this.#waiters) waiter.resolve();
    this.#waiters = [];
  }
}
