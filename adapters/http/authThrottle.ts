import { isIPv6 } from 'node:net';
import type { Clock } from '../../application/ports.ts';

/** When an address that keeps presenting bad credentials must wait, as data. */
export type ThrottlePolicy = {
  /** Failures within `windowMs` that start the blocking. */
  failures: number;
  windowMs: number;
  /** The first block; each failure after one doubles it, up to `maxBlockMs`. */
  firstBlockMs: number;
  maxBlockMs: number;
  /** Addresses remembered at most: the memory an attacker with many addresses can make us use. */
  maxAddresses: number;
};

export const defaultThrottlePolicy: ThrottlePolicy = {
  failures: 10,
  windowMs: 60_000,
  firstBlockMs: 1_000,
  maxBlockMs: 5 * 60_000,
  maxAddresses: 10_000,
};

/**
 * Slows down guessing: an address (an IPv6 /64) that presented `failures` bad keys in a
 * minute is refused for 1 s, and every failure after that doubles the wait (2 s, 4 s, … 5 min).
 * A good key, or a quiet minute after the block ends, starts the address over. While blocked,
 * no key from it is checked at all, a good one included: otherwise a guess that hit would say so.
 *
 * In this process's memory: each API process counts on its own, so N processes allow N times
 * the attempts, and a restart forgets. Behind a proxy every client shares the proxy's address
 * unless express's trust proxy setting is on.
 */
export type AuthThrottle = {
  /** Whole seconds `address` must wait before its next attempt is checked; 0 when it may try. */
  retryAfterS: (address: string) => number;
  /** A credential from `address` was refused. */
  failed: (address: string) => void;
  /** A credential from `address` was good: it starts over. */
  succeeded: (address: string) => void;
  /** Addresses remembered now (tests). */
  size: () => number;
};

type Entry = { failuresMs: number[]; blocks: number; blockedUntilMs: number };

/**
 * The unit an address is counted in: IPv4 as it is (also when IPv4-mapped), IPv6 by its /64, the
 * block one host is commonly given whole, so that one host cannot rotate through fresh addresses.
 */
export const addressKey = (address: string): string => {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] !== undefined) return mapped[1];
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = address.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
};

export const authThrottle = (options: {
  clock: Clock;
  policy?: Partial<ThrottlePolicy>;
}): AuthThrottle => {
  const policy = { ...defaultThrottlePolicy, ...options.policy };
  const entries = new Map<string, Entry>();
  const nowMs = () => options.clock.now().getTime();

  const forgettable = (entry: Entry, now: number) =>
    now >= entry.blockedUntilMs + policy.windowMs &&
    entry.failuresMs.every((at) => now - at >= policy.windowMs);

  const entryOf = (key: string, now: number): Entry | undefined => {
    const entry = entries.get(key);
    if (entry && forgettable(entry, now)) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  };

  const makeRoom = (now: number) => {
    for (const [key, entry] of entries) if (forgettable(entry, now)) entries.delete(key);
    // Still full: the longest-remembered go first (Map keeps insertion order).
    for (const key of entries.keys()) {
      if (entries.size < policy.maxAddresses) break;
      entries.delete(key);
    }
  };

  return {
    retryAfterS(address) {
      const now = nowMs();
      const entry = entryOf(addressKey(address), now);
      if (!entry || entry.blockedUntilMs <= now) return 0;
      return Math.ceil((entry.blockedUntilMs - now) / 1_000);
    },
    failed(address) {
      const now = nowMs();
      const key = addressKey(address);
      let entry = entryOf(key, now);
      if (!entry) {
        if (entries.size >= policy.maxAddresses) makeRoom(now);
        entry = { failuresMs: [], blocks: 0, blockedUntilMs: 0 };
        entries.set(key, entry);
      }
      entry.failuresMs = entry.failuresMs.filter((at) => now - at < policy.windowMs);
      entry.failuresMs.push(now);
      if (entry.blocks > 0 || entry.failuresMs.length >= policy.failures) {
        const blockMs = Math.min(policy.firstBlockMs * 2 ** entry.blocks, policy.maxBlockMs);
        entry.blockedUntilMs = now + blockMs;
        entry.blocks++;
      }
    },
    succeeded(address) {
      if (entries.size > 0) entries.delete(addressKey(address));
    },
    size: () => entries.size,
  };
};
