import type { StoreTransaction } from '../db/schema.ts';
import { sql, type Kysely } from 'kysely';
import type { EventMetadata, Position, RecordedEvent } from '../../domain/recordedEvent.ts';
import type { DatabaseHandle, Listener } from '../db/database.ts';
import type { Database } from '../db/schema.ts';
import { readGuardSql } from './readGuard.ts';
import { LeaseLostError, SubscriptionLease } from './subscriptionLease.ts';
import {
  type AppendResult,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type Subscription,
  type SubscriptionOptions,
} from '../../application/ports.ts';
import { backoff } from '../backoff.ts';
import { tracedAppend, tracedBatch } from '../telemetry/storeSpans.ts';
import type { TraceContext } from '../../application/tracing.ts';
import { GroupCommit } from './groupCommit.ts';
import {
  timelineChannels,
  timelineNow,
  type AppendedMessage,
  type BatchMessage,
} from '../timeline.ts';
import {
  appendBatch,
  appendOne,
  appendRequest,
  groupCommitDefaults,
  type AppendRequest,
} from './appends.ts';

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

/** One handled batch, for the reliability suite's single-active check (INCENTABLE_TRACE_BATCHES). */
export type BatchTrace = {
  pid: number;
  owner: string;
  subscription: string;
  /** Date.now() after the lease was renewed and before the checkpoint's transaction commits. */
  startedAt: number;
  endedAt: number;
  first: string;
  last: string;
  events: number;
};

export type PostgresEventStoreOptions = {
  /** Fallback poll when no notification arrives (another process, a lost LISTEN). */
  pollIntervalMs?: number;
  /** A subscription's lease (see SubscriptionLease); tests shorten it. */
  leaseMs?: number;
  /** How often a standby asks whether the active consumer's lease ran out. */
  standbyPollMs?: number;
  traceBatch?: (trace: BatchTrace) => void;
  /**
   * Group commit: appends that arrive while `maxInFlight` batches are being written share the
   * next batch's transaction (see groupCommit.ts); `false`, or a `maxBatch` of 1, writes one
   * transaction per append.
   */
  groupCommit?: false | Partial<typeof groupCommitDefaults>;
};

/**
 * The event store on Postgres or PGlite, through kysely. One SQL function call per batch of
 * appends (group commit); readers guard the global order with the snapshot's xmin so late
 * commits are never skipped.
 */
export class PostgresEventStore implements EventStore<StoreTransaction> {
  readonly #handle: DatabaseHandle;
  readonly #db: Kysely<Database>;
  readonly #options: PostgresEventStoreOptions;
  readonly #wakers = new Set<() => void>();
  readonly #subscriptions = new Set<PostgresSubscription>();
  #notifyInFlight = false;
  #notifyAgain = false;
  #signals = 0;
  #listener: Listener | null = null;
  readonly #appends: GroupCommit<AppendRequest, AppendResult> | null;

  constructor(handle: DatabaseHandle, options: PostgresEventStoreOptions = {}) {
    this.#handle = handle;
    this.#db = handle.db;
    this.#options = options;
    const group =
      options.groupCommit === false ? null : { ...groupCommitDefaults, ...options.groupCommit };
    this.#appends =
      group && group.maxBatch > 1
        ? new GroupCommit({ ...group, write: (batch) => this.#write(batch), sizeOf: (r) => r.size })
        : null;
  }

  async append(
    stream: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> {
    const request = appendRequest(stream, events, expected);
    const appended = await tracedAppend(stream, events, async () => {
      let result: AppendResult | Error | undefined;
      if (this.#appends) result = await this.#appends.submit(request);
      else [result] = await this.#write([request]);
      if (result instanceof Error || result === undefined) throw result ?? new Error('no result');
      return result;
    });
    if (timelineChannels.appended.hasSubscribers)
      timelineChannels.appended.publish({
        at: timelineNow(),
        eventIds: request.ids,
      } satisfies AppendedMessage);
    return appended;
  }

  /** Appends written so far and the batches they went in (group commit's appends per commit). */
  appendBatches(): { batches: number; appends: number } {
    return { batches: this.#appends?.batches ?? 0, appends: this.#appends?.requests ?? 0 };
  }

  /** A batch of one goes without a subtransaction; a batch that committed anything wakes readers. */
  async #write(batch: readonly AppendRequest[]): Promise<(AppendResult | Error)[]> {
    const [only] = batch;
    const results =
      batch.length === 1 && only
        ? [await appendOne(this.#db, only)]
        : await appendBatch(this.#db, batch);
    if (results.some((result) => !(result instanceof Error))) this.#signalAppended();
    return results;
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
    // One statement, one snapshot: the page, the guard it was read under, and whether committed
    // events lie beyond that guard (a transaction still running holds them back). Events that
    // commit after this snapshot are not missed by a loop that then waits: their appender's
    // signal (here, or a NOTIFY from another process) is counted by `appendSignals`. "Beyond
    // the guard" is max(transaction_id), one step down the order index: an EXISTS with the
    // guard as a parameter was planned as a sequential scan expected to stop early, and read
    // the whole table on every page (readAll fell from 82k to 4.6k events/s over 1M events).
    const result = await sql<EventRow & { guard: string | null; blocked: boolean | null }>`
      with g as materialized (select ${readGuard} as xmin)
      (select ${columns}, null::text as guard, null::boolean as blocked from incentable_events, g
        where (transaction_id, global_position) > (${after.commit.toString()}::xid8, ${after.prepare.toString()}::bigint)
          and transaction_id < g.xmin
          and ${program}
        order by incentable_events.transaction_id, incentable_events.global_position
        limit ${options.limit})
      union all
      select null, null, null, null, null, null, null, null, null, g.xmin::text,
        (select max(transaction_id) from incentable_events) >= g.xmin from g`.execute(this.#db);
    const rows = result.rows.filter((row) => row.guard === null);
    const events = rows.map(toRecorded);
    if (events.length === options.limit) return { events, blocked: false };
    return { events, blocked: result.rows.some((row) => row.blocked === true) };
  }

  async subscribe(options: SubscriptionOptions<StoreTransaction>): Promise<Subscription> {
    for (const existing of this.#subscriptions) {
      if (existing.name === options.name)
        throw new Error(`subscription ${options.name} is already running here`);
    }
    if (this.#handle.kind === 'postgres' && !this.#listener) {
      this.#listener = this.#handle.openListener();
      await this.#listener.listen(channel, () => this.#wakeAll());
    }
    const subscription = new PostgresSubscription({
      store: this,
      handle: this.#handle,
      options,
      pollIntervalMs: this.#options.pollIntervalMs ?? 500,
      standbyPollMs: this.#options.standbyPollMs ?? 500,
      lease: new SubscriptionLease({
        db: this.#db,
        name: options.name,
        exclusive: this.#handle.kind === 'pglite',
        ...(this.#options.leaseMs !== undefined && { leaseMs: this.#options.leaseMs }),
      }),
      ...(this.#options.traceBatch && { traceBatch: this.#options.traceBatch }),
      onStop: () => this.#subscriptions.delete(subscription),
    });
    this.#subscriptions.add(subscription);
    subscription.start();
    return subscription;
  }

  /**
   * Appends signalled so far (here, or on Postgres by another process's NOTIFY), and stops: a
   * loop that notes it before a read and passes it to `waitForAppend` cannot miss a signal that
   * came while the read ran.
   */
  appendSignals(): number {
    return this.#signals;
  }

  /**
   * Resolves at the next append (here or, on Postgres, in another process) or after `ms`; at
   * once when an append was signalled since `appendSignals()` returned `since`.
   */
  waitForAppend(ms: number, since?: number): Promise<void> {
    if (since !== undefined && since !== this.#signals) return Promise.resolve();
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
    await this.#listener?.close();
    this.#listener = null;
  }

  #wakeAll(): void {
    this.#signals++;
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

/**
 * One durable subscription: a loop that reads, handles and checkpoints, a batch in one
 * transaction. It is active only while it holds the subscription's lease; otherwise it stands by
 * and asks again. Every failure (a dropped connection, a database restart, a handler's error) is
 * reported and retried with back-off: the loop ends only when it is stopped.
 */
class PostgresSubscription implements Subscription {
  readonly name: string;
  readonly #store: PostgresEventStore;
  readonly #handle: DatabaseHandle;
  readonly #options: SubscriptionOptions<StoreTransaction>;
  readonly #pollIntervalMs: number;
  readonly #standbyPollMs: number;
  readonly #lease: SubscriptionLease;
  readonly #traceBatch: ((trace: BatchTrace) => void) | null;
  readonly #onStop: () => void;
  #checkpoint: Position | null = null;
  #stopped = false;
  #loop: Promise<void> = Promise.resolve();
  #readsStarted = 0;
  #waiters: Waiter[] = [];
  #failures = 0;

  constructor(args: {
    store: PostgresEventStore;
    handle: DatabaseHandle;
    options: SubscriptionOptions<StoreTransaction>;
    pollIntervalMs: number;
    standbyPollMs: number;
    lease: SubscriptionLease;
    traceBatch?: (trace: BatchTrace) => void;
    onStop: () => void;
  }) {
    this.name = args.options.name;
    this.#store = args.store;
    this.#handle = args.handle;
    this.#options = args.options;
    this.#pollIntervalMs = args.pollIntervalMs;
    this.#standbyPollMs = args.standbyPollMs;
    this.#lease = args.lease;
    this.#traceBatch = args.traceBatch ?? null;
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
    if (this.#stopped) return this.#loop;
    this.#stopped = true;
    this.#onStop();
    this.#store.wakeSubscribers();
    await this.#loop;
    // A clean stop hands over at once instead of letting a standby wait out the lease.
    await this.#lease.release().catch(() => {});
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        const acquired = await this.#lease.tryAcquire();
        if (!acquired) {
          await this.#store.waitForAppend(this.#standbyPollMs);
          continue;
        }
        this.#checkpoint = acquired.checkpoint;
        await this.#consume();
      } catch (error) {
        if (this.#stopped) break;
        // At-least-once: nothing of a failed batch was committed; it comes back after a pause.
        this.#options.onError?.(error);
        await this.#store.waitForAppend(
          backoff({ attempt: this.#failures++, baseMs: 50, maxMs: 5_000 }),
        );
      }
    }
    for (const waiter of this.#waiters) waiter.resolve();
    this.#waiters = [];
  }

  /** Reads and handles batches while this consumer holds the lease; returns when it lost it. */
  async #consume(): Promise<void> {
    const db = this.#handle.db;
    let renewedAt = performance.now();
    let blockedPolls = 0;
    while (!this.#stopped) {
      const readNumber = ++this.#readsStarted;
      const signals = this.#store.appendSignals();
      const wokeAt = timelineNow();
      const page = await this.#store.readGuarded({
        after: this.#checkpoint,
        limit: this.#options.batchSize ?? 500,
      });
      if (page.events.length > 0) {
        const times = { wokeAt, readAt: timelineNow() };
        if (
          !(await tracedBatch(this.name, page.events, (batchContext) =>
            this.#handleBatch(page.events, times, batchContext),
          ))
        )
          return this.#lost();
        renewedAt = performance.now();
        this.#failures = 0;
        blockedPolls = 0;
        continue;
      }
      // Idle: keep the lease alive well before it runs out.
      if (performance.now() - renewedAt > this.#lease.leaseMs / 3) {
        if (!(await this.#lease.renew(db))) return this.#lost();
        renewedAt = performance.now();
      }
      if (!page.blocked) {
        blockedPolls = 0;
        this.#waiters = this.#waiters.filter((waiter) => {
          if (waiter.requestedAt >= readNumber) return true;
          waiter.resolve();
          return false;
        });
        await this.#store.waitForAppend(this.#pollIntervalMs, signals);
      } else {
        // A running transaction holds back committed events; it sends no signal when it ends.
        await this.#store.waitForAppend(Math.min(10, 1 + blockedPolls++), signals);
      }
    }
  }

  /** One batch under the lease. False: the lease was taken over and nothing was committed. */
  async #handleBatch(
    events: readonly RecordedEvent[],
    times: { wokeAt: number; readAt: number },
    batchContext: TraceContext,
  ): Promise<boolean> {
    const db = this.#handle.db;
    const [firstEvent] = events;
    const lastEvent = events.at(-1);
    if (firstEvent === undefined || lastEvent === undefined) return true;
    const last = lastEvent.position;
    let startedAt = 0;
    const trace = () => {
      this.#traceBatch?.({
        pid: process.pid,
        owner: this.#lease.owner,
        subscription: this.name,
        startedAt,
        endedAt: Date.now(),
        first: positionText(firstEvent.position),
        last: positionText(last),
        events: events.length,
      });
    };
    if (this.#options.transactional === false) {
      // The handler issues commands of its own, outside any transaction: the lease is renewed
      // before it runs and checked again when the checkpoint is saved. It must finish within the
      // lease, which a heartbeat extends while it runs.
      if (!(await this.#lease.renew(db))) return false;
      startedAt = Date.now();
      const heartbeat = setInterval(() => {
        this.#lease.renew(db).catch(() => {});
      }, this.#lease.leaseMs / 3);
      try {
        await this.#options.handle(events, db, batchContext);
      } finally {
        clearInterval(heartbeat);
      }
      trace();
      if (!(await this.#lease.save(db, last))) return false;
    } else {
      try {
        await db.transaction().execute(async (tx) => {
          if (!(await this.#lease.renew(tx))) throw new LeaseLostError(this.name);
          startedAt = Date.now();
          await this.#options.handle(events, tx, batchContext);
          if (!(await this.#lease.save(tx, last))) throw new LeaseLostError(this.name);
          // Before the commit: a standby's takeover waits for this transaction to end.
          trace();
        });
      } catch (error) {
        if (error instanceof LeaseLostError) return false;
        throw error;
      }
    }
    this.#checkpoint = last;
    if (timelineChannels.batch.hasSubscribers)
      timelineChannels.batch.publish({
        subscription: this.name,
        ...times,
        committedAt: timelineNow(),
        events,
      } satisfies BatchMessage);
    this.#options.onBatchCommitted?.(events);
    return true;
  }

  #lost(): void {
    this.#options.onError?.(
      new LeaseLostError(`subscription ${this.name}: another consumer took over; standing by`),
    );
  }
}

const positionText = (position: Position): string => `${position.commit}/${position.prepare}`;
