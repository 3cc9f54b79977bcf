import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes as cryptoRandomBytes,
} from 'node:crypto';

/**
 * `X-Incentable-Signature`: lowercase hex HMAC-SHA256 of the raw body, keyed with the secret
 * string exactly as the user copied it (the whole `whsec_…`), because the docs' snippet does
 * `createHmac('sha256', secret)` and must accept it unchanged.
 */
export const signDocs = (body: string, secret: string): string =>
  createHmac('sha256', secret).update(body).digest('hex');

export type StandardSignatureHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

/**
 * Standard Webhooks signature over `id.timestamp.body`. `body` must be the exact bytes we send:
 * re-serialising after signing breaks every receiver. Each key adds a signature, so receivers
 * keep verifying while a secret rotates.
 */
export const signStandard = (
  attempt: { id: string; sentAt: Date; body: string },
  keys: readonly Uint8Array[],
): StandardSignatureHeaders => {
  const timestamp = Math.floor(attempt.sentAt.getTime() / 1000).toString();
  const content = `${attempt.id}.${timestamp}.${attempt.body}`;
  const signatures = keys.map(
    (key) => `v1,${createHmac('sha256', key).update(content).digest('base64')}`,
  );
  return {
    'webhook-id': attempt.id,
    'webhook-timestamp': timestamp,
    'webhook-signature': signatures.join(' '),
  };
};

const secretPrefix = 'whsec_';

/**
 * The Standard Webhooks key of a secret (the base64 after `whsec_`, decoded): the receiver
 * package's, so what we sign with and what receivers verify with cannot differ.
 */
export { standardKeyOf } from '../packages/webhooks/src/verify.ts';

/** 32 random bytes (256-bit HMAC key). Randomness is injected so tests can fix it. */
export const newWebhookSecret = (randomBytes: (n: number) => Uint8Array): string => {
  const bytes = randomBytes(32);
  if (bytes.length !== 32) throw new Error('randomBytes(32) returned a different length');
  return `${secretPrefix}${Buffer.from(bytes).toString('base64')}`;
};

const keyLengthBytes = 32;
const ivLengthBytes = 12;
const tagLengthBytes = 16;

const checkKey = (key: Uint8Array): void => {
  if (key.length !== keyLengthBytes) {
    throw new Error(`secret encryption key must be ${keyLengthBytes} bytes, got ${key.length}`);
  }
};

/**
 * Endpoint secrets at rest: AES-256-GCM, as `v1:<iv b64>:<tag b64>:<ciphertext b64>`. The
 * version prefix lets a later scheme (or key id) be added without guessing at old rows.
 * `randomBytes` is injectable for deterministic tests; the IV must never repeat under one key.
 */
export const encryptSecret = (
  plaintext: string,
  key: Uint8Array,
  options: { randomBytes?: (n: number) => Uint8Array } = {},
): string => {
  checkKey(key);
  const iv = (options.randomBytes ?? cryptoRandomBytes)(ivLengthBytes);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: tagLengthBytes });
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
  return `v1:${b64(iv)}:${b64(cipher.getAuthTag())}:${b64(ciphertext)}`;
};

/** Throws (with the cause) on an unknown format, a wrong key or a tampered value. */
export const decryptSecret = (stored: string, key: Uint8Array): string => {
  checkKey(key);
  const parts = stored.split(':');
  if (parts.length !== 4 || parts[0] !== 'v1') {
    throw new Error('encrypted secret is not in the v1:<iv>:<tag>:<ciphertext> format');
  }
  const [, ivText = '', tagText = '', ciphertextText = ''] = parts;
  const iv = Buffer.from(ivText, 'base64');
  const tag = Buffer.from(tagText, 'base64');
  if (iv.length !== ivLengthBytes || tag.length !== tagLengthBytes) {
    throw new Error('encrypted secret has a malformed iv or tag');
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: tagLengthBytes });
    decipher.setAuthTag(tag);
    return Buffer.concat([
      decipher.update(Buffer.from(ciphertextText, 'base64')),
      decipher.final(),
    ]).toString('utf8');
  } catch (cause) {
    throw new Error('cannot decrypt webhook secret: wrong key or tampered value', { cause });
  }
};
