import { lookup as dnsLookup } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Agent, type Dispatcher } from 'undici';
import type { AttemptResult, TransportErrorKind } from '../../delivery/outcome.ts';
import type { HttpRequest, HttpTransport } from '../../delivery/ports.ts';
import { classifyAddress, isAddressAllowed, type NetworkPolicy } from '../../delivery/ssrf.ts';

export type UndiciTransportOptions = NetworkPolicy & {
  /** Keep-alive sockets per origin; each endpoint is one origin. */
  connectionsPerOrigin: number;
  userAgent: string;
  /** TCP (and TLS) connect budget; the request's timeoutMs still bounds the whole attempt. */
  connectTimeoutMs?: number;
  /** The resolver behind the SSRF check; tests inject one to point a name at loopback. */
  lookup?: LookupFunction;
  /**
   * Where the detail of a refused address goes (the operator's log). The delivery log, which the
   * tenant reads, only says the endpoint resolves to a non-public address: the internal address
   * a name resolves to is not the tenant's to learn.
   */
  onRefusedAddress?: (detail: { host: string; address: string; addressClass: string }) => void;
};

/** What a tenant sees of a refused address. */
export const refusedAddressMessage = 'the endpoint resolves to a non-public address';

/** What we keep of a response body: enough to debug a receiver, bounded for the delivery log. */
export const responseBodyLimitBytes = 4096;
/** Read (and drop) up to this much more so small bodies leave the socket reusable. */
const drainLimitBytes = 64 * 1024;
const ssrfErrorCode = 'ERR_WEBHOOK_ADDRESS_NOT_ALLOWED';

type Refusal = { kind: 'error'; error: TransportErrorKind; message: string };

const timedOut = { error: 'timeout', message: 'no complete response within the timeout' } as const;
const aborted = { kind: 'error', error: 'other', message: 'aborted by the caller' } as const;

const originAndPath = (text: string): { origin: string; path: string } => {
  const url = new URL(text);
  return { origin: url.origin, path: `${url.pathname}${url.search}` };
};

/**
 * Outbound webhook POSTs over undici (DESIGN.md: ~10x got's rate here). Redirects are never
 * followed: the Agent has no redirect interceptor, and its dispatch API never follows them. The SSRF policy is enforced on the resolved address, inside the
 * socket's own lookup, so a DNS answer cannot change between the check and the connect.
 */
export class UndiciTransport implements HttpTransport {
  readonly #agent: Agent;
  readonly #policy: NetworkPolicy;
  readonly #onRefusedAddress: NonNullable<UndiciTransportOptions['onRefusedAddress']>;
  readonly #userAgent: string;
  readonly #targets = new Map<string, Refusal | { origin: string; path: string }>();

  constructor(options: UndiciTransportOptions) {
    this.#policy = { allowPrivateNetworks: options.allowPrivateNetworks };
    this.#userAgent = options.userAgent;
    this.#onRefusedAddress = options.onRefusedAddress ?? (() => {});
    this.#agent = new Agent({
      connections: options.connectionsPerOrigin,
      // One request at a time per socket: a slow receiver must not stall the ones queued behind it.
      pipelining: 1,
      connect: {
        timeout: options.connectTimeoutMs ?? 10_000,
        lookup: guardedLookup(
          options.lookup ?? dnsLookup,
          this.#policy,
          options.onRefusedAddress ?? (() => {}),
        ),
      },
    });
  }

  /**
   * One POST through the Agent's dispatch API with a handler of our own (AttemptHandler): the
   * response body is counted and kept in the handler (no stream per response), and one timer
   * bounds the attempt.
   */
  post(attempt: HttpRequest): Promise<AttemptResult> {
    const startedAt = performance.now();
    const target = this.#target(attempt.url);
    if ('kind' in target) {
      return Promise.resolve({ ...target, durationMs: Math.round(performance.now() - startedAt) });
    }
    const { signal } = attempt;
    if (signal?.aborted) return Promise.resolve({ ...aborted, durationMs: 0 });
    return new Promise<AttemptResult>((resolve) => {
      const handler = new AttemptHandler(resolve, startedAt, attempt.timeoutMs);
      if (signal) {
        const onAbort = () => handler.abort();
        signal.addEventListener('abort', onAbort, { once: true });
        handler.onSettled = () => signal.removeEventListener('abort', onAbort);
      }
      this.#agent.dispatch(
        {
          origin: target.origin,
          path: target.path,
          method: 'POST',
          headers: { 'user-agent': this.#userAgent, ...attempt.headers },
          body: attempt.body,
          headersTimeout: attempt.timeoutMs,
          bodyTimeout: attempt.timeoutMs,
        },
        handler,
      );
    });
  }

  /** Origin and path of an endpoint URL, or why it may not be called; once per URL string. */
  #target(url: string): Refusal | { origin: string; path: string } {
    let target = this.#targets.get(url);
    if (target === undefined) {
      target = this.#checkLiteralAddress(url) ?? originAndPath(url);
      if (this.#targets.size >= 10_000) this.#targets.clear();
      this.#targets.set(url, target);
    }
    return target;
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  /** Literal IPs skip DNS, so the lookup hook never sees them: check them here. */
  #checkLiteralAddress(text: string): Refusal | null {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return { kind: 'error', error: 'other', message: 'endpoint URL cannot be parsed' };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return { kind: 'error', error: 'other', message: `unsupported scheme ${url.protocol}` };
    }
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    if (isIP(host) !== 0 && !isAddressAllowed(host, this.#policy)) {
      this.#onRefusedAddress({ host, address: host, addressClass: classifyAddress(host) });
      return { kind: 'error', error: 'ssrf_blocked', message: refusedAddressMessage };
    }
    return null;
  }
}

/**
 * A dns.lookup wrapper for net.connect: resolves every address and refuses the connection if
 * any is not allowed (a name that answers with one internal address is not a public endpoint).
 */
export const guardedLookup =
  (
    resolve: LookupFunction,
    policy: NetworkPolicy,
    onRefused: NonNullable<UndiciTransportOptions['onRefusedAddress']> = () => {},
  ): LookupFunction =>
  (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (error, addresses, family) => {
      if (error) {
        callback(error, '', 0);
        return;
      }
      const all = Array.isArray(addresses)
        ? addresses
        : [{ address: addresses, family: family ?? 4 }];
      const refused = all.find((entry) => !isAddressAllowed(entry.address, policy));
      const first = all[0];
      if (refused || !first) {
        if (refused) {
          const addressClass = classifyAddress(refused.address);
          onRefused({ host: hostname, address: refused.address, addressClass });
        }
        const reason = refused ? refusedAddressMessage : `${hostname} resolves to no address`;
        callback(
          Object.assign(new Error(reason), { code: refused ? ssrfErrorCode : 'ENOTFOUND' }),
          '',
          0,
        );
        return;
      }
      if (options.all) callback(null, all);
      else callback(null, first.address, first.family);
    });
  };

/**
 * The dispatch handler of one attempt. A class, not closures: one attempt per delivery made
 * per-request closures (and their name bookkeeping under tsx) a measurable share of the CPU.
 */
class AttemptHandler implements Dispatcher.DispatchHandler {
  #settled = false;
  #status = 0;
  #retryAfter: string | undefined;
  #kept: Buffer[] = [];
  #keptBytes = 0;
  #seenBytes = 0;
  #controller: Dispatcher.DispatchController | null = null;
  readonly #timer: NodeJS.Timeout;
  readonly #resolve: (result: AttemptResult) => void;
  readonly #startedAt: number;

  constructor(resolve: (result: AttemptResult) => void, startedAt: number, timeoutMs: number) {
    this.#resolve = resolve;
    this.#startedAt = startedAt;
    this.#timer = setTimeout(timeOut, timeoutMs, this);
  }

  /** Told once the attempt has its result: releases what watched it (the caller's signal). */
  onSettled: (() => void) | null = null;

  /** The attempt's budget ran out: a timeout, whatever arrives later. */
  expire(): void {
    this.#finish({ kind: 'error', ...timedOut, durationMs: this.#elapsedMs() });
    this.#controller?.abort(new Error('webhook attempt timed out'));
  }

  /** The caller's signal fired: an error result now, and the request torn down. */
  abort(): void {
    this.#finish({ ...aborted, durationMs: this.#elapsedMs() });
    this.#controller?.abort(new Error('webhook attempt aborted'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#settled) controller.abort(new Error('webhook attempt ended before it started'));
  }

  /** Called again after a 1xx: the last status is the response's. */
  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    this.#status = statusCode;
    const retryAfter =
      statusCode === 429 || statusCode === 503 ? headers['retry-after'] : undefined;
    // Repeated, it means nothing we can rely on: the first is as good a reading as any.
    this.#retryAfter = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#seenBytes += chunk.length;
    // One byte past the limit tells truncateUtf8 whether the cut splits a character.
    if (this.#keptBytes <= responseBodyLimitBytes) {
      const part = chunk.subarray(0, responseBodyLimitBytes + 1 - this.#keptBytes);
      this.#kept.push(part);
      this.#keptBytes += part.length;
    }
    // A small body is drained so the keep-alive socket stays reusable; a large one closes it.
    if (this.#seenBytes > drainLimitBytes) {
      this.#respond();
      controller.abort(new Error('response body over the drain limit'));
    }
  }

  onResponseEnd(): void {
    this.#respond();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#finish({ kind: 'error', ...describeError(error), durationMs: this.#elapsedMs() });
  }

  #respond(): void {
    this.#finish({
      kind: 'response',
      status: this.#status,
      durationMs: this.#elapsedMs(),
      body: truncateUtf8(Buffer.concat(this.#kept), responseBodyLimitBytes),
      ...(this.#retryAfter !== undefined && { retryAfter: this.#retryAfter.slice(0, 100) }),
    });
  }

  #finish(result: AttemptResult): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    this.onSettled?.();
    this.#resolve(result);
  }

  #elapsedMs(): number {
    return Math.round(performance.now() - this.#startedAt);
  }
}

function timeOut(handler: AttemptHandler): void {
  handler.expire();
}

/** At most `maxBytes` bytes of UTF-8, never half a character. */
export const truncateUtf8 = (bytes: Buffer, maxBytes: number): string => {
  if (bytes.length <= maxBytes) return bytes.toString('utf8');
  let end = maxBytes;
  // A continuation byte (10xxxxxx) at the cut means the character started before it: drop it.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end -= 1;
  return bytes.subarray(0, end).toString('utf8');
};

const errorCodes: readonly (readonly [TransportErrorKind, (code: string) => boolean])[] = [
  ['ssrf_blocked', (code) => code === ssrfErrorCode],
  [
    'timeout',
    (code) =>
      [
        'UND_ERR_CONNECT_TIMEOUT',
        'UND_ERR_HEADERS_TIMEOUT',
        'UND_ERR_BODY_TIMEOUT',
        'UND_ERR_ABORTED',
        'ETIMEDOUT',
        'ABORT_ERR',
      ].includes(code),
  ],
  ['connection_refused', (code) => code === 'ECONNREFUSED'],
  [
    'dns',
    (code) => ['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA'].includes(code),
  ],
  [
    'tls',
    (code) =>
      code.startsWith('ERR_TLS') ||
      code.startsWith('ERR_SSL') ||
      code.includes('CERT') ||
      code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  ],
  [
    'connection_reset',
    (code) => ['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'].includes(code),
  ],
];

/** undici and Node errors stop here (STYLE.md: vendor errors stop at the door). */
const describeError = (error: unknown): { error: TransportErrorKind; message: string } => {
  const chain: unknown[] = [];
  for (let e: unknown = error; e instanceof Error && chain.length < 5; e = e.cause) chain.push(e);
  for (const link of chain) {
    const { name, code } = link as Error & { code?: unknown };
    // AbortSignal.timeout() aborts with a DOMException named TimeoutError.
    if (name === 'TimeoutError' || name === 'AbortError') {
      return { error: 'timeout', message: 'no complete response within the timeout' };
    }
    if (typeof code !== 'string') continue;
    const match = errorCodes.find(([, test]) => test(code));
    if (match) return { error: match[0], message: messageOf(link) };
  }
  return { error: 'other', message: messageOf(error) };
};

const messageOf = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).slice(0, 500);
