import { setTimeout as delay } from 'node:timers/promises';
import type { Request, Response, Router } from 'express';
import { z } from 'zod';
import { webhookEventTypes } from '../../../delivery/catalogue.ts';
import { isEventPattern, matchesPatterns } from '../../../delivery/subscriptions.ts';
import type { WebhookStore } from '../../webhooks/webhookStore.ts';
import { sendError } from './errors.ts';
import { parse, programOf } from './request.ts';
import { wireString } from './schemas.ts';

export type WebhookStreamDeps = {
  webhooks: WebhookStore;
  /** Aborts at shutdown: every open stream ends at once, so it never holds the close up. */
  closing?: AbortSignal;
  /** How often an open stream looks for new envelopes. Default 200 ms. */
  streamPollMs?: number;
};

/** Envelopes per read at most; a stream far behind catches up in pages of this. */
const pageSize = 200;
const heartbeatMs = 15_000;
const cursorText = /^\d{1,19}$/;

export const streamQuerySchema = z
  .strictObject({
    events: wireString()
      .max(2_000)
      .optional()
      .transform((text) => (text === undefined || text === '' ? ['*'] : text.split(',')))
      .refine((patterns) => patterns.every((p) => isEventPattern(p, webhookEventTypes)), {
        message:
          'names an event type that does not exist: list types, "*" or "<group>.*" separated by commas',
      }),
    after: wireString()
      .regex(cursorText, 'must be a cursor from an earlier stream (the SSE id)')
      .optional(),
  })
  .meta({ id: 'WebhookStreamQuery' });

/**
 * `GET /v1/programs/:programId/webhook-events/stream`: the program's webhooks as they are made,
 * as Server-Sent Events (`event: webhook`, `id:` the cursor, `data:` {id, type, body}, where
 * `body` is the envelope's exact bytes as sent to endpoints). It starts after `Last-Event-ID` or
 * `?after=`, or else at the newest envelope (only what happens from now on), and first sends
 * `event: ready` with that cursor. What `incentable listen` reads (adapters/cli/listen.ts).
 */
export const addStreamRoute = (router: Router, deps: WebhookStreamDeps): void => {
  router.get('/programs/:programId/webhook-events/stream', async (req, res) => {
    const query = parse(streamQuerySchema, req.query, res);
    if (!query) return;
    const lastEventId = req.get('last-event-id');
    if (lastEventId !== undefined && !cursorText.test(lastEventId))
      return sendError(res, 400, {
        code: 'validation_error',
        message: 'Last-Event-ID must be a cursor from an earlier stream (the SSE id)',
        field: 'Last-Event-ID',
      });
    const programId = programOf(res);
    const start = lastEventId ?? query.after;
    const cursor =
      start !== undefined ? BigInt(start) : await deps.webhooks.lastEnvelopeSeq(programId);
    await stream(req, res, { ...deps, programId, cursor, patterns: query.events });
  });
};

const stream = async (
  req: Request,
  res: Response,
  options: WebhookStreamDeps & { programId: string; cursor: bigint; patterns: string[] },
): Promise<void> => {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  // HEAD has no body to stream: its headers are the whole answer.
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  res.write(`event: ready\ndata: ${JSON.stringify({ cursor: options.cursor.toString() })}\n\n`);
  const ended = new AbortController();
  const end = () => ended.abort();
  // The response closes when the client goes away (or once it ended here).
  res.on('close', end);
  options.closing?.addEventListener('abort', end, { once: true });
  let cursor = options.cursor;
  let lastWrite = Date.now();
  try {
    while (!ended.signal.aborted) {
      const page = await options.webhooks.envelopesAfter(options.programId, cursor, pageSize);
      for (const envelope of page) {
        cursor = envelope.seq;
        if (!matchesPatterns(options.patterns, envelope.type)) continue;
        const data = JSON.stringify({
          id: envelope.envelopeId,
          type: envelope.type,
          body: envelope.body,
        });
        res.write(`id: ${envelope.seq}\nevent: webhook\ndata: ${data}\n\n`);
        lastWrite = Date.now();
      }
      if (page.length === pageSize) continue;
      if (Date.now() - lastWrite >= heartbeatMs) {
        res.write(': keep-alive\n\n');
        lastWrite = Date.now();
      }
      await sleep(options.streamPollMs ?? 200, ended.signal);
    }
  } catch {
    // The database went away: say so and end; the client resumes from its last id.
    if (!res.destroyed)
      res.write(
        `event: error\ndata: ${JSON.stringify({ code: 'unavailable', message: 'the database is unavailable; reconnect with Last-Event-ID' })}\n\n`,
      );
  } finally {
    options.closing?.removeEventListener('abort', end);
    res.off('close', end);
    res.end();
  }
};

/** Waits `ms`, or less when `signal` aborts first; never rejects. */
const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  delay(ms, undefined, { signal }).catch(() => undefined);
