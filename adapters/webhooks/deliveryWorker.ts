import { randomUUID } from 'node:crypto';
import {
  timelineChannels,
  timelineNow,
  type HandedOverMessage,
  type PostedMessage,
  type RecordedMessage,
} from '../timeline.ts';
import { setMaxListeners } from 'node:events';
import type { Kysely } from 'kysely';
import { systemClock, type Clock } from '../../application/ports.ts';
import { Dispatcher } from '../../delivery/dispatcher.ts';
import {
  attemptError,
  classifyAttempt,
  decideAfterAttempt,
  parseRetryAfter,
  type AttemptResult,
} from '../../delivery/outcome.ts';
import type {
  DeliveryQueue,
  FinishedAttempt,
  Handoff,
  HeldDelivery,
  HttpTransport,
  Mailer,
} from '../../delivery/ports.ts';
import { defaultRetrySchedule } from '../../delivery/retryPolicy.ts';
import {
  decryptedCache,
  secretCache,
  signedHeaders,
  type EndpointSecret,
} from '../../delivery/signedRequest.ts';
import { withUserinfo } from '../../delivery/destinations.ts';
import {
  defaultEndpointHealthPolicy,
  type EndpointHealthPolicy,
} from '../../delivery/endpointHealth.ts';
import { settlesBefore } from '../deadline.ts';
import type { Database } from '../db/schema.ts';
import {
  AttemptRecorder,
  messageOf,
  type AttemptRecorderOptions,
  type WorkerLogger,
} from './attemptRecorder.ts';
import { createDeliveryQueue } from './deliveryQueue.ts';
import { finishAttemptSpan, startAttemptSpan } from '../telemetry/webhookSpans.ts';
import type { Span } from '@opentelemetry/api';

export type { WorkerLogger } from './attemptRecorder.ts';

export type DeliveryWorkerOptions = {
  db: Kysely<Database>;
  transport: HttpTransport;
  /** 32 bytes: the key endpoint secrets are encrypted with (the store's key). */
  secretKey: Uint8Array;
  /** Base of the dashboard links in notification emails, e.g. `https://incentives.example.com`. */
  publicUrl: string;
  /** Goes into `User-Agent: Incentable-Webhooks/<version>`. */
  version: string;
  /** null or absent: notifications are stored (sent_at null) and logged, not mailed. */
  mailer?: Mailer | null;
  /** Where a program's failure emails go (runtime.ts reads the program's read model); null: nowhere. */
  notificationAddressOf: (programId: string) => Promise<string | null>;
  /** Claims, leases, schedules and signature timestamps all read it. */
  clock?: Clock;
  /** When a failing endpoint is warned about and disabled. Default 5 days, 10 failed deliveries. */
  health?: EndpointHealthPolicy;
  /** Delay before each attempt; its length is the number of attempts. Default 0s,5m,30m,2h,24h. */
  delaysS?: readonly number[];
  /** Budget of one POST (connect, headers, body). Default 10 s. */
  timeoutMs?: number;
  /** POSTs in flight at once. Default 64. */
  concurrency?: number;
  /** POSTs in flight at once per endpoint, so a hanging endpoint cannot take every slot. Default 8. */
  perEndpointInFlight?: number;
  /**
   * Leased deliveries held in memory per endpoint (queued or in flight), so one claim or one
   * projector batch feeds the endpoint for a while. Default 8 x perEndpointInFlight.
   */
  perEndpointBacklog?: number;
  /** Leased deliveries held in memory in all. Default 8 x concurrency. */
  backlog?: number;
  /** A claim not recorded within this is taken over by any worker. Default 2 x timeout + 5 s. */
  leaseMs?: number;
  /** Fallback poll when notify() is not called (another process queued work). Default 250 ms. */
  pollIntervalMs?: number;
  logger?: WorkerLogger;
  onAttempt?: AttemptRecorderOptions['onAttempt'];
};

const consoleLogger: WorkerLogger = {
  info: (fields, message) => console.info(message, fields),
  error: (fields, message) => console.error(message, fields),
};

/**
 * Sends leased deliveries and records every attempt. Deliveries reach it two ways: the projector
 * hands over the rows it just inserted already leased to this worker (the fast path: no claim, no
 * poll), and claims take due rows and rows whose lease expired (retries, other processes' work,
 * what did not fit). Which row goes when is delivery/dispatcher.ts, the SQL deliveryQueue.ts,
 * the batched recording and the failure emails attemptRecorder.ts; this is the loop between them.
 * Delivery never throws outward: every exchange ends as an attempt row and a status.
 */
export class DeliveryWorker {
  readonly #queue: DeliveryQueue;
  readonly #transport: HttpTransport;
  readonly #dispatcher: Dispatcher<HeldDelivery>;
  readonly #secretOf: (encrypted: string) => EndpointSecret;
  readonly #userinfoOf: (encrypted: string) => string;
  readonly #userAgent: string;
  readonly #clock: Clock;
  readonly #delaysS: readonly number[];
  readonly #timeoutMs: number;
  readonly #leaseMs: number;
  readonly #pollIntervalMs: number;
  readonly #logger: WorkerLogger;
  readonly #recorder: AttemptRecorder;
  readonly #workerId = randomUUID();
  readonly #sends = new Set<Promise<void>>();
  /** Rows whose POST is under way. */
  readonly #posting = new Set<HeldDelivery>();
  /** Rows whose POST a stop cut short and gave back: whatever their POST returns is dropped. */
  readonly #cut = new Set<HeldDelivery>();
  /** Aborts every POST under way: a stop past its deadline. */
  readonly #cutPosts = new AbortController();
  #claimSeq = 0;
  #running = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #woken = false;
  /** The last claim came back full, or work was announced: claim again when there is room. */
  #moreDue = true;
  /** The earliest retry this worker scheduled: sleep no longer than until then. */
  #nextDueAt: number | null = null;

  constructor(options: DeliveryWorkerOptions) {
    this.#queue = createDeliveryQueue(options.db);
    this.#transport = options.transport;
    this.#secretOf = secretCache(options.secretKey);
    this.#userinfoOf = decryptedCache(options.secretKey);
    this.#userAgent = `Incentable-Webhooks/${options.version}`;
    this.#clock = options.clock ?? systemClock;
    this.#delaysS = options.delaysS ?? defaultRetrySchedule;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    const concurrency = options.concurrency ?? 64;
    const perEndpointInFlight = options.perEndpointInFlight ?? 8;
    // Twice the attempt's budget plus room to record it: a live worker always finishes first.
    this.#leaseMs = options.leaseMs ?? 2 * this.#timeoutMs + 5_000;
    this.#dispatcher = new Dispatcher({
      concurrency,
      perEndpointInFlight,
      perEndpointBacklog: options.perEndpointBacklog ?? 8 * perEndpointInFlight,
      backlog: options.backlog ?? 8 * concurrency,
      leaseMs: this.#leaseMs,
      timeoutMs: this.#timeoutMs,
    });
    this.#pollIntervalMs = options.pollIntervalMs ?? 250;
    this.#logger = options.logger ?? consoleLogger;
    this.#recorder = new AttemptRecorder({
      queue: this.#queue,
      clock: this.#clock,
      publicUrl: options.publicUrl.replace(/\/+$/, ''),
      mailer: options.mailer ?? null,
      notificationAddressOf: options.notificationAddressOf,
      health: options.health ?? defaultEndpointHealthPolicy,
      logger: this.#logger,
      onAttempt: options.onAttempt,
      running: () => this.#running,
      onBatchDone: (batch) => this.#recorded(batch),
    });
    // Every POST under way listens on this one signal: thousands, by design, not a leak.
    setMaxListeners(0, this.#cutPosts.signal);
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /**
   * Stops claiming and taking hand-overs, gives the queued rows back (pending again, due now, for
   * any worker), waits for the POSTs under way (each bounded by timeoutMs) and records them.
   *
   * When `cut` aborts before those POSTs end (a shutdown's deadline), they are aborted and their
   * rows given back as well, due now and with the attempt not counted: the shutdown, not the
   * receiver, ended them. The receiver may have got the request, so it may get it again, with
   * the same id and bytes (delivery is at least once). Resolves with the deliveries so cut.
   */
  async stop(options: { cut?: AbortSignal } = {}): Promise<{ cutDeliveries: string[] }> {
    this.#running = false;
    this.notify();
    await this.#loop;
    this.#loop = null;
    await this.#giveBack(this.#dispatcher.drain());
    const sends = Promise.all([...this.#sends]);
    let cutDeliveries: string[] = [];
    if (options.cut === undefined) await sends;
    else if (!(await settlesBefore(sends, options.cut)))
      cutDeliveries = await this.#cutPostsUnderWay();
    await this.#recorder.flush();
    return { cutDeliveries };
  }

  /** Aborts the POSTs under way and gives their rows back; their results are not recorded. */
  async #cutPostsUnderWay(): Promise<string[]> {
    const rows = [...this.#posting];
    for (const row of rows) this.#cut.add(row);
    this.#cutPosts.abort();
    await this.#giveBack(rows);
    return rows.map((row) => row.delivery_id);
  }

  /** Work was queued in this process (projector batch, test event, redelivery): claim now. */
  notify(): void {
    this.#moreDue = true;
    this.#kick();
  }

  /** Wakes the claim loop without claiming more unless more work is known to be due. */
  #kick(): void {
    this.#woken = true;
    this.#wake?.();
  }

  /**
   * A hand-over for one projector batch, or null when this worker takes none (stopped, or its
   * backlog is full: the projector then inserts pending rows for any worker's claim).
   */
  handoff(): Handoff | null {
    if (!this.#running || this.#dispatcher.full) return null;
    const leaseOwner = `${this.#workerId}:${++this.#claimSeq}`;
    const leaseExpiresAt = this.#clock.now().getTime() + this.#leaseMs;
    const room = this.#dispatcher.reservation();
    let open = true;
    return {
      leaseOwner,
      leaseExpiresAt: new Date(leaseExpiresAt),
      take: (endpointId) => open && this.#running && room.take(endpointId),
      deliver: (rows) => {
        if (!open) return;
        open = false;
        const held = rows.map((row) => ({ ...row, leaseOwner, leaseExpiresAt }));
        if (timelineChannels.handedOver.hasSubscribers)
          timelineChannels.handedOver.publish({
            at: timelineNow(),
            envelopeIds: rows.map((row) => row.envelope_id),
          } satisfies HandedOverMessage);
        if (this.#running) {
          room.queue(held);
          this.#pump();
          return;
        }
        // Stopped between the batch's start and its commit: the rows are pending again.
        room.cancel();
        void this.#giveBack(held);
      },
      cancel: () => {
        if (!open) return;
        open = false;
        room.cancel();
      },
    };
  }

  /** Starts POSTs while the dispatcher has slots and rows for them. */
  #pump(): void {
    for (;;) {
      const row = this.#dispatcher.next(this.#clock.now().getTime());
      if (row === undefined) return;
      const send = this.#send(row);
      this.#sends.add(send);
      void send.finally(() => this.#sends.delete(send));
    }
  }

  async #run(): Promise<void> {
    while (this.#running) {
      if (this.#nextDueAt !== null && this.#nextDueAt <= this.#clock.now().getTime()) {
        this.#nextDueAt = null;
        this.#moreDue = true;
      }
      const room = this.#dispatcher.claimRoom(this.#recorder.waiting);
      const worthIt = this.#dispatcher.worthClaiming(room);
      let claimed = 0;
      if (this.#moreDue && worthIt) {
        this.#moreDue = false;
        try {
          claimed = await this.#claim(room);
        } catch (error) {
          this.#moreDue = true;
          this.#logger.error({ err: error }, 'webhook delivery claim failed');
        }
        if (claimed >= room) this.#moreDue = true;
      }
      if (!this.#moreDue || !worthIt || claimed === 0) await this.#sleep();
    }
  }

  async #sleep(): Promise<void> {
    if (this.#woken) {
      this.#woken = false;
      return;
    }
    let waitMs = this.#pollIntervalMs;
    if (this.#nextDueAt !== null)
      waitMs = Math.max(0, Math.min(waitMs, this.#nextDueAt - this.#clock.now().getTime()));
    const polled = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => done(true), waitMs);
      const done = (timedOut: boolean) => {
        clearTimeout(timer);
        resolve(timedOut);
      };
      this.#wake = () => done(false);
    });
    this.#wake = null;
    this.#woken = false;
    // Another process may have queued work, or a retry came due: look again.
    if (polled) this.#moreDue = true;
  }

  /** Leases up to `room` rows, queues them and starts what can start; resolves with the count. */
  async #claim(room: number): Promise<number> {
    const now = this.#clock.now();
    const leaseOwner = `${this.#workerId}:${++this.#claimSeq}`;
    const leaseExpiresAt = now.getTime() + this.#leaseMs;
    const plan = this.#dispatcher.claimPlan();
    const rows = await this.#queue.claim({
      now,
      leaseOwner,
      leaseExpiresAt: new Date(leaseExpiresAt),
      room,
      perEndpointBacklog: this.#dispatcher.perEndpointBacklog,
      ...plan,
    });
    const held = rows.map((row) => ({ ...row, leaseOwner, leaseExpiresAt }));
    if (this.#dispatcher.claimed(plan, held)) this.#moreDue = true;
    this.#pump();
    return rows.length;
  }

  /** Rows leased to us that will not be sent here: pending again, due now, for any worker. */
  async #giveBack(rows: readonly HeldDelivery[]): Promise<void> {
    if (rows.length === 0) return;
    try {
      await this.#queue.giveBack(rows, this.#clock.now());
    } catch (error) {
      // Not lost: the rows come back when their lease ends.
      this.#logger.error(
        { err: error, deliveries: rows.length },
        'giving back leased deliveries failed',
      );
    }
  }

  async #send(delivery: HeldDelivery): Promise<void> {
    const startedAt = this.#clock.now();
    const postedAt = timelineNow();
    let result: AttemptResult;
    const span = startAttemptSpan(delivery, startedAt);
    this.#posting.add(delivery);
    try {
      result = await this.#transport.post({
        url: this.#urlOf(delivery),
        headers: signedHeaders({
          delivery,
          sentAt: startedAt,
          userAgent: this.#userAgent,
          secretOf: this.#secretOf,
        }),
        body: delivery.body,
        timeoutMs: this.#timeoutMs,
        endpointKey: delivery.endpoint_id,
        signal: this.#cutPosts.signal,
      });
    } catch (error) {
      // A secret that does not decrypt (wrong key) or a transport bug: recorded, retried, never thrown.
      result = { kind: 'error', error: 'other', message: messageOf(error), durationMs: 0 };
    }
    this.#posting.delete(delivery);
    if (timelineChannels.posted.hasSubscribers)
      timelineChannels.posted.publish({
        startedAt: postedAt,
        endedAt: timelineNow(),
        envelopeId: delivery.envelope_id,
      } satisfies PostedMessage);
    // A row a stop cut short was given back: pending again, this attempt neither counted nor kept.
    if (!this.#cut.delete(delivery)) this.#finish(delivery, startedAt, result, span);
    else finishAttemptSpan(span, { result, outcome: 'cut', status: 'pending' });
    // The POST is over: its slot is free now, not when the attempt is recorded, so sending and
    // recording overlap. The row stays leased ('delivering') until recorded, so no claim takes
    // it again meanwhile; #run stops claiming while too many attempts wait to be recorded.
    if (this.#dispatcher.sent(delivery.endpoint_id)) this.#moreDue = true;
    this.#pump();
    this.#recorder.schedule();
    this.#kick();
  }

  /** The URL to send to: a broker URL gets its credentials back, in memory only. */
  #urlOf(delivery: HeldDelivery): string {
    const encrypted = delivery.url_userinfo_encrypted;
    return encrypted === null
      ? delivery.url
      : withUserinfo(delivery.url, this.#userinfoOf(encrypted));
  }

  /** The POST is over: its outcome is decided now and waits for the next recorded batch. */
  #finish(delivery: HeldDelivery, startedAt: Date, result: AttemptResult, span: Span): void {
    const { outcome, errorKind } = classifyAttempt(result);
    const now = this.#clock.now();
    const retryAfterS =
      result.kind === 'response' && result.retryAfter !== undefined
        ? parseRetryAfter(result.retryAfter, now)
        : null;
    const decision = decideAfterAttempt({
      outcome,
      delaysS: this.#delaysS,
      attemptsMade: delivery.attempts + 1,
      now,
      retryAfterS,
    });
    finishAttemptSpan(span, { result, outcome, status: decision.status });
    const lastError = attemptError(result, errorKind);
    this.#recorder.add({
      delivery,
      startedAt,
      result,
      errorKind,
      lastError,
      decision,
      retryAfterS,
    });
    this.#dispatcher.observe(delivery.endpoint_id, result.durationMs);
  }

  /** A batch is recorded: a retry due at once is claimed now, later ones when the sleep reaches them. */
  #recorded(batch: readonly FinishedAttempt[]): void {
    if (timelineChannels.recorded.hasSubscribers)
      timelineChannels.recorded.publish({
        at: timelineNow(),
        envelopeIds: batch.map((attempt) => attempt.delivery.envelope_id),
      } satisfies RecordedMessage);
    let dueNow = false;
    const now = this.#clock.now().getTime();
    for (const { decision, delivery } of batch) {
      // The next delivery of an ordered subject is free to go once this one is final.
      if (delivery.sequence !== null && decision.status !== 'pending') dueNow = true;
      if (decision.status === 'pending') {
        const due = decision.nextAttemptAt.getTime();
        if (due <= now) dueNow = true;
        else if (this.#nextDueAt === null || due < this.#nextDueAt) this.#nextDueAt = due;
      }
    }
    if (dueNow) this.notify();
    else this.#kick();
  }
}
