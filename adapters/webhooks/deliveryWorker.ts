import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { sql, type Kysely } from 'kysely';
import {
  classifyAttempt,
  decideAfterAttempt,
  type AttemptResult,
  type DeliveryDecision,
} from '../../delivery/outcome.ts';
import type { HttpTransport } from '../../delivery/ports.ts';
import { defaultRetrySchedule } from '../../delivery/retryPolicy.ts';
import { decryptSecret, signDocs, signStandard, standardKeyOf } from '../../delivery/signing.ts';
import { settlesBefore } from '../deadline.ts';
import type { Database } from '../db/schema.ts';

/** Attempts finished but not yet recorded beyond which the worker stops claiming more. */
const maxUnrecorded = 2_000;

/** Rows per claim statement at most. */
const maxClaim = 1_000;

/**
 * A queued delivery is sent only while its lease has this much left beyond the POST's budget
 * (time to record the attempt); otherwise it is dropped from memory and taken again, by any
 * worker, once the lease ends.
 */
const leaseMarginMs = 1_000;

/** Weight of the newest POST in an endpoint's running mean duration. */
const latencyWeight = 0.2;

/** An email to the program's notification address. Implemented by adapters/mail/smtpMailer.ts. */
export type Mailer = {
  /** Rejects when the message was not accepted for delivery. */
  send(message: { to: string; subject: string; text: string }): Promise<void>;
};

/** The worker's time: claims, leases, schedules and signature timestamps all read it. */
export type Clock = { now(): Date };

/** pino-compatible, at its smallest. */
export type WorkerLogger = {
  info(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
};

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
  /** Where a program's failure emails go; by default rm_programs.notification_email. */
  notificationAddressOf?: (programId: string) => Promise<string | null>;
  clock?: Clock;
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
  /** Told of every recorded attempt (metrics): the outcome and how long the POST took. */
  onAttempt?: (attempt: { outcome: DeliveryDecision['status']; durationMs: number }) => void;
};

/** A delivery leased to this worker: what signing and sending it needs. */
export type LeasedDelivery = {
  delivery_id: string;
  program_id: string;
  endpoint_id: string;
  envelope_id: string;
  attempts: number;
  type: string;
  body: string;
  is_test: boolean;
  url: string;
  secret_encrypted: string;
  previous_secret_encrypted: string | null;
  previous_secret_expires_at: Date | null;
};

type Held = LeasedDelivery & { leaseOwner: string; leaseExpiresAt: number };

/**
 * The projector's side of a hand-over: rows it inserts already leased to this worker, sent as
 * soon as its transaction commits, without a claim statement or a poll in between.
 */
export type Handoff = {
  readonly leaseOwner: string;
  readonly leaseExpiresAt: Date;
  /** Reserves room for one delivery to this endpoint; false when its backlog is full. */
  take(endpointId: string): boolean;
  /** The transaction committed: these rows (a subset of those taken) are leased to us. */
  deliver(rows: readonly LeasedDelivery[]): void;
  /** The transaction did not commit, or some rows were not inserted: frees what was taken. */
  cancel(): void;
};

type Finished = {
  claim: Held;
  leaseOwner: string;
  startedAt: Date;
  result: AttemptResult;
  errorKind: string | null;
  lastError: string | null;
  decision: DeliveryDecision;
};

type Notification = {
  notificationId: string;
  programId: string;
  deliveryId: string;
  endpointId: string;
  to: string | null;
  subject: string;
  text: string;
};

const consoleLogger: WorkerLogger = {
  info: (fields, message) => console.info(message, fields),
  error: (fields, message) => console.error(message, fields),
};

/** Decrypted secrets, keyed by their ciphertext: a rotation changes the key, so never stale. */
const maxCachedSecrets = 10_000;

/**
 * Sends leased deliveries and records every attempt. Deliveries reach it two ways: the projector
 * hands over the rows it just inserted already leased to this worker (the fast path: no claim, no
 * poll), and claims take due rows and rows whose lease expired (retries, other processes' work,
 * what did not fit). A claim is one statement (FOR UPDATE SKIP LOCKED plus a lease), so any number
 * of workers can run; a dead worker's rows return when their lease ends.
 *
 * In memory each endpoint has a FIFO of leased rows, bounded by `perEndpointBacklog`, and at most
 * `perEndpointInFlight` POSTs; `concurrency` bounds the POSTs of all endpoints, taken round-robin.
 * A hanging endpoint holds only its own slots. Delivery never throws outward: every exchange ends
 * as an attempt row and a status, recorded in batched statements.
 */
export class DeliveryWorker {
  readonly #db: Kysely<Database>;
  readonly #transport: HttpTransport;
  readonly #secretKey: Uint8Array;
  readonly #publicUrl: string;
  readonly #userAgent: string;
  readonly #mailer: Mailer | null;
  readonly #addressOf: (programId: string) => Promise<string | null>;
  readonly #clock: Clock;
  readonly #delaysS: readonly number[];
  readonly #timeoutMs: number;
  readonly #concurrency: number;
  readonly #perEndpoint: number;
  readonly #perEndpointBacklog: number;
  readonly #backlog: number;
  readonly #leaseMs: number;
  readonly #pollIntervalMs: number;
  readonly #logger: WorkerLogger;
  readonly #onAttempt: DeliveryWorkerOptions['onAttempt'];
  readonly #workerId = randomUUID();
  readonly #secrets = new Map<string, { plain: string; key: Uint8Array }>();
  /** Per endpoint: leased rows waiting for a slot, oldest first. */
  readonly #queues = new Map<string, Held[]>();
  /** Per endpoint: POSTs under way. */
  readonly #inFlight = new Map<string, number>();
  /** Per endpoint: rows in memory (queued, in flight, or reserved by a hand-over). */
  readonly #heldByEndpoint = new Map<string, number>();
  /** Per endpoint: running mean of its POSTs' durations, ms (absent: none yet). */
  readonly #latencyMs = new Map<string, number>();
  /** Endpoints a claim left out or cut short for lack of room: claim again when they drain. */
  readonly #starved = new Set<string>();
  /** Endpoints with queued rows and a free slot of their own, in round-robin order. */
  readonly #ready = new Set<string>();
  readonly #sends = new Set<Promise<void>>();
  /** Rows whose POST is under way. */
  readonly #posting = new Set<Held>();
  /** Rows whose POST a stop cut short and gave back: whatever their POST returns is dropped. */
  readonly #cut = new Set<Held>();
  /** Aborts every POST under way: a stop past its deadline. */
  readonly #cutPosts = new AbortController();
  #held = 0;
  #sending = 0;
  #claimSeq = 0;
  #finished: Finished[] = [];
  #flushing: Promise<void> | null = null;
  #running = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #woken = false;
  /** The last claim came back full, or work was announced: claim again when there is room. */
  #moreDue = true;
  /** The earliest retry this worker scheduled: sleep no longer than until then. */
  #nextDueAt: number | null = null;

  constructor(options: DeliveryWorkerOptions) {
    this.#db = options.db;
    this.#transport = options.transport;
    this.#secretKey = options.secretKey;
    this.#publicUrl = options.publicUrl.replace(/\/+$/, '');
    this.#userAgent = `Incentable-Webhooks/${options.version}`;
    this.#mailer = options.mailer ?? null;
    this.#addressOf =
      options.notificationAddressOf ?? ((programId) => this.#programAddress(programId));
    this.#clock = options.clock ?? { now: () => new Date() };
    this.#delaysS = options.delaysS ?? defaultRetrySchedule;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#concurrency = options.concurrency ?? 64;
    this.#perEndpoint = options.perEndpointInFlight ?? 8;
    this.#perEndpointBacklog = Math.max(
      this.#perEndpoint,
      options.perEndpointBacklog ?? 8 * this.#perEndpoint,
    );
    this.#backlog = Math.max(this.#concurrency, options.backlog ?? 8 * this.#concurrency);
    // Twice the attempt's budget plus room to record it: a live worker always finishes first.
    this.#leaseMs = options.leaseMs ?? 2 * this.#timeoutMs + 5_000;
    this.#pollIntervalMs = options.pollIntervalMs ?? 250;
    this.#logger = options.logger ?? consoleLogger;
    this.#onAttempt = options.onAttempt;
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
    const queued = [...this.#queues.values()].flat();
    this.#queues.clear();
    this.#ready.clear();
    for (const row of queued) this.#release(row.endpoint_id);
    await this.#giveBack(queued);
    const sends = Promise.all([...this.#sends]);
    let cutDeliveries: string[] = [];
    if (options.cut === undefined) await sends;
    else if (!(await settlesBefore(sends, options.cut)))
      cutDeliveries = await this.#cutPostsUnderWay();
    await this.#flush();
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
    if (!this.#running || this.#held >= this.#backlog) return null;
    const now = this.#clock.now().getTime();
    const leaseOwner = `${this.#workerId}:${++this.#claimSeq}`;
    const leaseExpiresAt = now + this.#leaseMs;
    const taken = new Map<string, number>();
    let open = true;
    const cancelTaken = () => {
      for (const [endpointId, n] of taken) for (let i = 0; i < n; i++) this.#release(endpointId);
      taken.clear();
    };
    return {
      leaseOwner,
      leaseExpiresAt: new Date(leaseExpiresAt),
      take: (endpointId) => {
        if (!open || !this.#running || !this.#hasRoom(endpointId)) return false;
        this.#reserve(endpointId);
        taken.set(endpointId, (taken.get(endpointId) ?? 0) + 1);
        return true;
      },
      deliver: (rows) => {
        if (!open) return;
        open = false;
        if (!this.#running) {
          // Stopped between the batch's start and its commit: the rows are pending again.
          cancelTaken();
          void this.#giveBack(rows.map((row) => ({ ...row, leaseOwner, leaseExpiresAt })));
          return;
        }
        for (const row of rows) {
          const left = taken.get(row.endpoint_id) ?? 0;
          if (left === 0) continue;
          taken.set(row.endpoint_id, left - 1);
          this.#enqueue({ ...row, leaseOwner, leaseExpiresAt });
        }
        cancelTaken();
        this.#pump();
      },
      cancel: () => {
        if (!open) return;
        open = false;
        cancelTaken();
      },
    };
  }

  #hasRoom(endpointId: string): boolean {
    return (
      this.#held < this.#backlog &&
      (this.#heldByEndpoint.get(endpointId) ?? 0) < this.#backlogOf(endpointId)
    );
  }

  /**
   * How many rows an endpoint may hold in memory: as many as it can be sent well within their
   * lease at its mean POST duration, so a slow endpoint's rows are not claimed only to expire in
   * the queue; never fewer than its in-flight slots, never more than perEndpointBacklog.
   */
  #backlogOf(endpointId: string): number {
    const latency = this.#latencyMs.get(endpointId);
    if (latency === undefined) return this.#perEndpointBacklog;
    const waitBudgetMs = (this.#leaseMs - this.#timeoutMs - leaseMarginMs) / 2;
    const rounds = Math.floor(waitBudgetMs / Math.max(latency, 1));
    return Math.max(
      this.#perEndpoint,
      Math.min(this.#perEndpointBacklog, this.#perEndpoint * (1 + rounds)),
    );
  }

  /** Half drained after a claim left its rows behind: one more claim for it, not one per POST. */
  #claimAgainIfDrained(endpointId: string): void {
    if (
      this.#starved.has(endpointId) &&
      (this.#heldByEndpoint.get(endpointId) ?? 0) <= this.#backlogOf(endpointId) / 2
    ) {
      this.#starved.delete(endpointId);
      this.#moreDue = true;
    }
  }

  #reserve(endpointId: string): void {
    this.#held += 1;
    this.#heldByEndpoint.set(endpointId, (this.#heldByEndpoint.get(endpointId) ?? 0) + 1);
  }

  #release(endpointId: string): void {
    this.#held -= 1;
    const left = (this.#heldByEndpoint.get(endpointId) ?? 1) - 1;
    if (left <= 0) this.#heldByEndpoint.delete(endpointId);
    else this.#heldByEndpoint.set(endpointId, left);
  }

  /** A reserved row is now leased to us: queue it (its reservation stays until it is sent). */
  #enqueue(row: Held): void {
    let queue = this.#queues.get(row.endpoint_id);
    if (queue === undefined) {
      queue = [];
      this.#queues.set(row.endpoint_id, queue);
    }
    queue.push(row);
    if ((this.#inFlight.get(row.endpoint_id) ?? 0) < this.#perEndpoint)
      this.#ready.add(row.endpoint_id);
  }

  /** Starts POSTs while there are slots: one per ready endpoint in turn. */
  #pump(): void {
    while (this.#sending < this.#concurrency && this.#ready.size > 0) {
      const endpointId = this.#ready.values().next().value as string;
      this.#ready.delete(endpointId);
      const queue = this.#queues.get(endpointId);
      const row = queue === undefined ? undefined : this.#nextSendable(queue);
      if (queue !== undefined && queue.length === 0) this.#queues.delete(endpointId);
      if (row === undefined) continue;
      const inFlight = (this.#inFlight.get(endpointId) ?? 0) + 1;
      this.#inFlight.set(endpointId, inFlight);
      this.#sending += 1;
      if (queue !== undefined && queue.length > 0 && inFlight < this.#perEndpoint)
        this.#ready.add(endpointId);
      const send = this.#send(row);
      this.#sends.add(send);
      void send.finally(() => this.#sends.delete(send));
    }
  }

  /** The oldest queued row whose lease outlasts a POST; rows too close to their end are dropped. */
  #nextSendable(queue: Held[]): Held | undefined {
    const now = this.#clock.now().getTime();
    for (;;) {
      const row = queue.shift();
      if (row === undefined) return undefined;
      if (row.leaseExpiresAt - now > this.#timeoutMs + leaseMarginMs) return row;
      // Held too long behind a slow endpoint: any worker takes it again when the lease ends.
      this.#release(row.endpoint_id);
    }
  }

  async #run(): Promise<void> {
    while (this.#running) {
      if (this.#nextDueAt !== null && this.#nextDueAt <= this.#clock.now().getTime()) {
        this.#nextDueAt = null;
        this.#moreDue = true;
      }
      const room =
        this.#finished.length >= maxUnrecorded ? 0 : Math.min(this.#backlog - this.#held, maxClaim);
      // Claim in large bites: a claim costs about the same for 50 rows as for 500.
      const worthIt = room > 0 && (room >= this.#backlog / 4 || this.#held === 0);
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

  /**
   * One statement: lock due rows (and rows whose lease expired) of enabled endpoints, keep at
   * most the endpoint's free backlog of each, lease them to this claim and return what signing
   * needs.
   *
   * Due rows are found endpoint by endpoint, each walking its own slice of the partial index
   * (endpoint_id, next_attempt_at) in order and stopping at its free room: an endpoint whose
   * backlog is full, or a slow endpoint's million old rows, are never walked over to reach the
   * others'. Only endpoints with pending rows are visited (10,000 endpoints of which 10 have work:
   * 0.7 ms, against 130 ms when every endpoint was probed), in random order, so when the worker
   * has less room than the endpoints could fill, none is always last.
   */
  async #claim(room: number): Promise<number> {
    const now = this.#clock.now();
    const leaseOwner = `${this.#workerId}:${++this.#claimSeq}`;
    const leaseExpiresAt = now.getTime() + this.#leaseMs;
    // What each endpoint holds, counted against perEndpointBacklog: a slow endpoint's smaller
    // backlog shows as more held.
    const heldIds = [...new Set([...this.#heldByEndpoint.keys(), ...this.#latencyMs.keys()])];
    const heldCounts = heldIds.map(
      (id) => (this.#heldByEndpoint.get(id) ?? 0) + this.#perEndpointBacklog - this.#backlogOf(id),
    );
    const saturated = heldIds.filter((_, i) => heldCounts[i]! >= this.#perEndpointBacklog);
    const claim = sql<LeasedDelivery>`
      with recursive held as (
        select * from unnest(${heldIds}::text[], ${heldCounts}::int[]) as h(endpoint_id, n)
      ),
      -- The endpoints that have pending rows, each found by one step down the due index (a
      -- skip scan): a claim costs the endpoints with work, not every endpoint there is.
      waiting(endpoint_id) as (
        select min(d.endpoint_id) from webhook_deliveries d where d.status = 'pending'
        union all
        select (select min(d.endpoint_id) from webhook_deliveries d
          where d.status = 'pending' and d.endpoint_id > w.endpoint_id)
        from waiting w where w.endpoint_id is not null
      ),
      free as (
        select e.endpoint_id, ${this.#perEndpointBacklog}::int - coalesce(h.n, 0) as n
        from waiting w
        join webhook_endpoints e on e.endpoint_id = w.endpoint_id
        left join held h on h.endpoint_id = e.endpoint_id
        where e.enabled and ${this.#perEndpointBacklog}::int - coalesce(h.n, 0) > 0
        order by random()
      ),
      due as (
        select c.delivery_id, c.endpoint_id, c.next_attempt_at
        from free f cross join lateral (
          select d.delivery_id, d.endpoint_id, d.next_attempt_at
          from webhook_deliveries d
          where d.endpoint_id = f.endpoint_id and d.status = 'pending'
            and d.next_attempt_at <= ${now}
          order by d.next_attempt_at
          limit least(f.n, ${room}::int)
          for update of d skip locked
        ) c
        limit ${room}
      ),
      -- Leases that ended: only rows leased to a worker, so a short walk in lease order.
      expired as (
        select d.delivery_id, d.endpoint_id, d.next_attempt_at
        from webhook_deliveries d
        join webhook_endpoints e on e.endpoint_id = d.endpoint_id and e.enabled
        where d.status = 'delivering' and d.lease_expires_at <= ${now}
          and d.endpoint_id <> all(${saturated}::text[])
        order by d.lease_expires_at
        limit ${room}
        for update of d skip locked
      ),
      candidates as (
        select * from (select * from expired union all select * from due) both_kinds limit ${room}
      ),
      ranked as (
        select c.delivery_id,
          row_number() over (partition by c.endpoint_id order by c.next_attempt_at) as rn,
          ${this.#perEndpointBacklog}::int - coalesce(h.n, 0) as free
        from candidates c left join held h on h.endpoint_id = c.endpoint_id
      )
      update webhook_deliveries d
      set status = 'delivering', lease_expires_at = ${new Date(leaseExpiresAt)},
        lease_owner = ${leaseOwner}, updated_at = ${now}
      from ranked r, webhook_envelopes v, webhook_endpoints e
      where d.delivery_id = r.delivery_id and r.rn <= r.free
        and v.envelope_id = d.envelope_id and e.endpoint_id = d.endpoint_id
      returning d.delivery_id, d.program_id, d.endpoint_id, d.envelope_id, d.attempts,
        v.type, v.body, v.is_test, e.url, e.secret_encrypted, e.previous_secret_encrypted,
        e.previous_secret_expires_at`;
    // Index scans are the only way in: each walk above must use its index in order and stop at
    // its limit. With statistics older than the backlog (a burst, an outage, autovacuum not yet
    // round) the planner otherwise fetched every due row, sorted them all (spilling to disk at
    // 200k) and kept the first thousand, for every claim: 100-600 ms each.
    const result = await this.#db.transaction().execute(async (tx) => {
      await sql`select set_config('enable_seqscan', 'off', true),
        set_config('enable_bitmapscan', 'off', true), set_config('jit', 'off', true)`.execute(tx);
      return claim.execute(tx);
    });
    for (const id of saturated) this.#starved.add(id);
    const taken = new Map<string, number>();
    for (const row of result.rows) {
      this.#reserve(row.endpoint_id);
      this.#enqueue({ ...row, leaseOwner, leaseExpiresAt });
      taken.set(row.endpoint_id, (taken.get(row.endpoint_id) ?? 0) + 1);
    }
    // An endpoint that got all the room the claim offered it may have more rows due.
    const offered = new Map(
      heldIds.map((id, i) => [id, this.#perEndpointBacklog - heldCounts[i]!]),
    );
    for (const [id, n] of taken)
      if (n >= (offered.get(id) ?? this.#perEndpointBacklog)) this.#starved.add(id);
    // Sends that finished while the claim ran may already have drained one of them.
    for (const id of this.#starved) this.#claimAgainIfDrained(id);
    this.#pump();
    return result.rows.length;
  }

  /** Rows leased to us that will not be sent here: pending again, due now, for any worker. */
  async #giveBack(rows: readonly Held[]): Promise<void> {
    if (rows.length === 0) return;
    try {
      await sql`
        update webhook_deliveries d
        set status = 'pending', lease_expires_at = null, lease_owner = null,
          next_attempt_at = ${this.#clock.now()}
        from unnest(${rows.map((r) => r.delivery_id)}::text[], ${rows.map((r) => r.leaseOwner)}::text[])
          as v(delivery_id, lease_owner)
        where d.delivery_id = v.delivery_id and d.status = 'delivering'
          and d.lease_owner = v.lease_owner`.execute(this.#db);
    } catch (error) {
      // Not lost: the rows come back when their lease ends.
      this.#logger.error(
        { err: error, deliveries: rows.length },
        'giving back leased deliveries failed',
      );
    }
  }

  /** The secret as shown to the user, and its Standard Webhooks key (base64-decoded). */
  #secret(encrypted: string): { plain: string; key: Uint8Array } {
    let secret = this.#secrets.get(encrypted);
    if (secret === undefined) {
      const plain = decryptSecret(encrypted, this.#secretKey);
      secret = { plain, key: standardKeyOf(plain) };
      if (this.#secrets.size >= maxCachedSecrets) this.#secrets.clear();
      this.#secrets.set(encrypted, secret);
    }
    return secret;
  }

  /** The signed request: the envelope's stored bytes, never re-serialised. */
  #headers(claim: Held, sentAt: Date): Record<string, string> {
    const secret = this.#secret(claim.secret_encrypted);
    const keys = [secret.key];
    if (
      claim.previous_secret_encrypted !== null &&
      claim.previous_secret_expires_at !== null &&
      claim.previous_secret_expires_at.getTime() > sentAt.getTime()
    ) {
      keys.push(this.#secret(claim.previous_secret_encrypted).key);
    }
    return {
      'content-type': 'application/json',
      'user-agent': this.#userAgent,
      'x-incentable-signature': signDocs(claim.body, secret.plain),
      'x-incentable-event': claim.type,
      'x-incentable-delivery': claim.delivery_id,
      ...signStandard({ id: claim.envelope_id, sentAt, body: claim.body }, keys),
      ...(claim.is_test && { 'x-incentable-test': 'true' }),
    };
  }

  async #send(claim: Held): Promise<void> {
    const startedAt = this.#clock.now();
    let result: AttemptResult;
    this.#posting.add(claim);
    try {
      result = await this.#transport.post({
        url: claim.url,
        headers: this.#headers(claim, startedAt),
        body: claim.body,
        timeoutMs: this.#timeoutMs,
        endpointKey: claim.endpoint_id,
        signal: this.#cutPosts.signal,
      });
    } catch (error) {
      // A secret that does not decrypt (wrong key) or a transport bug: recorded, retried, never thrown.
      result = { kind: 'error', error: 'other', message: messageOf(error), durationMs: 0 };
    }
    this.#posting.delete(claim);
    // A row a stop cut short was given back: pending again, this attempt neither counted nor kept.
    if (!this.#cut.delete(claim)) this.#finish(claim, startedAt, result);
    this.#release(claim.endpoint_id);
    this.#claimAgainIfDrained(claim.endpoint_id);
    this.#sending -= 1;
    const inFlight = (this.#inFlight.get(claim.endpoint_id) ?? 1) - 1;
    if (inFlight <= 0) this.#inFlight.delete(claim.endpoint_id);
    else this.#inFlight.set(claim.endpoint_id, inFlight);
    if ((this.#queues.get(claim.endpoint_id)?.length ?? 0) > 0) this.#ready.add(claim.endpoint_id);
    this.#pump();
    this.#scheduleFlush();
    this.#kick();
  }

  /** The POST is over: its outcome is decided now and waits for the next recorded batch. */
  #finish(claim: Held, startedAt: Date, result: AttemptResult): void {
    const { outcome, errorKind } = classifyAttempt(result);
    const decision = decideAfterAttempt({
      outcome,
      delaysS: this.#delaysS,
      attemptsMade: claim.attempts + 1,
      now: this.#clock.now(),
    });
    const lastError =
      errorKind === null
        ? null
        : result.kind === 'response'
          ? `HTTP ${result.status}${errorKind === 'redirect' ? ' (redirects are not followed)' : ''}`
          : `${result.error}: ${result.message}`;
    const { leaseOwner } = claim;
    this.#finished.push({ claim, leaseOwner, startedAt, result, errorKind, lastError, decision });
    // The POST is over: its slot is free now, not when the attempt is recorded, so sending and
    // recording overlap. The row stays leased ('delivering') until recorded, so no claim takes
    // it again meanwhile; #run stops claiming while too many attempts wait to be recorded.
    const mean = this.#latencyMs.get(claim.endpoint_id);
    this.#latencyMs.set(
      claim.endpoint_id,
      mean === undefined ? result.durationMs : mean + latencyWeight * (result.durationMs - mean),
    );
    if (this.#latencyMs.size > maxCachedSecrets) this.#latencyMs.clear();
  }

  #scheduleFlush(): void {
    if (this.#flushing) return;
    this.#flushing = (async () => {
      // Let the sends that finish in the same tick join this batch.
      await new Promise((resolve) => setImmediate(resolve));
      while (this.#finished.length > 0) {
        const batch = this.#finished.splice(0, 500);
        await this.#recordWithRetry(batch);
      }
    })().finally(() => {
      this.#flushing = null;
      if (this.#finished.length > 0) this.#scheduleFlush();
    });
  }

  async #flush(): Promise<void> {
    while (this.#flushing || this.#finished.length > 0) {
      if (!this.#flushing) this.#scheduleFlush();
      await this.#flushing;
    }
  }

  /**
   * Records a batch; on a database fault keeps trying while running. If the worker stops first,
   * the rows stay leased and any worker retries them after the lease (at least once, never lost).
   */
  async #recordWithRetry(batch: Finished[]): Promise<void> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        await this.#record(batch);
        for (const f of batch)
          this.#onAttempt?.({ outcome: f.decision.status, durationMs: f.result.durationMs });
        break;
      } catch (error) {
        this.#logger.error(
          { err: error, deliveries: batch.length },
          'recording webhook attempts failed',
        );
        if (!this.#running || attempt >= 20) break;
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 5_000)));
      }
    }
    let dueNow = false;
    const now = this.#clock.now().getTime();
    for (const { decision } of batch) {
      if (decision.status === 'pending') {
        const due = decision.nextAttemptAt.getTime();
        if (due <= now) dueNow = true;
        else if (this.#nextDueAt === null || due < this.#nextDueAt) this.#nextDueAt = due;
      }
    }
    // A retry due at once is claimed now; later ones when the loop's sleep reaches them.
    if (dueNow) this.notify();
    else this.#kick();
  }

  /** One transaction: one statement for the outcomes and their attempts, then 410s and notifications. */
  async #record(batch: Finished[]): Promise<void> {
    const now = this.#clock.now();
    const terminal = batch.filter(
      (f) => f.decision.status === 'failed' || f.decision.status === 'gone',
    );
    const addresses = new Map<string, string | null>();
    for (const f of terminal) {
      if (!addresses.has(f.claim.program_id)) {
        addresses.set(
          f.claim.program_id,
          await this.#addressOf(f.claim.program_id).catch(() => null),
        );
      }
    }
    // One statement: the attempts, then the outcomes of the rows still leased to this claim.
    // One JSON document for the whole batch: serialised natively, parsed once by PostgreSQL.
    const rows = batch.map((f) => ({
      delivery_id: f.claim.delivery_id,
      lease_owner: f.leaseOwner,
      status: f.decision.status,
      attempts: f.claim.attempts + 1,
      next_attempt_at: f.decision.status === 'pending' ? f.decision.nextAttemptAt : null,
      last_status: f.result.kind === 'response' ? f.result.status : null,
      last_error: storable(f.lastError),
      started_at: f.startedAt,
      duration_ms: Math.max(0, Math.round(f.result.durationMs)),
      response_body: f.result.kind === 'response' ? storable(f.result.body.slice(0, 4096)) : null,
      error_kind: f.errorKind,
      error_message: storable(
        f.result.kind === 'error' ? f.result.message.slice(0, 1000) : f.lastError,
      ),
    }));
    const recordset = (document: string) => sql`json_to_recordset(${document}::json) as v(
      delivery_id text, lease_owner text, status text, attempts int,
      next_attempt_at timestamptz, last_status int, last_error text,
      started_at timestamptz, duration_ms int, response_body text, error_kind text,
      error_message text)`;
    const notifications = await this.#db.transaction().execute(async (tx) => {
      // The outcome of every row still leased to its claim, and the attempts of exactly those
      // rows: the update's row locks keep a concurrent deleteEndpoint from removing a delivery
      // under its new attempt (it waits for this commit, or was first and nothing is written).
      const updated = await sql<{ delivery_id: string }>`
        with v as (select * from ${recordset(JSON.stringify(rows))}),
        updated as (
          update webhook_deliveries d
          set status = v.status, attempts = v.attempts, next_attempt_at = v.next_attempt_at,
            lease_expires_at = null, lease_owner = null, last_status = v.last_status,
            last_error = v.last_error, updated_at = ${now}
          from v
          where d.delivery_id = v.delivery_id and d.status = 'delivering'
            and d.lease_owner = v.lease_owner
          returning d.delivery_id
        ),
        attempts as (
          insert into webhook_attempts (delivery_id, attempt_number, started_at, duration_ms,
            http_status, response_body, error_kind, error_message)
          select v.delivery_id, v.attempts, v.started_at, v.duration_ms, v.last_status,
            v.response_body, v.error_kind, v.error_message
          from v join updated u on u.delivery_id = v.delivery_id
          on conflict (delivery_id, attempt_number) do nothing
        )
        select delivery_id from updated`.execute(tx);
      const ours = new Set(updated.rows.map((r) => r.delivery_id));
      // A claim that lost its lease to another worker (rare) records its attempt but not the
      // outcome. Its row is locked first, as a foreign key would lock it, so that a delivery
      // deleted meanwhile gets no attempt.
      const lost = rows.filter((r) => !ours.has(r.delivery_id));
      if (lost.length > 0) {
        await sql`select 1 from webhook_deliveries
          where delivery_id = any(${lost.map((r) => r.delivery_id)}::text[])
          for key share`.execute(tx);
        await sql`
          insert into webhook_attempts (delivery_id, attempt_number, started_at, duration_ms,
            http_status, response_body, error_kind, error_message)
          select v.delivery_id, v.attempts, v.started_at, v.duration_ms, v.last_status,
            v.response_body, v.error_kind, v.error_message
          from ${recordset(JSON.stringify(lost))}
          join webhook_deliveries d on d.delivery_id = v.delivery_id
          on conflict (delivery_id, attempt_number) do nothing`.execute(tx);
      }
      const concluded = terminal.filter((f) => ours.has(f.claim.delivery_id));
      if (concluded.length === 0) return [];

      const gone = concluded.filter((f) => f.decision.status === 'gone');
      for (const f of gone) {
        await tx
          .updateTable('webhook_endpoints')
          .set({
            enabled: false,
            disabled_reason: `The endpoint answered 410 Gone to delivery ${f.claim.delivery_id} at ${now.toISOString()}.`,
            updated_at: now,
          })
          .where('endpoint_id', '=', f.claim.endpoint_id)
          .where('enabled', '=', true)
          .execute();
      }

      const drafts = concluded.map((f) =>
        this.#draft(f, addresses.get(f.claim.program_id) ?? null),
      );
      const inserted = await tx
        .insertInto('webhook_notifications')
        .values(
          drafts.map((n) => ({
            notification_id: n.notificationId,
            program_id: n.programId,
            delivery_id: n.deliveryId,
            endpoint_id: n.endpointId,
            to_address: n.to,
            subject: n.subject,
            body: n.text,
            sent_at: null,
            error: null,
            created_at: now,
          })),
        )
        .onConflict((oc) => oc.column('delivery_id').doNothing())
        .returning('notification_id')
        .execute();
      const fresh = new Set(inserted.map((r) => r.notification_id));
      return drafts.filter((n) => fresh.has(n.notificationId));
    });
    for (const notification of notifications) await this.#notify(notification);
  }

  #draft(f: Finished, to: string | null): Notification {
    const { claim } = f;
    const endpoint = endpointLabel(claim.endpoint_id, claim.url);
    const link = `${this.#publicUrl}/dashboard/webhooks/${claim.endpoint_id}/deliveries/${claim.delivery_id}`;
    const gone = f.decision.status === 'gone';
    const lastStatus = f.result.kind === 'response' ? String(f.result.status) : 'no response';
    const text = [
      gone
        ? `Your webhook endpoint answered 410 Gone, so it has been disabled. No further events will be sent to it until you re-enable it.`
        : `A webhook could not be delivered after ${claim.attempts + 1} attempts and has been marked as failed.`,
      '',
      `Endpoint: ${endpoint}`,
      `Event type: ${claim.type}`,
      `Event id: ${claim.envelope_id}`,
      `Delivery id: ${claim.delivery_id}`,
      `Attempts: ${claim.attempts + 1}`,
      `Last status: ${lastStatus}`,
      `Last error: ${f.lastError ?? 'none'}`,
      '',
      `Details and redelivery: ${link}`,
    ].join('\n');
    return {
      notificationId: randomUUID(),
      programId: claim.program_id,
      deliveryId: claim.delivery_id,
      endpointId: claim.endpoint_id,
      to,
      subject: gone
        ? `Webhook endpoint disabled (410 Gone): ${endpoint}`
        : `Webhook delivery failed: ${claim.type} to ${endpoint}`,
      text,
    };
  }

  /** After the commit: mail it, or leave sent_at null and log why. Never throws. */
  async #notify(n: Notification): Promise<void> {
    const fields = {
      notificationId: n.notificationId,
      deliveryId: n.deliveryId,
      endpointId: n.endpointId,
    };
    if (this.#mailer === null || n.to === null) {
      this.#logger.info(
        {
          ...fields,
          reason:
            this.#mailer === null ? 'no SMTP configured' : 'program has no notification address',
        },
        `webhook notification stored, not mailed: ${n.subject}`,
      );
      return;
    }
    let error: string | null = null;
    try {
      await this.#mailer.send({ to: n.to, subject: n.subject, text: n.text });
    } catch (cause) {
      error = messageOf(cause);
      this.#logger.error({ ...fields, err: cause }, 'sending webhook notification failed');
    }
    try {
      await this.#db
        .updateTable('webhook_notifications')
        .set(error === null ? { sent_at: this.#clock.now() } : { error: error.slice(0, 1000) })
        .where('notification_id', '=', n.notificationId)
        .execute();
    } catch (cause) {
      this.#logger.error({ ...fields, err: cause }, 'recording webhook notification failed');
    }
  }

  async #programAddress(programId: string): Promise<string | null> {
    const row = await this.#db
      .selectFrom('rm_programs')
      .select('notification_email')
      .where('program_id', '=', programId)
      .executeTakeFirst();
    return row?.notification_email ?? null;
  }
}

/** PostgreSQL text cannot hold NUL: a receiver's body with one is kept with U+FFFD in its place. */
const storable = (text: string | null): string | null =>
  text === null ? null : text.replaceAll('\u0000', '\uFFFD');

const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

/**
 * How emails and logs name an endpoint: its id and host. The path and query string may carry a
 * receiver's token, and an email travels further than the dashboard.
 */
export const endpointLabel = (endpointId: string, url: string): string => {
  let host = 'an unreadable URL';
  try {
    host = new URL(url).host;
  } catch {
    // Stored URLs were validated on the way in; say so rather than print the raw text.
  }
  return `${endpointId} at ${host}`;
};
