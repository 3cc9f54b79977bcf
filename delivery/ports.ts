import type { EndpointHealthPolicy, FailingEndpoint } from './endpointHealth.ts';
import type { AttemptErrorKind, AttemptResult, DeliveryDecision } from './outcome.ts';

export type { AttemptResult } from './outcome.ts';

/** One signed POST, ready to send: headers and body are final (the body is what was signed). */
export type HttpRequest = {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** Overall budget for connect, headers and body together. */
  timeoutMs: number;
  /** The endpoint this attempt belongs to; for pooling and metrics, never sent. */
  endpointKey: string;
  /**
   * Ends the attempt early (a shutdown past its deadline): the request is torn down and `post`
   * resolves at once with an error result. The caller decides what an aborted attempt means.
   */
  signal?: AbortSignal;
};

/**
 * The outbound HTTP the dispatcher needs, at its smallest. `post` never rejects: every exchange,
 * including refused addresses and timeouts, resolves to an AttemptResult. Redirects are returned,
 * not followed. `close` releases pooled connections.
 */
export type HttpTransport = {
  post(request: HttpRequest): Promise<AttemptResult>;
  close(): Promise<void>;
};

/** A delivery leased to a worker: what signing and sending it needs (column names as stored). */
export type LeasedDelivery = {
  delivery_id: string;
  program_id: string;
  endpoint_id: string;
  envelope_id: string;
  /** Attempts made before this one. */
  attempts: number;
  type: string;
  body: string;
  is_test: boolean;
  url: string;
  /** A broker URL's credentials, encrypted like the secrets; null when it has none. */
  url_userinfo_encrypted: string | null;
  secret_encrypted: string;
  previous_secret_encrypted: string | null;
  previous_secret_expires_at: Date | null;
  /** On an ordered endpoint: whose events this keeps in order, and its place (text); else null. */
  subject: string | null;
  sequence: string | null;
  /** The W3C traceparent of the command behind the envelope, for the attempt's span link. */
  traceparent?: string | null;
};

/** A leased delivery in a worker's memory, with the lease it holds it under (epoch ms). */
export type HeldDelivery = LeasedDelivery & { leaseOwner: string; leaseExpiresAt: number };

/**
 * The webhook projector's side of a hand-over: rows it inserts already leased to this process's
 * delivery worker, sent as soon as its transaction commits, without a claim statement or a poll
 * in between.
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

/** An attempt whose POST is over, decided and waiting to be recorded. */
export type FinishedAttempt = {
  delivery: HeldDelivery;
  startedAt: Date;
  result: AttemptResult;
  errorKind: AttemptErrorKind | null;
  lastError: string | null;
  decision: DeliveryDecision;
  /** The delay a 429 or 503 asked for with Retry-After, in seconds, as parsed; null: none. */
  retryAfterS: number | null;
};

/**
 * A notification email before it is mailed: a delivery that failed for good or met 410 Gone
 * (`delivery_failed`), or an endpoint failing for half the disable time or disabled for it.
 */
export type FailureNotification = {
  notificationId: string;
  kind: 'delivery_failed' | 'endpoint_failing' | 'endpoint_disabled';
  programId: string;
  /** null for the endpoint kinds. */
  deliveryId: string | null;
  endpointId: string;
  /** null: the program has no notification address; the notification is stored, not mailed. */
  to: string | null;
  subject: string;
  text: string;
};

/**
 * The sustained-failure side of recording a batch: the policy, and how to draft the notice of an
 * endpoint that crossed half or all of the disable time (the transaction stores it).
 */
export type EndpointHealthRecording = {
  policy: EndpointHealthPolicy;
  draft: (
    kind: 'endpoint_failing' | 'endpoint_disabled',
    endpoint: FailingEndpoint,
  ) => FailureNotification;
};

/** What a claim may take: the free room in all, and what each endpoint already holds. */
export type ClaimRequest = {
  now: Date;
  leaseOwner: string;
  leaseExpiresAt: Date;
  /** Rows to lease at most. */
  room: number;
  /** Rows an endpoint may hold in memory, queued or in flight. */
  perEndpointBacklog: number;
  /** Per endpoint: rows counted as held against perEndpointBacklog. */
  held: readonly { endpointId: string; n: number }[];
  /** Endpoints with no room left: not even their expired leases are taken. */
  saturated: readonly string[];
};

/**
 * The delivery rows as the worker uses them: claim due and expired rows under a lease, give
 * leased rows back, and record finished attempts. Implemented over PostgreSQL by
 * adapters/webhooks/deliveryQueue.ts. Every method only touches rows still leased to the caller.
 */
export type DeliveryQueue = {
  /** Leases at most `room` rows, at most each endpoint's free backlog, and returns them. */
  claim(request: ClaimRequest): Promise<LeasedDelivery[]>;
  /** Rows leased to us that will not be sent here: pending again, due at `now`, for any worker. */
  giveBack(rows: readonly HeldDelivery[], now: Date): Promise<void>;
  /**
   * One transaction: each attempt, the outcome of each row still leased to its claim, a 410's
   * endpoint disabled, and the notifications (keyed by delivery id) of the rows that concluded.
   * Resolves with the notifications newly stored, to be mailed after the commit.
   */
  record(
    batch: readonly FinishedAttempt[],
    notifications: ReadonlyMap<string, FailureNotification>,
    now: Date,
    health?: EndpointHealthRecording,
  ): Promise<FailureNotification[]>;
  /** After mailing: when it was sent, or why it was not. */
  markNotified(notificationId: string, result: { sentAt: Date } | { error: string }): Promise<void>;
};

/** An email to a program's notification address. Implemented by adapters/mail/smtpMailer.ts. */
export type Mailer = {
  /** Rejects when the message was not accepted for delivery. */
  send(message: { to: string; subject: string; text: string }): Promise<void>;
};
