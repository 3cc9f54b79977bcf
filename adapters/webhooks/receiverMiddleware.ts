import express, { type RequestHandler } from 'express';
import { verifyWebhook } from '../../delivery/receiver.ts';
import { standardKeyOf } from '../../delivery/signing.ts';

export type WebhookReceiverOptions = {
  /** The endpoint's `whsec_…` secret, as shown in Settings -> Webhooks. */
  secret: string;
  toleranceSeconds?: number;
  /** Also accept the timestamp-less `X-Incentable-Signature` alone (see verifyWebhook). */
  allowUntimestamped?: boolean;
  /** Largest body accepted, in express.raw's notation. */
  limit?: string;
  /** The clock for the timestamp tolerance; injectable for tests. */
  now?: () => Date;
};

/**
 * Express middleware for a webhook endpoint: keeps the raw bytes (signatures cover bytes, not
 * parsed JSON), verifies them, answers 401 with a JSON reason on failure, and otherwise sets
 * `req.body` to the parsed envelope and `res.locals.rawBody` to the bytes received. Mount it
 * instead of express.json() on that route.
 */
export const webhookReceiver = (options: WebhookReceiverOptions): RequestHandler => {
  // Fail at start-up, not on the first webhook, when the secret is not a whsec_ secret.
  standardKeyOf(options.secret);
  const readRaw = express.raw({ type: 'application/json', limit: options.limit ?? '1mb' });
  const now = options.now ?? (() => new Date());
  return (req, res, next) => {
    readRaw(req, res, (error?: unknown) => {
      if (error !== undefined && error !== null) {
        next(error);
        return;
      }
      const rawBody: unknown = req.body;
      if (!Buffer.isBuffer(rawBody)) {
        res
          .status(415)
          .json({ error: 'unsupported_media_type', reason: 'expected application/json' });
        return;
      }
      const verification = verifyWebhook(rawBody, req.headers, options.secret, {
        toleranceSeconds: options.toleranceSeconds ?? 300,
        now: now(),
        allowUntimestamped: options.allowUntimestamped ?? false,
      });
      if (!verification.ok) {
        res.status(401).json({ error: 'invalid_webhook', reason: verification.reason });
        return;
      }
      let envelope: unknown;
      try {
        envelope = JSON.parse(rawBody.toString('utf8'));
      } catch {
        res.status(400).json({ error: 'invalid_webhook', reason: 'invalid_json' });
        return;
      }
      req.body = envelope;
      res.locals.rawBody = rawBody;
      res.locals.webhookScheme = verification.scheme;
      next();
    });
  };
};
