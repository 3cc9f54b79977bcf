/**
 * A queued delivery is sent only while its lease has this much left beyond the POST's budget
 * (time to record the attempt); otherwise it is dropped from memory and taken again, by any
 * worker, once the lease ends.
 */
export const leaseMarginMs = 1_000;

/** Weight of the newest POST in an endpoint's running mean duration. */
export const latencyWeight = 0.2;

/** Endpoints whose mean duration is kept at most: past it the means start again from none. */
const maxTrackedEndpoints = 10_000;

/** Attempts finished but not yet recorded beyond which the worker stops claiming more. */
export const maxUnrecorded = 2_000;

/** Rows per claim statement at most. */
export const maxClaim = 1_000;

/** What the dispatcher needs of a leased delivery: whose it is and when its lease ends (epoch ms). */
export type Dispatchable = { endpoint_id: string; leaseExpiresAt: number };

export type DispatcherLimits = {
  /** POSTs in flight at once, all endpoints together. */
  concurrency: number;
  /** POSTs in flight at once per endpoint, so a hanging endpoint cannot take every slot. */
  perEndpointInFlight: number;
  /** Leased deliveries held in memory per endpoint at most (raised to perEndpointInFlight). */
  perEndpointBacklog: number;
  /** Leased deliveries held in memory in all at most (raised to concurrency). */
  backlog: number;
  /** How long a claim's lease lasts. */
  leaseMs: number;
  /** Budget of one POST. */
  timeoutMs: number;
};

/** What a claim should ask for, from what the endpoints hold now. */
export type ClaimPlan = {
  /** Per endpoint: rows counted as held against perEndpointBacklog (a slow one's smaller backlog shows as more held). */
  held: { endpointId: string; n: number }[];
  /** Endpoints with no room left. */
  saturated: string[];
};

/** Room reserved for one hand-over (Dispatcher.reservation). */
export type Reservation<T> = {
  /** Reserves room for one row of the endpoint; false when it has none. */
  take(endpointId: string): boolean;
  /** Queues the rows the room was taken for, and frees what they did not use. */
  queue(rows: readonly T[]): void;
  /** Frees all the room taken. */
  cancel(): void;
};

/**
 * The delivery worker's in-memory scheduler, without timers or I/O: time arrives as `nowMs`.
 *
 * Each endpoint has a FIFO of leased rows, bounded by its backlog (`backlogOf`), and at most
 * `perEndpointInFlight` POSTs; `concurrency` bounds the POSTs of all endpoints, taken round-robin
 * between the endpoints that have a queued row and a free slot of their own. A hanging endpoint
 * holds only its own slots. Every row in memory is counted from its reservation (a claim's or a
 * hand-over's) until its POST ends or it is dropped.
 */
export class Dispatcher<T extends Dispatchable> {
  readonly #concurrency: number;
  readonly #perEndpoint: number;
  readonly #perEndpointBacklog: number;
  readonly #backlog: number;
  readonly #leaseMs: number;
  readonly #timeoutMs: number;
  /** Per endpoint: leased rows waiting for a slot, oldest first. */
  readonly #queues = new Map<string, T[]>();
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
  #held = 0;
  #sending = 0;

  constructor(limits: DispatcherLimits) {
    this.#concurrency = limits.concurrency;
    this.#perEndpoint = limits.perEndpointInFlight;
    this.#perEndpointBacklog = Math.max(this.#perEndpoint, limits.perEndpointBacklog);
    this.#backlog = Math.max(this.#concurrency, limits.backlog);
    this.#leaseMs = limits.leaseMs;
    this.#timeoutMs = limits.timeoutMs;
  }

  /** Rows in memory, all endpoints together. */
  get held(): number {
    return this.#held;
  }

  /** POSTs under way. */
  get sending(): number {
    return this.#sending;
  }

  /** The whole backlog is taken: no hand-over is worth starting. */
  get full(): boolean {
    return this.#held >= this.#backlog;
  }

  /** The endpoint's running mean POST duration in ms, or undefined before its first POST. */
  latencyOf(endpointId: string): number | undefined {
    return this.#latencyMs.get(endpointId);
  }

  /** Rows the endpoint holds in memory now. */
  heldBy(endpointId: string): number {
    return this.#heldByEndpoint.get(endpointId) ?? 0;
  }

  hasRoom(endpointId: string): boolean {
    return this.#held < this.#backlog && this.heldBy(endpointId) < this.backlogOf(endpointId);
  }

  /**
   * How many rows an endpoint may hold in memory: as many as it can be sent well within their
   * lease at its mean POST duration, so a slow endpoint's rows are not claimed only to expire in
   * the queue; never fewer than its in-flight slots, never more than perEndpointBacklog.
   */
  backlogOf(endpointId: string): number {
    const latency = this.#latencyMs.get(endpointId);
    if (latency === undefined) return this.#perEndpointBacklog;
    const waitBudgetMs = (this.#leaseMs - this.#timeoutMs - leaseMarginMs) / 2;
    const rounds = Math.floor(waitBudgetMs / Math.max(latency, 1));
    return Math.max(
      this.#perEndpoint,
      Math.min(this.#perEndpointBacklog, this.#perEndpoint * (1 + rounds)),
    );
  }

  reserve(endpointId: string): void {
    this.#held += 1;
    this.#heldByEndpoint.set(endpointId, this.heldBy(endpointId) + 1);
  }

  release(endpointId: string): void {
    this.#held -= 1;
    const left = (this.#heldByEndpoint.get(endpointId) ?? 1) - 1;
    if (left <= 0) this.#heldByEndpoint.delete(endpointId);
    else this.#heldByEndpoint.set(endpointId, left);
  }

  /** A reserved row is now leased to us: queue it (its reservation stays until it is sent). */
  enqueue(row: T): void {
    let queue = this.#queues.get(row.endpoint_id);
    if (queue === undefined) {
      queue = [];
      this.#queues.set(row.endpoint_id, queue);
    }
    queue.push(row);
    if ((this.#inFlight.get(row.endpoint_id) ?? 0) < this.#perEndpoint)
      this.#ready.add(row.endpoint_id);
  }

  /**
   * The next row to POST now, its slot taken, or undefined when every slot is taken or no
   * endpoint is ready. Endpoints take turns: one row from each ready endpoint in turn. Rows whose
   * lease would end before a POST and its recording could finish are dropped on the way (their
   * reservation freed): any worker takes them again when the lease ends.
   */
  next(nowMs: number): T | undefined {
    while (this.#sending < this.#concurrency) {
      const endpointId = this.#ready.values().next().value;
      if (endpointId === undefined) return undefined;
      this.#ready.delete(endpointId);
      const queue = this.#queues.get(endpointId);
      const row = queue === undefined ? undefined : this.#nextSendable(queue, nowMs);
      if (queue !== undefined && queue.length === 0) this.#queues.delete(endpointId);
      if (row === undefined) continue;
      const inFlight = (this.#inFlight.get(endpointId) ?? 0) + 1;
      this.#inFlight.set(endpointId, inFlight);
      this.#sending += 1;
      if (queue !== undefined && queue.length > 0 && inFlight < this.#perEndpoint)
        this.#ready.add(endpointId);
      return row;
    }
    return undefined;
  }

  #nextSendable(queue: T[], nowMs: number): T | undefined {
    for (;;) {
      const row = queue.shift();
      if (row === undefined) return undefined;
      if (row.leaseExpiresAt - nowMs > this.#timeoutMs + leaseMarginMs) return row;
      this.release(row.endpoint_id);
    }
  }

  /** A POST took `durationMs`: the endpoint's running mean moves toward it. */
  observe(endpointId: string, durationMs: number): void {
    const mean = this.#latencyMs.get(endpointId);
    this.#latencyMs.set(
      endpointId,
      mean === undefined ? durationMs : mean + latencyWeight * (durationMs - mean),
    );
    if (this.#latencyMs.size > maxTrackedEndpoints) this.#latencyMs.clear();
  }

  /**
   * A POST is over (answered, failed or cut): its slot and its row's room are free. True when a
   * claim is now worth making for an endpoint a claim had left rows behind for.
   */
  sent(endpointId: string): boolean {
    this.release(endpointId);
    const claimAgain = this.claimAgainIfDrained(endpointId);
    this.#sending -= 1;
    const inFlight = (this.#inFlight.get(endpointId) ?? 1) - 1;
    if (inFlight <= 0) this.#inFlight.delete(endpointId);
    else this.#inFlight.set(endpointId, inFlight);
    if ((this.#queues.get(endpointId)?.length ?? 0) > 0) this.#ready.add(endpointId);
    return claimAgain;
  }

  /**
   * Half drained after a claim left its rows behind: true once (one more claim for it, not one
   * per POST).
   */
  claimAgainIfDrained(endpointId: string): boolean {
    if (
      this.#starved.has(endpointId) &&
      this.heldBy(endpointId) <= this.backlogOf(endpointId) / 2
    ) {
      this.#starved.delete(endpointId);
      return true;
    }
    return false;
  }

  /**
   * Rows a claim may take now: the free backlog, at most maxClaim, none while `unrecorded`
   * attempts wait to be recorded past maxUnrecorded.
   */
  claimRoom(unrecorded: number): number {
    return unrecorded >= maxUnrecorded ? 0 : Math.min(this.#backlog - this.#held, maxClaim);
  }

  /** Claim in large bites: a claim costs about the same for 50 rows as for 500. */
  worthClaiming(room: number): boolean {
    return room > 0 && (room >= this.#backlog / 4 || this.#held === 0);
  }

  /** What each endpoint holds, as a claim counts it, and which endpoints have no room at all. */
  claimPlan(): ClaimPlan {
    const ids = [...new Set([...this.#heldByEndpoint.keys(), ...this.#latencyMs.keys()])];
    const held = ids.map((endpointId) => ({
      endpointId,
      n: this.heldBy(endpointId) + this.#perEndpointBacklog - this.backlogOf(endpointId),
    }));
    const saturated = held.filter((h) => h.n >= this.#perEndpointBacklog).map((h) => h.endpointId);
    return { held, saturated };
  }

  /** Rows an endpoint may hold at most, before its mean duration shrinks that (a claim's bound). */
  get perEndpointBacklog(): number {
    return this.#perEndpointBacklog;
  }

  /**
   * A claim made with `plan` leased `rows`: each is reserved and queued. Endpoints that had no
   * room, or got all the room the claim offered them (they may have more rows due), are claimed
   * for again once half drained. True when one of them has drained already (sends that finished
   * while the claim ran).
   */
  claimed(plan: ClaimPlan, rows: readonly T[]): boolean {
    for (const id of plan.saturated) this.#starved.add(id);
    const taken = new Map<string, number>();
    for (const row of rows) {
      this.reserve(row.endpoint_id);
      this.enqueue(row);
      taken.set(row.endpoint_id, (taken.get(row.endpoint_id) ?? 0) + 1);
    }
    const offered = new Map(plan.held.map((h) => [h.endpointId, this.#perEndpointBacklog - h.n]));
    for (const [id, n] of taken)
      if (n >= (offered.get(id) ?? this.#perEndpointBacklog)) this.#starved.add(id);
    let claimAgain = false;
    for (const id of this.#starved) if (this.claimAgainIfDrained(id)) claimAgain = true;
    return claimAgain;
  }

  /**
   * Room for one hand-over, taken endpoint by endpoint while its rows are inserted: `queue`
   * queues the rows that were inserted (at most what was taken for each endpoint) and frees the
   * rest; `cancel` frees it all.
   */
  reservation(): Reservation<T> {
    const taken = new Map<string, number>();
    const free = () => {
      for (const [endpointId, n] of taken) for (let i = 0; i < n; i++) this.release(endpointId);
      taken.clear();
    };
    return {
      take: (endpointId) => {
        if (!this.hasRoom(endpointId)) return false;
        this.reserve(endpointId);
        taken.set(endpointId, (taken.get(endpointId) ?? 0) + 1);
        return true;
      },
      queue: (rows) => {
        for (const row of rows) {
          const left = taken.get(row.endpoint_id) ?? 0;
          if (left === 0) continue;
          taken.set(row.endpoint_id, left - 1);
          this.enqueue(row);
        }
        free();
      },
      cancel: free,
    };
  }

  /** Empties every queue (a stop) and frees their rows' room; returns the rows, to give back. */
  drain(): T[] {
    const queued = [...this.#queues.values()].flat();
    this.#queues.clear();
    this.#ready.clear();
    for (const row of queued) this.release(row.endpoint_id);
    return queued;
  }
}
