import type { LeasedDelivery } from './ports.ts';
import { decryptSecret, signDocs, signStandard, standardKeyOf } from './signing.ts';

/** An endpoint secret as the user was shown it, and its Standard Webhooks key (base64-decoded). */
export type EndpointSecret = { plain: string; key: Uint8Array };

/** Decrypted secrets kept at most; past it the cache starts again from empty. */
const maxCachedSecrets = 10_000;

/**
 * Decrypts stored endpoint secrets with `secretKey` (the store's 32-byte key), each once: the
 * cache is keyed by the ciphertext, and a rotation changes the ciphertext, so never stale.
 * Throws when a secret does not decrypt (a wrong key): a fault the caller records as an attempt.
 */
export const secretCache = (secretKey: Uint8Array): ((encrypted: string) => EndpointSecret) => {
  const secrets = new Map<string, EndpointSecret>();
  return (encrypted) => {
    let secret = secrets.get(encrypted);
    if (secret === undefined) {
      const plain = decryptSecret(encrypted, secretKey);
      secret = { plain, key: standardKeyOf(plain) };
      if (secrets.size >= maxCachedSecrets) secrets.clear();
      secrets.set(encrypted, secret);
    }
    return secret;
  };
};

/** Decrypts other values stored like the secrets (a broker URL's credentials), each once. */
export const decryptedCache = (secretKey: Uint8Array): ((encrypted: string) => string) => {
  const values = new Map<string, string>();
  return (encrypted) => {
    let value = values.get(encrypted);
    if (value === undefined) {
      value = decryptSecret(encrypted, secretKey);
      if (values.size >= maxCachedSecrets) values.clear();
      values.set(encrypted, value);
    }
    return value;
  };
};

/**
 * The headers of one delivery's POST, signed over the envelope's stored bytes (`delivery.body`,
 * never re-serialised): the docs' `X-Incentable-Signature` with the current secret, and the
 * Standard Webhooks headers with the current key plus, until it expires at `sentAt`, the previous
 * one, so receivers keep verifying while a secret rotates.
 */
export const signedHeaders = (options: {
  delivery: LeasedDelivery;
  sentAt: Date;
  /** e.g. `Incentable-Webhooks/1.2.0`. */
  userAgent: string;
  secretOf: (encrypted: string) => EndpointSecret;
}): Record<string, string> => {
  const { delivery, sentAt, secretOf } = options;
  const secret = secretOf(delivery.secret_encrypted);
  const keys = [secret.key];
  if (
    delivery.previous_secret_encrypted !== null &&
    delivery.previous_secret_expires_at !== null &&
    delivery.previous_secret_expires_at.getTime() > sentAt.getTime()
  ) {
    keys.push(secretOf(delivery.previous_secret_encrypted).key);
  }
  return {
    'content-type': 'application/json',
    'user-agent': options.userAgent,
    'x-incentable-signature': signDocs(delivery.body, secret.plain),
    'x-incentable-event': delivery.type,
    'x-incentable-delivery': delivery.delivery_id,
    ...signStandard({ id: delivery.envelope_id, sentAt, body: delivery.body }, keys),
    ...(delivery.is_test && { 'x-incentable-test': 'true' }),
    ...(delivery.sequence !== null &&
      delivery.subject !== null && {
        'x-incentable-subject': delivery.subject,
        'x-incentable-sequence': delivery.sequence,
      }),
  };
};
