import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Verifying an Incentable webhook: exactly what the service signs (docs/webhooks.md, "Verifying
 * webhooks"). node:crypto only, no framework: ./express.ts wraps it for express.
 */

export type VerificationFailure =
  | 'missing_signature'
  | 'missing_headers'
  | 'untimestamped_signature'
  | 'invalid_timestamp'
  | 'timestamp_out_of_tolerance'
  | 'invalid_signature';

export type VerificationResult =
  { ok: true; scheme: 'standard' | 'incentable' } | { ok: false; reason: VerificationFailure };

/** Node's `IncomingHttpHeaders` fits, and so does any plain record of header names. */
export type IncomingHeaders = Record<string, string | string[] | undefined>;

const secretPrefix = 'whsec_';
const base64Text = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * The Standard Webhooks key of a secret: the base64 after `whsec_`, decoded (what the
 * standardwebhooks libraries do with the same string). Throws on a malformed secret: that is a
 * configuration fault, not a verification outcome.
 */
export const standardKeyOf = (secret: string): Uint8Array => {
  const encoded = secret.startsWith(secretPrefix) ? secret.slice(secretPrefix.length) : secret;
  if (!base64Text.test(encoded) || encoded.length % 4 !== 0) {
    throw new Error('webhook secret is not whsec_ followed by base64');
  }
  return new Uint8Array(Buffer.from(encoded, 'base64'));
};

/** Header names are case-insensitive; a repeated header counts by its first value. */
export const headerOf = (headers: IncomingHeaders, name: string): string | undefined => {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== wanted) continue;
    return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
};

/** Constant-time for equal lengths; unequal lengths return false instead of throwing. */
const equalBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && timingSafeEqual(a, b);

const toBuffer = (body: string | Uint8Array): Buffer =>
  typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);

const verifyStandard = (input: {
  body: Buffer;
  id: string | undefined;
  timestamp: string | undefined;
  signatures: string;
  secret: string;
  toleranceSeconds: number;
  now: Date;
}): VerificationResult => {
  if (input.id === undefined || input.timestamp === undefined) {
    return { ok: false, reason: 'missing_headers' };
  }
  if (!/^\d{1,12}$/.test(input.timestamp)) return { ok: false, reason: 'invalid_timestamp' };
  const nowS = Math.floor(input.now.getTime() / 1000);
  // Both directions: a timestamp far in the future is as replayable as an old one.
  if (Math.abs(nowS - Number(input.timestamp)) > input.toleranceSeconds) {
    return { ok: false, reason: 'timestamp_out_of_tolerance' };
  }
  const expected = createHmac('sha256', standardKeyOf(input.secret))
    .update(`${input.id}.${input.timestamp}.`)
    .update(input.body)
    .digest();
  // Several signatures while a secret rotates; any v1 one that matches is enough.
  const matches = input.signatures.split(' ').some((entry) => {
    const [version, value] = entry.split(',');
    return (
      version === 'v1' && value !== undefined && equalBytes(Buffer.from(value, 'base64'), expected)
    );
  });
  return matches ? { ok: true, scheme: 'standard' } : { ok: false, reason: 'invalid_signature' };
};

export type VerifyOptions = {
  /** How far `webhook-timestamp` may be from `now`, either way, in seconds; default 300. */
  toleranceSeconds?: number;
  /** The clock the timestamp is checked against; default the current time. */
  now?: Date;
  /**
   * Also accept a request signed only with `X-Incentable-Signature` (the public docs' HMAC of the
   * body, with no timestamp). Off by default: such a signature never expires, so anyone who
   * captured one delivery could replay it for ever.
   */
  allowUntimestamped?: boolean;
};

/**
 * Accepts a webhook when its Standard Webhooks signature verifies (timestamp within
 * `toleranceSeconds`). With `allowUntimestamped`, a request carrying only
 * `X-Incentable-Signature` is accepted when that matches; the Standard headers win when present
 * because only they protect against replay. `rawBody` must be the bytes received, before any JSON
 * parsing. Throws only when `secret` is not a whsec_ secret.
 */
export const verifyWebhook = (
  rawBody: string | Uint8Array,
  headers: IncomingHeaders,
  secret: string,
  { toleranceSeconds = 300, now = new Date(), allowUntimestamped = false }: VerifyOptions = {},
): VerificationResult => {
  const body = toBuffer(rawBody);
  const standardSignature = headerOf(headers, 'webhook-signature');
  if (standardSignature !== undefined) {
    return verifyStandard({
      body,
      id: headerOf(headers, 'webhook-id'),
      timestamp: headerOf(headers, 'webhook-timestamp'),
      signatures: standardSignature,
      secret,
      toleranceSeconds,
      now,
    });
  }
  const docsSignature = headerOf(headers, 'x-incentable-signature');
  if (docsSignature === undefined) return { ok: false, reason: 'missing_signature' };
  if (!allowUntimestamped) return { ok: false, reason: 'untimestamped_signature' };
  // The docs' HMAC over the received bytes, not a re-decoded string: invalid UTF-8 must not be
  // repaired.
  const expected = Buffer.from(createHmac('sha256', secret).update(body).digest('hex'), 'utf8');
  return equalBytes(Buffer.from(docsSignature.toLowerCase(), 'utf8'), expected)
    ? { ok: true, scheme: 'incentable' }
    : { ok: false, reason: 'invalid_signature' };
};
