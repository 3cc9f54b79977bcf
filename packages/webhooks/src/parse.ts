import type { WebhookEvent } from './events.js';
import {
  verifyWebhook,
  type IncomingHeaders,
  type VerificationFailure,
  type VerifyOptions,
} from './verify.js';

/** Why a received webhook was not accepted: its signature, or a body that is no envelope. */
export type ParseFailure = VerificationFailure | 'invalid_json' | 'invalid_envelope';

export type ParseResult =
  | { ok: true; event: WebhookEvent; scheme: 'standard' | 'incentable' }
  | { ok: false; reason: ParseFailure };

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The envelope's shape, not each type's data: a signed body comes from the service, whose
 * catalogue the types are generated from. A type newer than this package passes too (with the
 * data its sender gave it), so keep a `default` branch that ignores what you do not know.
 */
const isEnvelope = (value: unknown): value is WebhookEvent =>
  isRecord(value) &&
  typeof value.id === 'string' &&
  typeof value.type === 'string' &&
  typeof value.created_at === 'string' &&
  isRecord(value.data);

/**
 * verifyWebhook, then JSON.parse of the verified bytes: the typed event to `switch` on, or the
 * reason it was refused. Nothing is parsed before the signature verified.
 */
export const parseWebhook = (
  rawBody: string | Uint8Array,
  headers: IncomingHeaders,
  secret: string,
  options: VerifyOptions = {},
): ParseResult => {
  const verification = verifyWebhook(rawBody, headers, secret, options);
  if (!verification.ok) return verification;
  let envelope: unknown;
  try {
    envelope = JSON.parse(
      typeof rawBody === 'string' ? rawBody : Buffer.from(rawBody).toString('utf8'),
    );
  } catch {
    return { ok: false, reason: 'invalid_json' };
  }
  if (!isEnvelope(envelope)) return { ok: false, reason: 'invalid_envelope' };
  return { ok: true, event: envelope, scheme: verification.scheme };
};
