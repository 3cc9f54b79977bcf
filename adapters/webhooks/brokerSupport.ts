import { lookup as dnsLookup } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import type { AttemptResult, TransportErrorKind } from '../../delivery/outcome.ts';
import { classifyAddress, isAddressAllowed, type NetworkPolicy } from '../../delivery/ssrf.ts';
import { guardedLookup, refusedAddressMessage } from './undiciTransport.ts';

/** What the broker transports share: the SSRF policy, a resolver and the connect budget. */
export type BrokerTransportOptions = NetworkPolicy & {
  connectTimeoutMs?: number;
  /** The resolver behind the SSRF check; tests inject one to point a name at loopback. */
  lookup?: LookupFunction;
  onRefusedAddress?: (detail: { host: string; address: string; addressClass: string }) => void;
};

/** A failure the broker transports raise inside and turn into an attempt result at the door. */
export class BrokerFailure extends Error {
  readonly kind: TransportErrorKind;
  constructor(kind: TransportErrorKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

/**
 * The SSRF policy for a broker host, as for an HTTP endpoint: a literal address is checked
 * here; a name is checked on what it resolves to, inside the socket's own lookup.
 */
export const brokerLookup = (options: BrokerTransportOptions): LookupFunction =>
  guardedLookup(options.lookup ?? dnsLookup, options, options.onRefusedAddress ?? (() => {}));

/** Throws a BrokerFailure when `host` is a literal address the policy refuses. */
export const checkLiteralHost = (host: string, options: BrokerTransportOptions): void => {
  if (isIP(host) === 0 || isAddressAllowed(host, options)) return;
  options.onRefusedAddress?.({ host, address: host, addressClass: classifyAddress(host) });
  throw new BrokerFailure('ssrf_blocked', refusedAddressMessage);
};

/** Resolves a name through the guarded lookup: one allowed address to connect to. */
export const resolveAllowed = (host: string, options: BrokerTransportOptions): Promise<string> => {
  checkLiteralHost(host, options);
  if (isIP(host) !== 0) return Promise.resolve(host);
  const lookup = brokerLookup(options);
  return new Promise((resolve, reject) => {
    lookup(host, { all: false }, (error, address) => {
      if (error) reject(error);
      else resolve(typeof address === 'string' ? address : (address[0]?.address ?? ''));
    });
  });
};

const codeKinds: readonly (readonly [TransportErrorKind, readonly string[]])[] = [
  ['ssrf_blocked', ['ERR_WEBHOOK_ADDRESS_NOT_ALLOWED']],
  ['connection_refused', ['ECONNREFUSED']],
  ['dns', ['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA']],
  ['connection_reset', ['ECONNRESET', 'EPIPE']],
  ['timeout', ['ETIMEDOUT', 'TIMEOUT']],
];

/** A vendor or socket error as an attempt's error kind and message (vendor errors stop here). */
export const describeBrokerError = (
  error: unknown,
): { error: TransportErrorKind; message: string } => {
  if (error instanceof BrokerFailure) return { error: error.kind, message: error.message };
  const message = (error instanceof Error ? error.message : String(error)).slice(0, 500);
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as Error & { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    const match = codeKinds.find(([, codes]) => codes.includes(code));
    if (match) return { error: match[0], message };
  }
  if (/refused|denied|not_found|not found|no responders|permission|authoriz/i.test(message))
    return { error: 'broker_rejected', message };
  if (/timeout|timed out/i.test(message)) return { error: 'timeout', message };
  return { error: 'other', message };
};

/**
 * Runs one publish under the attempt's budget and the caller's abort signal, and turns whatever
 * happens into an attempt result: never rejects.
 */
export const boundedAttempt = async (
  work: () => Promise<string>,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<AttemptResult> => {
  const startedAt = performance.now();
  const elapsed = () => Math.round(performance.now() - startedAt);
  if (signal?.aborted)
    return { kind: 'error', error: 'other', message: 'aborted by the caller', durationMs: 0 };
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const cut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new BrokerFailure('timeout', 'no confirm from the broker within the timeout')),
      timeoutMs,
    );
    onAbort = () => reject(new BrokerFailure('other', 'aborted by the caller'));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  const attempt = work();
  // A publish confirmed after the cut is not waited for; its failure must not go unhandled.
  attempt.catch(() => {});
  try {
    const detail = await Promise.race([attempt, cut]);
    return { kind: 'published', detail, durationMs: elapsed() };
  } catch (error) {
    return { kind: 'error', ...describeBrokerError(error), durationMs: elapsed() };
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
};

/** Closes every pooled connection, opened or still opening; errors are those of closed ones. */
export const closeAll = async <L>(
  links: Iterable<Promise<L>>,
  close: (link: L) => Promise<unknown>,
): Promise<void> => {
  await Promise.all(
    [...links].map(async (link) => {
      try {
        await close(await link);
      } catch {
        // Already closed, or never opened.
      }
    }),
  );
};
