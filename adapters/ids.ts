import { createHash, randomFillSync } from 'node:crypto';
import { idPrefixes, type IdKind } from '../domain/ids.ts';
import type { Ids } from '../application/ports.ts';

const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';

/** Random bytes drawn from crypto 4 KB at a time: one call per ~200 ids, not one per id. */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

const randomByte = (): number => {
  if (poolOffset >= pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  return pool.readUInt8(poolOffset++);
};

const randomBody = (length: number): string => {
  let body = '';
  while (body.length < length) {
    // 252 = 7 * 36: dropping the bytes above it keeps every character equally likely.
    const byte = randomByte();
    if (byte < 252) body += alphabet[byte % 36];
  }
  return body;
};

/** `mem_` + 20 base36 characters from crypto (about 103 bits). */
export const newId = (kind: IdKind, length = 20): string =>
  `${idPrefixes[kind]}_${randomBody(length)}`;

/**
 * `wdl_` + the time in milliseconds as 9 base36 characters (fixed width: ids sort by time until
 * the year 5188) + 11 random ones (about 57 bits). Rows keyed by such ids are added at the right
 * edge of their btree, not on random pages: for delivery rows, written thousands a second.
 */
export const newTimeOrderedId = (kind: IdKind, nowMs = Date.now()): string =>
  `${idPrefixes[kind]}_${Math.floor(nowMs).toString(36).padStart(9, '0')}${randomBody(11)}`;

/**
 * An id of the same form as `newId`, derived from `seed` (sha256): the same seed always gives the
 * same id. A command retried under one Idempotency-Key names the very same order, transaction or
 * member as the attempt that died, so a multi-stream command resumes instead of forking.
 */
export const derivedId = (kind: IdKind, seed: string, length = 20): string => {
  const digest = createHash('sha256').update(seed).digest();
  let body = '';
  for (let i = 0; body.length < length && i < digest.length; i++)
    body += alphabet[digest.readUInt8(i) % 36];
  return `${idPrefixes[kind]}_${body}`;
};

/** The application's Ids port (application/ports.ts), from crypto. */
export const ids: Ids = {
  newId: (kind) => newId(kind),
  derivedId: (kind, seed) => derivedId(kind, seed),
};
