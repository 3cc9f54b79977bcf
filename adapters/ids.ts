import { randomFillSync } from 'node:crypto';
import { idPrefixes, type IdKind } from '../domain/ids.ts';

const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';

/** Random bytes drawn from crypto 4 KB at a time: one call per ~200 ids, not one per id. */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

const randomByte = (): number => {
  if (poolOffset >= pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  return pool[poolOffset++]!;
};

/** `mem_` + 20 base36 characters from crypto (about 103 bits). */
export const newId = (kind: IdKind, length = 20): string => {
  let body = '';
  while (body.length < length) {
    // 252 = 7 * 36: dropping the bytes above it keeps every character equally likely.
    const byte = randomByte();
    if (byte < 252) body += alphabet[byte % 36];
  }
  return `${idPrefixes[kind]}_${body}`;
};
