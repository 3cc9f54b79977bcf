import { randomBytes } from 'node:crypto';
import { pause } from './wait.ts';

/** One answer (or failure to get one) to one attempt. */
export type Observation = {
  /** Date.now() when the answer (or the error) came. */
  at: number;
  /** Date.now() when the attempt was sent. */
  sentAt: number;
  target: string;
  /** The HTTP status, or 0 when no answer came (connection refused/reset, timeout). */
  status: number;
  /** `error.code` of a JSON error body, or the network error's code. */
  code: string | null;
  retryAfter: string | null;
  /** The first bytes of the body of a 5xx, to show what the service said. */
  excerpt: string | null;
};

/** What the client knows about one award in the end. */
export type AwardRecord = {
  key: string;
  memberId: string;
  points: number;
  /** Date.now() of the first attempt, and of the definite answer (null while unresolved). */
  firstSentAt: number;
  settledAt: number | null;
  attempts: Observation[];
  /** The definite answer: a 2xx, or a 4xx other than 409 idempotency_in_progress and 429. */
  final: {
    status: number;
    code: string | null;
    transactionId: string | null;
    replayed: boolean;
  } | null;
};

export type CarefulClientOptions = {
  /** Base URLs of the API processes; each attempt goes to the next one that may be up. */
  targets: readonly string[];
  rootKey: string;
  /** One attempt's limit; above the server's own 10 s wait on a running idempotency key. */
  attemptTimeoutMs?: number;
  /** Backoff between attempts: doubling from `minMs` to `maxMs`, with jitter. */
  backoff?: { minMs: number; maxMs: number };
};

const retryableCodes = new Set(['idempotency_in_progress']);

/**
 * A program backend as the API docs ask it to behave: every award has its own Idempotency-Key,
 * and it is sent again with the same key and body until a definite answer comes. Connection
 * errors, timeouts, 5xx (503 included), 429 and 409 idempotency_in_progress mean "try again
 * shortly" (Retry-After is honoured, capped at 2 s). It records every attempt and every key's end.
 */
export class CarefulClient {
  readonly records = new Map<string, AwardRecord>();
  readonly observations: Observation[] = [];
  readonly #options: Required<CarefulClientOptions>;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  #next = 0;

  constructor(options: CarefulClientOptions) {
    this.#options = {
      attemptTimeoutMs: 15_000,
      backoff: { minMs: 50, maxMs: 1000 },
      ...options,
    };
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Starts one award (its own key, retried to a definite answer); resolves with its record. */
  award(programId: string, memberId: string, points: number): Promise<AwardRecord> {
    const key = `rel-${randomBytes(9).toString('base64url')}`;
    const record: AwardRecord = {
      key,
      memberId,
      points,
      firstSentAt: Date.now(),
      settledAt: null,
      attempts: [],
      final: null,
    };
    this.records.set(key, record);
    // The reference carries the key into the event and the ledger: the reconciliation finds
    // every application of a key, including ones the client never heard about.
    const body = JSON.stringify({ points, reason: 'reliability', reference: key });
    const path = `/v1/programs/${programId}/members/${memberId}/points/award`;
    const done = this.#retry(record, path, body);
    this.#inFlight.add(done);
    void done.finally(() => this.#inFlight.delete(done));
    return done.then(() => record);
  }

  /**
   * Waits until every award has a definite answer, or until `timeoutMs`; then gives up on the
   * rest (their records keep `final: null`, "unresolved") and returns how many were given up.
   */
  async drain(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.#inFlight.size > 0 && Date.now() < deadline) {
      await Promise.race([
        Promise.all([...this.#inFlight]),
        pause(Math.max(0, deadline - Date.now())),
      ]);
    }
    const left = this.#inFlight.size;
    this.#abort.abort();
    await Promise.all([...this.#inFlight]);
    return left;
  }

  /** Gives up on every award still retrying, at once (a scenario's teardown). */
  async close(): Promise<void> {
    this.#abort.abort();
    await Promise.all([...this.#inFlight]);
  }

  async #retry(record: AwardRecord, path: string, body: string): Promise<void> {
    const { targets, rootKey, attemptTimeoutMs, backoff } = this.#options;
    let target = this.#next++ % targets.length;
    for (let failures = 0; !this.#abort.signal.aborted; failures++) {
      const base = targets[target]!;
      const sentAt = Date.now();
      let observation: Observation;
      let transactionId: string | null = null;
      let replayed = false;
      try {
        const response = await fetch(`${base}${path}`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${rootKey}`,
            'content-type': 'application/json',
            'idempotency-key': record.key,
          },
          body,
          signal: AbortSignal.any([AbortSignal.timeout(attemptTimeoutMs), this.#abort.signal]),
        });
        const text = await response.text();
        type Body = { error?: { code?: string }; transaction_id?: string };
        let parsed: Body | null = null;
        try {
          parsed = JSON.parse(text) as Body;
        } catch {
          parsed = null;
        }
        transactionId = parsed?.transaction_id ?? null;
        replayed = response.headers.get('idempotent-replayed') === 'true';
        observation = {
          at: Date.now(),
          sentAt,
          target: base,
          status: response.status,
          code: parsed?.error?.code ?? null,
          retryAfter: response.headers.get('retry-after'),
          excerpt: response.status >= 500 ? text.slice(0, 200) : null,
        };
      } catch (error) {
        if (this.#abort.signal.aborted) return;
        const cause = (error as { cause?: { code?: string; name?: string } }).cause;
        const name = (error as { name?: string }).name;
        observation = {
          at: Date.now(),
          sentAt,
          target: base,
          status: 0,
          code: cause?.code ?? (name === 'TimeoutError' ? 'timeout' : (cause?.name ?? 'error')),
          retryAfter: null,
          excerpt: null,
        };
      }
      record.attempts.push(observation);
      this.observations.push(observation);
      const { status, code } = observation;
      const definite =
        status >= 200 && status < 500 && status !== 429 && !(code && retryableCodes.has(code));
      if (definite) {
        record.final = { status, code, transactionId, replayed };
        record.settledAt = observation.at;
        return;
      }
      // A process that does not answer may be down: the next attempt tries the next one.
      if (status === 0) target = (target + 1) % targets.length;
      const retryAfterMs = Number(observation.retryAfter) * 1000;
      const delay =
        Number.isFinite(retryAfterMs) && retryAfterMs > 0
          ? Math.min(retryAfterMs, 2000)
          : Math.min(backoff.maxMs, backoff.minMs * 2 ** Math.min(failures, 10)) *
            (0.5 + Math.random() / 2);
      await pause(delay);
    }
  }
}

export type Load = {
  /** Stops starting new awards (the ones started carry on to their answer). */
  stop: () => void;
  /** Awards started so far. */
  started: () => number;
};

/**
 * Starts awards at `ratePerS`, each to a random member with 1-100 points, while fewer than
 * `maxInFlight` are unanswered: a key stuck retrying does not stop the others.
 */
export const startLoad = (options: {
  client: CarefulClient;
  programId: string;
  memberIds: readonly string[];
  ratePerS: number;
  maxInFlight: number;
}): Load => {
  let started = 0;
  const timer = setInterval(
    () => {
      if (options.client.inFlight >= options.maxInFlight) return;
      const member = options.memberIds[Math.floor(Math.random() * options.memberIds.length)]!;
      started++;
      void options.client.award(options.programId, member, 1 + Math.floor(Math.random() * 100));
    },
    Math.max(1, Math.round(1000 / options.ratePerS)),
  );
  return { stop: () => clearInterval(timer), started: () => started };
};
