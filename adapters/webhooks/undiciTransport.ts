import { lookup as dnsLookup } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
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
};

/** What we keep of a response body: enough to debug a receiver, bounded for the delivery log. */
export const responseBodyLimitBytes = 4096;
/** Read (and drop) up to this much more so small bodies leave the socket reusable. */
const drainLimitBytes = 64 * 1024;
const ssrfErrorCode = 'ERR_WEBHOOK_ADDRESS_NOT_ALLOWED';

type Refusal = { kind: 'error'; error: TransportErrorKind; message: string };

/**
 * Outbound webhook POSTs over undici (DESIGN.md: ~10x got's rate here). Redirects are never
 * followed: undici 7's request() does not follow them without the redirect interceptor, which
 * this Agent does not install. The SSRF policy is enforced on the resolved address, inside the
 * socket's own lookup, so a DNS answer cannot change between the check and the connect.
 */
export class UndiciTransport implements HttpTransport {
  readonly #agent: Agent;
  readonly #policy: NetworkPolicy;
  readonly #userAgent: string;
  readonly #verdicts = new Map<string, Refusal | null>();

  constructor(options: UndiciTransportOptions) {
    this.#policy = { allowPrivateNetworks: options.allowPrivateNetworks };
    this.#userAgent = options.userAgent;
    this.#agent = new Agent({
      connections: options.connectionsPerOrigin,
      // One request at a time per socket: a slow receiver must not stall the ones queued behind it.
      pipelining: 1,
      connect: {
        timeout: options.connectTimeoutMs ?? 10_000,
        lookup: guardedLookup(options.lookup ?? dnsLookup, this.#policy),
      },
    });
  }

  async post(attempt: HttpRequest): Promise<AttemptResult> {
    const startedAt = performance.now();
    const elapsedMs = () => Math.round(performance.now() - startedAt);
    const refusal = this.#literalAddressCheck(attempt.url);
    if (refusal) return { ...refusal, durationMs: elapsedMs() };
    // One timer for the whole attempt (AbortSignal.timeout costs more per request).
    const controller = new AbortController();
    const timer = setTimeout(
      () =>
        controller.abort(
          new DOMException('The operation was aborted due to timeout', 'TimeoutError'),
        ),
      attempt.timeoutMs,
    );
    try {
      const response = await request(attempt.url, {
        dispatcher: this.#agent,
        method: 'POST',
        headers: { 'user-agent': this.#userAgent, ...attempt.headers },
        body: attempt.body,
        headersTimeout: attempt.timeoutMs,
        bodyTimeout: attempt.timeoutMs,
        signal: controller.signal,
      });
      const body = await readBounded(response.body);
      return { kind: 'response', status: response.statusCode, durationMs: elapsedMs(), body };
    } catch (error) {
      return { kind: 'error', ...describeError(error), durationMs: elapsedMs() };
    } finally {
      clearTimeout(timer);
    }
  }

  /** The literal-address verdict per URL string: endpoints are few, attempts many. */
  #literalAddressCheck(text: string): Refusal | null {
    let verdict = this.#verdicts.get(text);
    if (verdict === undefined) {
      verdict = this.#checkLiteralAddress(text);
      if (this.#verdicts.size >= 10_000) this.#verdicts.clear();
      this.#verdicts.set(text, verdict);
    }
    return verdict;
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
      return {
        kind: 'error',
        error: 'ssrf_blocked',
        message: `${host} is a ${classifyAddress(host)} address, which is not allowed`,
      };
    }
    return null;
  }
}

/**
 * A dns.lookup wrapper for net.connect: resolves every address and refuses the connection if
 * any is not allowed (a name that answers with one internal address is not a public endpoint).
 */
export const guardedLookup =
  (resolve: LookupFunction, policy: NetworkPolicy): LookupFunction =>
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
        const reason = refused
          ? `${hostname} resolves to ${refused.address}, a ${classifyAddress(refused.address)} address, which is not allowed`
          : `${hostname} resolves to no address`;
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
 * Keeps the first 4096 bytes, cut on a UTF-8 character boundary, and drains a little more so a
 * small response leaves the keep-alive socket reusable; a large one is destroyed (closing it).
 */
const readBounded = async (
  body: AsyncIterable<Buffer> & { destroy(): unknown },
): Promise<string> => {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let seenBytes = 0;
  try {
    for await (const chunk of body) {
      seenBytes += chunk.length;
      // One byte past the limit tells truncateUtf8 whether the cut splits a character.
      if (keptBytes <= responseBodyLimitBytes) {
        const part = chunk.subarray(0, responseBodyLimitBytes + 1 - keptBytes);
        kept.push(part);
        keptBytes += part.length;
      }
      if (seenBytes > drainLimitBytes) break;
    }
  } finally {
    body.destroy();
  }
  return truncateUtf8(Buffer.concat(kept), responseBodyLimitBytes);
};

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
