import type { AttemptResult } from './outcome.ts';

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
