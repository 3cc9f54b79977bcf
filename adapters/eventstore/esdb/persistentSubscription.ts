import type { StoreTransaction } from '../../db/schema.ts';
import {
  PINNED,
  PersistentSubscriptionExistsError,
  START,
  UNBOUNDED,
  excludeSystemEvents,
  persistentSubscriptionToAllSettingsFromDefaults,
  type EventStoreDBClient,
  type PersistentSubscriptionToAll,
  type PersistentSubscriptionToAllResolvedEvent,
  type PersistentSubscriptionToAllSettings,
} from '@eventstore/db-client';
import {
  comparePositions,
  type Position,
  type RecordedEvent,
} from '../../../domain/recordedEvent.ts';
import type { DatabaseHandle } from '../../db/database.ts';
import type { Subscription, SubscriptionOptions } from '../../../application/ports.ts';
import { LeaseLostError, SubscriptionLease } from '../subscriptionLease.ts';
import type { EsdbEventStore } from './esdbEventStore.ts';
import { decideNack, fromResolved, subscriptionSettings, toPosition } from './mapping.ts';
import { backoff } from '../../backoff.ts';

/** The group's settings: Pinned, so one stream's events go to one consumer in order. */
export const groupSettings = (): PersistentSubscriptionToAllSettings =>
  persistentSubscriptionToAllSettingsFromDefaults({
    startFrom: START,
    consumerStrategyName: PINNED,
    maxRetryCount: subscriptionSettings.maxRetryCount,
    messageTimeout: subscriptionSettings.messageTimeoutMs,
    checkPointAfter: subscriptionSettings.checkPointAfterMs,
    checkPointLowerBound: subscriptionSettings.checkPointLowerBound,
    checkPointUpperBound: subscriptionSettings.checkPointUpperBound,
    liveBufferSize: subscriptionSettings.liveBufferSize,
    readBatchSize: subscriptionSettings.readBatchSize,
    historyBufferSize: subscriptionSettings.historyBufferSize,
    maxSubscriberCount: UNBOUNDED,
    resolveLinkTos: false,
    extraStatistics: false,
  });

const comparedSettings = [
  'consumerStrategyName',
  'maxRetryCount',
  'messageTimeout',
  'checkPointAfter',
  'checkPointLowerBound',
  'checkPointUpperBound',
  'liveBufferSize',
  'readBatchSize',
  'historyBufferSize',
  'maxSubscriberCount',
  'resolveLinkTos',
] as const;

/**
 * Creates the group, or brings an existing one to our settings (updated in place, never a second
 * group; its start position and checkpoint are kept). Returns what was done.
 */
export const ensureGroup = async (
  client: EventStoreDBClient,
  group: string,
): Promise<'created' | 'updated' | 'unchanged'> => {
  const settings = groupSettings();
  try {
    await client.createPersistentSubscriptionToAll(group, settings, {
      filter: excludeSystemEvents(),
    });
    return 'created';
  } catch (error) {
    if (!(error instanceof PersistentSubscriptionExistsError)) throw error;
  }
  const info = await client.getPersistentSubscriptionToAllInfo(group);
  const differs = comparedSettings.some((key) => info.settings[key] !== settings[key]);
  if (!differs) return 'unchanged';
  await client.updatePersistentSubscriptionToAll(group, {
    ...settings,
    startFrom: info.settings.startFrom ?? START,
  });
  return 'updated';
};

/** The checkpoint row's key: apart from the Postgres store's, whose positions mean something else. */
export const checkpointKey = (name: string): string => `esdb:${name}`;

/** A replayed parked event arrives through a link in the group's parked stream. */
const isReplayOfParked = (resolved: PersistentSubscriptionToAllResolvedEvent): boolean =>
  resolved.link?.streamId.startsWith('$persistentsubscription-') === true;

const ackId = (resolved: PersistentSubscriptionToAllResolvedEvent): string =>
  resolved.link?.id ?? resolved.event?.id ?? '';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One projector on a persistent subscription to $all. Events are handled in $all order, a batch
 * in one Postgres transaction, acked after it commits. A failed batch is nacked for retry (parked
 * at the limit) and nothing behind it runs until the server hands it back, so order survives
 * retries. Redeliveries of what was handled (the server checkpoints lazily) are acked unhandled:
 * the handled position is kept in Postgres with the writes. One active consumer per name across
 * processes, by the same lease in the checkpoint row the Postgres store takes (SubscriptionLease):
 * a consumer that loses it nacks what it holds, leaves the server's group and stands by.
 */
export class EsdbSubscription implements Subscription {
  readonly name: string;
  readonly #store: EsdbEventStore;
  readonly #client: EventStoreDBClient;
  readonly #readModels: DatabaseHandle;
  readonly #options: SubscriptionOptions<StoreTransaction>;
  readonly #reconnectDelayMs: { initial: number; max: number };
  readonly #retryDelayMs: (retryCount: number) => number;
  readonly #onStop: () => void;
  #stopped = false;
  #loop: Promise<void> = Promise.resolve();
  readonly #lease: SubscriptionLease;
  #leaseLost = false;
  #current: PersistentSubscriptionToAll | null = null;
  #checkpoint: Position | null = null;
  /** Highest position disposed of (handled, skipped or parked) on this connection or before. */
  #disposed: Position | null = null;
  #queue: PersistentSubscriptionToAllResolvedEvent[] = [];
  /** Ack ids nacked for retry and not yet handed back. */
  #awaiting = new Map<string, number>();
  #wake: (() => void) | null = null;
  #waiters: { target: Position; resolve: () => void }[] = [];
  #lostReason: string | null = null;

  constructor(args: {
    store: EsdbEventStore;
    client: EventStoreDBClient;
    readModels: DatabaseHandle;
    options: SubscriptionOptions<StoreTransaction>;
    reconnectDelayMs: { initial: number; max: number };
    retryDelayMs: (retryCount: number) => number;
    onStop: () => void;
  }) {
    this.name = args.options.name;
    this.#store = args.store;
    this.#client = args.client;
    this.#readModels = args.readModels;
    this.#options = args.options;
    this.#reconnectDelayMs = args.reconnectDelayMs;
    this.#retryDelayMs = args.retryDelayMs;
    this.#onStop = args.onStop;
    this.#lease = new SubscriptionLease({
      db: args.readModels.db,
      name: checkpointKey(args.options.name),
      exclusive: args.readModels.kind === 'pglite',
    });
  }

  /** Non-null while the subscription is reconnecting after a lost connection. */
  lostReason(): string | null {
    return this.#lostReason;
  }

  async start(): Promise<void> {
    await ensureGroup(this.#client, this.name);
    this.#loop = this.#run();
  }

  checkpoint(): Position | null {
    return this.#checkpoint;
  }

  async caughtUp(): Promise<void> {
    const target = await this.#store.headPosition();
    if (!target || this.#stopped) return;
    await new Promise<void>((resolve) => {
      this.#waiters.push({ target, resolve });
      this.#resolveWaiters();
    });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return this.#loop;
    this.#stopped = true;
    this.#onStop();
    await this.#current?.unsubscribe().catch(() => {});
    this.#wake?.();
    await this.#loop;
    await this.#lease.release().catch(() => {});
    for (const waiter of this.#waiters) waiter.resolve();
    this.#waiters = [];
  }

  #resolveWaiters(): void {
    if (this.#awaiting.size > 0) return;
    const done = this.#disposed;
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!done || comparePositions(done, waiter.target) < 0) return true;
      waiter.resolve();
      return false;
    });
  }

  #advance(position: Position): void {
    if (!this.#disposed || comparePositions(position, this.#disposed) > 0)
      this.#disposed = position;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      let acquired: Awaited<ReturnType<SubscriptionLease['tryAcquire']>>;
      try {
        acquired = await this.#lease.tryAcquire();
      } catch (error) {
        this.#options.onError?.(error);
        acquired = false;
      }
      if (!acquired) {
        await sleep(1_000);
        continue;
      }
      this.#checkpoint = acquired.checkpoint;
      if (this.#checkpoint) this.#advance(this.#checkpoint);
      this.#leaseLost = false;
      await this.#whileLeased();
    }
  }

  /** Consumes, reconnecting with back-off, until stopped or the lease is lost. */
  async #whileLeased(): Promise<void> {
    let failures = 0;
    const heartbeat = setInterval(() => {
      this.#lease.renew(this.#readModels.db).then(
        (held) => {
          if (!held) this.#loseLease();
        },
        () => {},
      );
    }, this.#lease.leaseMs / 3);
    try {
      while (!this.#stopped && !this.#leaseLost) {
        const connectedAt = Date.now();
        try {
          await this.#consume();
        } catch (error) {
          if (this.#stopped) break;
          this.#lostReason = error instanceof Error ? error.message : String(error);
          this.#options.onError?.(error);
        }
        if (this.#stopped || this.#leaseLost) break;
        // The server redelivers whatever was unacked: start this connection's state afresh.
        this.#queue = [];
        this.#awaiting.clear();
        if (Date.now() - connectedAt > 30_000) failures = 0;
        const delay = backoff({
          attempt: failures++,
          baseMs: this.#reconnectDelayMs.initial,
          maxMs: this.#reconnectDelayMs.max,
        });
        await sleep(delay);
      }
    } finally {
      clearInterval(heartbeat);
      this.#queue = [];
      this.#awaiting.clear();
    }
  }

  /** Another consumer took over: leave the group's stream; what was unacked goes to the next. */
  #loseLease(): void {
    if (this.#leaseLost) return;
    this.#leaseLost = true;
    this.#options.onError?.(
      new LeaseLostError(`subscription ${this.name}: another consumer took over; standing by`),
    );
    void this.#current?.unsubscribe().catch(() => {});
    this.#wake?.();
  }

  /** One connection's life: resolves or rejects when the stream ends. */
  async #consume(): Promise<void> {
    const subscription = this.#client.subscribeToPersistentSubscriptionToAll(this.name, {
      bufferSize: Math.max(1, Math.min(this.#options.batchSize ?? 200, 1_000)),
    });
    this.#current = subscription;
    let ended: { error: unknown } | null = null;
    subscription.on('data', (resolved: PersistentSubscriptionToAllResolvedEvent) => {
      this.#lostReason = null;
      this.#queue.push(resolved);
      this.#wake?.();
    });
    subscription.on('confirmation', () => {
      this.#lostReason = null;
    });
    subscription.on('error', (error: unknown) => {
      ended = { error };
      if (!this.#stopped) this.#lostReason = error instanceof Error ? error.message : String(error);
      this.#wake?.();
    });
    subscription.on('end', () => {
      ended ??= { error: new Error('the server ended the subscription') };
      this.#wake?.();
    });
    try {
      while (!this.#stopped && !ended && !this.#leaseLost) {
        if (this.#queue.length === 0 || !this.#ready()) {
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
          this.#wake = null;
          continue;
        }
        await this.#handleNext(subscription);
      }
    } finally {
      this.#current = null;
      subscription.removeAllListeners('data');
      if (!ended) await subscription.unsubscribe().catch(() => {});
    }
    const end = ended as { error: unknown } | null;
    if (end && !this.#stopped) throw end.error;
  }

  /** Ready to handle: nothing nacked for retry is still on its way back. */
  #ready(): boolean {
    if (this.#awaiting.size === 0) return true;
    for (const resolved of this.#queue) this.#awaiting.delete(ackId(resolved));
    // A message the server parked on its own (a timeout at the limit) never comes back.
    const now = Date.now();
    for (const [id, since] of this.#awaiting)
      if (now - since > subscriptionSettings.messageTimeoutMs * 2) this.#awaiting.delete(id);
    if (this.#awaiting.size > 0) {
      setTimeout(() => this.#wake?.(), 1_000).unref();
      return false;
    }
    // Retried events come back behind ones already sent: put them back in $all order.
    this.#queue.sort((a, b) => comparePositions(positionOf(a), positionOf(b)));
    return true;
  }

  async #handleNext(subscription: PersistentSubscriptionToAll): Promise<void> {
    const batch = this.#queue.splice(0, this.#options.batchSize ?? 500);
    const events: RecordedEvent[] = [];
    const handledMessages: PersistentSubscriptionToAllResolvedEvent[] = [];
    const skipped: PersistentSubscriptionToAllResolvedEvent[] = [];
    for (const resolved of batch) {
      const decoded = fromResolved(resolved);
      if (!decoded.ok) {
        const decision = decideNack({ kind: 'unreadable', reason: decoded.reason });
        this.#options.onError?.(new Error(`parking ${ackId(resolved)}: ${decision.reason}`));
        await subscription.nack('park', decision.reason, resolved);
        if (resolved.event?.position) this.#advance(toPosition(resolved.event.position));
        continue;
      }
      const seen =
        !isReplayOfParked(resolved) &&
        this.#checkpoint !== null &&
        comparePositions(decoded.event.position, this.#checkpoint) <= 0;
      if (seen) skipped.push(resolved);
      else {
        events.push(decoded.event);
        handledMessages.push(resolved);
      }
    }
    if (skipped.length > 0) await subscription.ack(...skipped);
    const [firstEvent] = events;
    if (firstEvent === undefined) {
      this.#resolveWaiters();
      return;
    }
    const last = events.reduce(
      (max, e) => (comparePositions(e.position, max) > 0 ? e.position : max),
      firstEvent.position,
    );
    const next =
      this.#checkpoint && comparePositions(this.#checkpoint, last) > 0 ? this.#checkpoint : last;
    try {
      const db = this.#readModels.db;
      const held = async (done: Promise<boolean>) => {
        if (!(await done)) throw new LeaseLostError(this.name);
      };
      if (this.#options.transactional === false) {
        await held(this.#lease.renew(db));
        await this.#options.handle(events, db);
        await held(this.#lease.save(db, next));
      } else {
        await db.transaction().execute(async (tx) => {
          await held(this.#lease.renew(tx));
          await this.#options.handle(events, tx);
          await held(this.#lease.save(tx, next));
        });
      }
    } catch (error) {
      if (error instanceof LeaseLostError) {
        // Not ours to handle any more: back to the server for the consumer that holds the lease.
        await subscription
          .nack('retry', 'consumer lost its lease', ...handledMessages)
          .catch(() => {});
        this.#loseLease();
        return;
      }
      this.#options.onError?.(error);
      const retryCount = Math.max(...handledMessages.map((m) => m.retryCount));
      await sleep(this.#retryDelayMs(retryCount));
      const park: PersistentSubscriptionToAllResolvedEvent[] = [];
      const retry: PersistentSubscriptionToAllResolvedEvent[] = [];
      let reason = '';
      for (const message of handledMessages) {
        const decision = decideNack({ kind: 'handler', error, retryCount: message.retryCount });
        reason = decision.reason;
        (decision.action === 'park' ? park : retry).push(message);
      }
      if (park.length > 0) {
        await subscription.nack('park', reason, ...park);
        for (const message of park)
          if (message.event?.position) this.#advance(toPosition(message.event.position));
      }
      if (retry.length > 0) {
        // Whatever arrived behind the failed batch stays queued until the server hands it back.
        const now = Date.now();
        for (const message of retry) this.#awaiting.set(ackId(message), now);
        await subscription.nack('retry', reason, ...retry);
      }
      this.#resolveWaiters();
      return;
    }
    // Committed: a crash from here on redelivers the batch, which the checkpoint then skips.
    this.#checkpoint = next;
    this.#advance(next);
    await subscription.ack(...handledMessages);
    this.#options.onBatchCommitted?.(events);
    this.#resolveWaiters();
  }
}

const positionOf = (resolved: PersistentSubscriptionToAllResolvedEvent): Position =>
  resolved.event?.position ? toPosition(resolved.event.position) : { commit: 0n, prepare: 0n };
