import { createHash } from 'node:crypto';
import type { SubscribableEventType } from './catalogue.ts';

export type Envelope = {
  id: string;
  type: SubscribableEventType;
  createdAt: Date;
  data: Readonly<Record<string, unknown>>;
};

/**
 * `created_at` as the docs print it: UTC, whole seconds, `Z` (`2024-06-15T14:30:00Z`).
 * Milliseconds are truncated, not rounded, so an event never appears to happen later than it did.
 */
export const formatCreatedAt = (at: Date): string => at.toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * The exact bytes we sign and send, keys in the docs' order (id, type, created_at, data).
 * Serialise once and sign these bytes: re-serialising after signing breaks every receiver.
 */
export const serializeEnvelope = (envelope: Envelope): string =>
  JSON.stringify({
    id: envelope.id,
    type: envelope.type,
    created_at: formatCreatedAt(envelope.createdAt),
    data: envelope.data,
  });

const base32Alphabet = 'abcdefghijklmnopqrstuvwxyz234567';

/** RFC 4648 base32, lowercase, no padding: alphanumeric, so ids satisfy domain/ids.ts. */
const base32 = (bytes: Uint8Array): string => {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += base32Alphabet[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += base32Alphabet[(buffer << (5 - bits)) & 31];
  return out;
};

/**
 * `evt_` + 24 base32 characters (120 bits) of sha256 over the domain event id. Derived, not
 * random: a replay of the event log or a redelivery presents the same id, which is what receivers
 * deduplicate on (and what Standard Webhooks' `webhook-id` promises).
 */
export const envelopeIdFor = (domainEventId: string): string => {
  const digest = createHash('sha256')
    .update(`incentable.webhook.envelope:${domainEventId}`)
    .digest();
  return `evt_${base32(digest).slice(0, 24)}`;
};
