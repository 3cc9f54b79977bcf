import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { request } from 'undici';
import { webhookReceiver } from '../../../adapters/webhooks/receiverMiddleware.ts';
import { envelopeIdFor, serializeEnvelope } from '../../../delivery/envelope.ts';
import {
  newWebhookSecret,
  signDocs,
  signStandard,
  standardKeyOf,
} from '../../../delivery/signing.ts';

const secret = newWebhookSecret((n) => new Uint8Array(n).fill(5));
const now = new Date('2024-06-15T14:30:30Z');
const body = serializeEnvelope({
  id: envelopeIdFor('event-1'),
  type: 'member.tier_changed',
  createdAt: new Date('2024-06-15T14:30:00Z'),
  data: {
    member_id: 'mem_abc123',
    previous_tier: 'Silver',
    new_tier: 'Gold',
    reason: 'Points threshold reached',
  },
});

type Seen = { body: unknown; rawBody: unknown; scheme: unknown };
const seen: Seen[] = [];
let server: Server;
let baseUrl: string;

before(async () => {
  const app = express();
  const record: express.RequestHandler = (req, res) => {
    seen.push({ body: req.body, rawBody: res.locals.rawBody, scheme: res.locals.webhookScheme });
    res.status(204).end();
  };
  app.post('/webhooks', webhookReceiver({ secret, now: () => now }), record);
  app.post(
    '/lenient',
    webhookReceiver({ secret, now: () => now, allowUntimestamped: true }),
    record,
  );
  server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const send = async (headers: Record<string, string>, sent = body) => {
  const response = await request(baseUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: sent,
  });
  const text = await response.body.text();
  return { status: response.statusCode, json: text === '' ? null : (JSON.parse(text) as unknown) };
};

const standardHeaders = (sentAt = now) =>
  signStandard({ id: envelopeIdFor('event-1'), sentAt, body }, [standardKeyOf(secret)]);

describe('the webhook receiver middleware', () => {
  it('passes a Standard-signed webhook on with the parsed envelope and the raw bytes', async () => {
    seen.length = 0;
    const response = await send(standardHeaders());
    assert.equal(response.status, 204);
    assert.equal(seen.length, 1);
    assert.deepEqual(seen[0]?.body, JSON.parse(body));
    assert.ok(Buffer.isBuffer(seen[0]?.rawBody));
    assert.equal(seen[0]?.rawBody.toString('utf8'), body);
    assert.equal(seen[0]?.scheme, 'standard');
  });

  it('refuses a webhook signed only with X-Incentable-Signature (a replay would pass)', async () => {
    seen.length = 0;
    const response = await send({ 'x-incentable-signature': signDocs(body, secret) });
    assert.deepEqual(response, {
      status: 401,
      json: { error: 'invalid_webhook', reason: 'untimestamped_signature' },
    });
    assert.equal(seen.length, 0);
  });

  it('passes it with allowUntimestamped', async () => {
    seen.length = 0;
    const lenient = await fetch(baseUrl.replace('/webhooks', '/lenient'), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-incentable-signature': signDocs(body, secret),
      },
      body,
    });
    assert.equal(lenient.status, 204);
    assert.equal(seen[0]?.scheme, 'incentable');
  });

  it('answers 401 with the reason for a tampered body', async () => {
    seen.length = 0;
    const response = await send(standardHeaders(), body.replace('Gold', 'Platinum'));
    assert.deepEqual(response, {
      status: 401,
      json: { error: 'invalid_webhook', reason: 'invalid_signature' },
    });
    assert.equal(seen.length, 0);
  });

  it('answers 401 for a stale timestamp', async () => {
    const response = await send(standardHeaders(new Date(now.getTime() - 3_600_000)));
    assert.deepEqual(response, {
      status: 401,
      json: { error: 'invalid_webhook', reason: 'timestamp_out_of_tolerance' },
    });
  });

  it('answers 401 for an unsigned request', async () => {
    const response = await send({});
    assert.deepEqual(response, {
      status: 401,
      json: { error: 'invalid_webhook', reason: 'missing_signature' },
    });
  });

  it('answers 415 for a body that is not JSON', async () => {
    const response = await send({ 'content-type': 'text/plain' });
    assert.equal(response.status, 415);
  });

  it('refuses to start with a secret that is not a whsec_ secret', () => {
    assert.throws(() => webhookReceiver({ secret: 'whsec_%%%' }), /whsec_/);
  });
});
