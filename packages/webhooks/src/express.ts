import express, { type Request, type RequestHandler } from 'express';
import type { WebhookEvent } from './events.js';
import { parseWebhook } from './parse.js';
import { standardKeyOf } from './verify.js';

export type WebhookReceiverOptions = {
  /** The endpoint's `whsec_…` secret, as shown in Settings -> Webhooks. */
  secret: string;
  /** How far `webhook-timestamp` may be from now, either way, in seconds; default 300. */
  toleranceSeconds?: number;
  /** Also accept the timestamp-less `X-Incentable-Signature` alone (see verifyWebhook). */
  allowUntimestamped?: boolean;
  /** Largest body accepted, in express.raw's notation; default '1mb'. */
  limit?: string;
  /** The clock for the timestamp tolerance; injectable for tests. */
  now?: () => Date;
};

/** What the middleware leaves in `res.locals` for the handlers after it (others may add more). */
export type WebhookLocals = Record<string, unknown> & {
  /** The bytes received, exactly as signed. */
  rawBody: Buffer;
  webhookScheme: 'standard' | 'incentable';
};

/**
 * Express middleware for a webhook endpoint: keeps the raw bytes (signatures cover bytes, not
 * parsed JSON), verifies them, answers 401 with a JSON reason on failure (400 when the verified
 * body is no envelope), and otherwise sets `req.body` to the parsed event, typed `WebhookEvent`
 * for the handlers after it, and `res.locals.rawBody` to the bytes received. Mount it instead of
 * express.json() on that route. Throws at once when `secret` is not a whsec_ secret. Express
 * infers route parameters only while no handler fixes them: on a route with parameters name
 * them, `webhookReceiver<{ tenant: string }>(…)`, to keep `req.params.tenant` a string.
 */
export const webhookReceiver = <Params = Request['params']>(
  options: WebhookReceiverOptions,
): RequestHandler<Params, unknown, WebhookEvent, Request['query'], WebhookLocals> => {
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
      const parsed = parseWebhook(rawBody, req.headers, options.secret, {
        toleranceSeconds: options.toleranceSeconds ?? 300,
        now: now(),
        allowUntimestamped: options.allowUntimestamped ?? false,
      });
      if (!parsed.ok) {
        const malformed = parsed.reason === 'invalid_json' || parsed.reason === 'invalid_envelope';
        res.status(malformed ? 400 : 401).json({ error: 'invalid_webhook', reason: parsed.reason });
        return;
      }
      req.body = parsed.event;
      res.locals.rawBody = rawBody;
      res.locals.webhookScheme = parsed.scheme;
      next();
    });
  };
};
