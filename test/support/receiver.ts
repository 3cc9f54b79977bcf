import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from './postgres.ts';

/** One POST as it reached the receiver: the raw bytes, before any JSON parsing. */
export type ReceivedWebhook = {
  /** Date.now() when the whole body had arrived. */
  at: number;
  /** The request path, e.g. `/hook/3`: one receiver can stand for several endpoints. */
  path: string;
  method: string;
  headers: IncomingHttpHeaders;
  /** The body decoded as UTF-8; `raw` holds the bytes. */
  body: string;
  raw: Buffer;
};

/**
 * How the receiver answers: a status (with an optional body, and a delay before answering or a
 * promise it waits for, so a test holds the POST open as long as it needs), or `'hang'`, which
 * never answers (the connection stays open until the receiver closes).
 */
export type Answer =
  | {
      status: number;
      body?: string;
      /** Response headers besides content-type, e.g. Retry-After. */
      headers?: Record<string, string>;
      delayMs?: number;
      until?: Promise<unknown>;
    }
  | 'hang';

/** Decides the answer to the `n`-th request (1-based, counted per receiver). */
export type Responder = (request: ReceivedWebhook, n: number) => Answer;

export type Receiver = {
  /** `http://127.0.0.1:<port>`; endpoints use `url + '/hook'` or any other path. */
  origin: string;
  /** `origin + '/hook'`. */
  url: string;
  /** Every request received, in arrival order. */
  received: ReceivedWebhook[];
  /** Replaces the responder for the requests that arrive from now on. */
  answer: (responder: Responder) => void;
  /** The requests whose path is `path`. */
  at: (path: string) => ReceivedWebhook[];
  /** Waits (polling, no fixed sleep) until `count` requests arrived, optionally on one path. */
  waitForCount: (count: number, options?: { path?: string; timeoutMs?: number }) => Promise<void>;
  close: () => Promise<void>;
};

/** A status as a responder: every request gets it, immediately. */
export const always =
  (status: number): Responder =>
  () => ({ status, body: `answered ${status}` });

/**
 * A real node:http server on 127.0.0.1 (port 0) that records raw bodies and headers and answers
 * as told. It is what a customer's endpoint looks like to the delivery worker: no mocks in
 * between, so the bytes recorded are the bytes that crossed the socket.
 */
export const startReceiver = async (responder: Responder = always(200)): Promise<Receiver> => {
  let respond = responder;
  const received: ReceivedWebhook[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const send = (
    res: ServerResponse,
    status: number,
    body: string,
    headers: Record<string, string> = {},
  ) => {
    res.writeHead(status, { 'content-type': 'text/plain', ...headers }).end(body);
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const request: ReceivedWebhook = {
        at: Date.now(),
        path: req.url ?? '/',
        method: req.method ?? 'GET',
        headers: req.headers,
        body: raw.toString('utf8'),
        raw,
      };
      received.push(request);
      const answer = respond(request, received.length);
      if (answer === 'hang') return;
      const body = answer.body ?? 'ok';
      if (answer.until) {
        void answer.until.then(() => {
          if (!res.destroyed) send(res, answer.status, body, answer.headers);
        });
        return;
      }
      if (!answer.delayMs) return send(res, answer.status, body, answer.headers);
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!res.destroyed) send(res, answer.status, body, answer.headers);
      }, answer.delayMs);
      timers.add(timer);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const at = (path: string) => received.filter((r) => r.path === path);
  return {
    origin,
    url: `${origin}/hook`,
    received,
    answer: (next) => {
      respond = next;
    },
    at,
    waitForCount: (count, options = {}) =>
      waitFor(
        `${count} webhook(s) at ${origin}${options.path ?? ''}`,
        () => (options.path ? at(options.path) : received).length >= count,
        options.timeoutMs,
      ),
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
};

/** A header's single value; fails loudly when it is missing or repeated. */
export const headerOf = (request: ReceivedWebhook, name: string): string => {
  const value = request.headers[name.toLowerCase()];
  if (typeof value !== 'string') {
    throw new Error(`header ${name} is ${value === undefined ? 'missing' : 'repeated'}`);
  }
  return value;
};

/** The headers as a plain string record, the shape `standardwebhooks`' verify() takes. */
export const stringHeaders = (request: ReceivedWebhook): Record<string, string> =>
  Object.fromEntries(
    Object.entries(request.headers).flatMap(([k, v]) =>
      typeof v === 'string' ? [[k, v]] : Array.isArray(v) && v[0] !== undefined ? [[k, v[0]]] : [],
    ),
  );
