import { randomBytes } from 'node:crypto';
import { idPrefixes, type IdKind } from '../domain/ids.ts';

const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';

/** `mem_` + 20 base36 characters from crypto (about 103 bits). */
export const newId = (kind: IdKind, length = 20): string => {
  let body = '';
  while (body.length < length) {
    // 252 = 7 * 36: dropping the bytes above it keeps every character equally likely.
    for (const byte of randomBytes(length))
      if (byte < 252 && body.length < length) body += alphabet[byte % 36];
  }
  return `${idPrefixes[kind]}_${body}`;
};
