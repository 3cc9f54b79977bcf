import { nextAttemptAt } from './retryPolicy.ts';

/** What a transport can tell us about a failed exchange; vendor errors are mapped in adapters/. */
export type TransportErrorKind =
  | 'timeout'
  | 'connection_refused'
  | 'dns'
  | 'tls'
  | 'connection_reset'
  | 'ssrf_blocked'
  /** A broker refused the message: not routable to any queue or stream, nacked, or no access. */
  | 'broker_rejected'
  | 'other';

/**
 * One attempt as the transport saw it. Every exchange ends as one of these values: delivery
 * never throws outward. `body` is the response body, truncated by the transport (4096 bytes).
 * A broker destination that confirmed the message (RabbitMQ's publisher confirm, JetStream's
 * ack) is `published`, with what the broker said in `detail`: there is no HTTP status to show.
 */
export type AttemptResult =
  | { kind: 'response'; status: number; durationMs: number; body: string }
  | { kind: 'published'; durationMs: number; detail: string }
  | { kind: 'error'; error: TransportErrorKind; message: string; durationMs: number };

export type AttemptOutcome = 'delivered' | 'gone' | 'retry';

export type AttemptErrorKind = TransportErrorKind | 'redirect' | 'non_2xx';

export type AttemptClassification = {
  outcome: AttemptOutcome;
  /** null exactly when delivered. */
  errorKind: AttemptErrorKind | null;
};

/**
 * 2xx (or a broker's confirm) delivers; 410 Gone means the receiver retired the endpoint, so retrying is pointless; any
 * other status, a redirect (never followed: it could point anywhere, SSRF included), a timeout or
 * a connection error is a failure to retry (DESIGN.md, "Webhooks: the wire contract").
 */
export const classifyAttempt = (
  result:
    | { kind: 'response'; status: number }
    | { kind: 'published' }
    | { kind: 'error'; error: TransportErrorKind },
): AttemptClassification => {
  switch (result.kind) {
    case 'published':
      return { outcome: 'delivered', errorKind: null };
    case 'response': {
      if (result.status >= 200 && result.status <= 299)
        return { outcome: 'delivered', errorKind: null };
      if (result.status === 410) return { outcome: 'gone', errorKind: 'non_2xx' };
      if (result.status >= 300 && result.status <= 399)
        return { outcome: 'retry', errorKind: 'redirect' };
      return { outcome: 'retry', errorKind: 'non_2xx' };
    }
    case 'error':
      return { outcome: 'retry', errorKind: result.error };
  }
};

export type DeliveryDecision =
  | { status: 'delivered' }
  | { status: 'pending'; nextAttemptAt: Date }
  | { status: 'failed' }
  | { status: 'gone' };

/**
 * The delivery's state after an attempt. `attemptsMade` counts the attempt just made, so with the
 * default five-entry schedule the fifth failure is final (docs: "After 5 failed attempts").
 */
export const decideAfterAttempt = (input: {
  outcome: AttemptOutcome;
  delaysS: readonly number[];
  attemptsMade: number;
  now: Date;
}): DeliveryDecision => {
  switch (input.outcome) {
    case 'delivered':
      return { status: 'delivered' };
    case 'gone':
      return { status: 'gone' };
    case 'retry': {
      const at = nextAttemptAt({
        delaysS: input.delaysS,
        attemptsMade: input.attemptsMade,
        lastFailureAt: input.now,
      });
      return at === null ? { status: 'failed' } : { status: 'pending', nextAttemptAt: at };
    }
  }
};

/**
 * The failure as stored in `last_error` and written in the failure email: the status (with a
 * word on redirects, which are never followed) or the transport's error. null when delivered.
 */
export const attemptError = (
  result: AttemptResult,
  errorKind: AttemptErrorKind | null,
): string | null =>
  errorKind === null || result.kind === 'published'
    ? null
    : result.kind === 'response'
      ? `HTTP ${result.status}${errorKind === 'redirect' ? ' (redirects are not followed)' : ''}`
      : `${result.error}: ${result.message}`;
