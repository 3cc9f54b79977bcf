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
  | {
      kind: 'response';
      status: number;
      durationMs: number;
      body: string;
      /** The Retry-After header of a 429 or 503, as sent; absent otherwise. */
      retryAfter?: string;
    }
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

/** The longest a receiver's Retry-After may push an attempt back. */
export const maxRetryAfterS = 24 * 60 * 60;

/**
 * A Retry-After value (RFC 9110 10.2.3: delay-seconds, or an HTTP-date) as whole seconds from
 * `now`, never negative; null when it is neither (ignored, like a missing header).
 */
export const parseRetryAfter = (value: string, now: Date): number | null => {
  const text = value.trim();
  if (/^\d+$/.test(text)) return Math.min(Number(text), Number.MAX_SAFE_INTEGER);
  // IMF-fixdate, or the obsolete RFC 850 and asctime forms, which Date.parse also reads. A
  // bare number with a sign or a fraction is neither form.
  if (!/^[A-Za-z]{3}/.test(text)) return null;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - now.getTime()) / 1000));
};

/**
 * The delivery's state after an attempt. `attemptsMade` counts the attempt just made, so with the
 * default five-entry schedule the fifth failure is final (docs: "After 5 failed attempts").
 * `retryAfterS` (a 429's or 503's Retry-After, parsed) pushes the next attempt back to at least
 * that long, clamped to [the schedule's delay, 24 h]; it never adds an attempt.
 */
export const decideAfterAttempt = (input: {
  outcome: AttemptOutcome;
  delaysS: readonly number[];
  attemptsMade: number;
  now: Date;
  retryAfterS?: number | null;
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
      if (at === null) return { status: 'failed' };
      const asked = input.retryAfterS;
      if (asked === null || asked === undefined) return { status: 'pending', nextAttemptAt: at };
      const wanted = input.now.getTime() + Math.min(asked, maxRetryAfterS) * 1000;
      return { status: 'pending', nextAttemptAt: new Date(Math.max(at.getTime(), wanted)) };
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
