import * as crypto from 'node:crypto';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import type { LeasedDelivery } from '../../delivery/ports.ts';
import { secretCache, signedHeaders } from '../../delivery/signedRequest.ts';
import { encryptSecret, newWebhookSecret } from '../../delivery/signing.ts';

const fixedBytes =
  (fill: number) =>
  (n: number): Uint8Array =>
    new Uint8Array(n).fill(fill);
const storeKey = new Uint8Array(32).fill(3);
const current = newWebhookSecret(fixedBytes(7));
const previous = newWebhookSecret(fixedBytes(9));
const sentAt = new Date('2026-01-05T10:00:00Z');
const body = '{"id":"evt_1","type":"points.awarded","data":{"points":5}}';

const delivery = (overrides: Partial<LeasedDelivery> = {}): LeasedDelivery => ({
  delivery_id: 'dlv_1',
  program_id: 'prg_1',
  endpoint_id: 'end_1',
  envelope_id: 'evt_1',
  attempts: 0,
  type: 'points.awarded',
  body,
  is_test: false,
  url: 'https://receiver.example.com/hooks',
  url_userinfo_encrypted: null,
  subject: null,
  sequence: null,
  secret_encrypted: encryptSecret(current, storeKey),
  previous_secret_encrypted: null,
  previous_secret_expires_at: null,
  ...overrides,
});

const headersOf = (d: LeasedDelivery) =>
  signedHeaders({
    delivery: d,
    sentAt,
    userAgent: 'Incentable-Webhooks/1.2.3',
    secretOf: secretCache(storeKey),
  });

/** The Standard Webhooks verifier with its timestamp check pinned to `sentAt`. */
const verifies = (secret: string, headers: Record<string, string>): boolean => {
  const realNow = Date.now;
  Date.now = () => sentAt.getTime();
  try {
    new Webhook(secret).verify(body, headers);
    return true;
  } catch {
    return false;
  } finally {
    Date.now = realNow;
  }
};

describe('a signed delivery request', () => {
  it('names the event, the delivery and the product, and signs the stored bytes both ways', () => {
    const headers = headersOf(delivery());
    assert.equal(headers['content-type'], 'application/json');
    assert.equal(headers['user-agent'], 'Incentable-Webhooks/1.2.3');
    assert.equal(headers['x-incentable-event'], 'points.awarded');
    assert.equal(headers['x-incentable-delivery'], 'dlv_1');
    assert.equal(headers['webhook-id'], 'evt_1');
    assert.equal(headers['webhook-timestamp'], String(sentAt.getTime() / 1000));
    const expected = crypto.createHmac('sha256', current).update(body).digest('hex');
    assert.equal(headers['x-incentable-signature'], expected);
    assert.equal(verifies(current, headers), true);
    assert.equal('x-incentable-test' in headers, false);
  });

  it('marks a test event', () => {
    assert.equal(headersOf(delivery({ is_test: true }))['x-incentable-test'], 'true');
  });

  it('signs with the previous secret too until it expires', () => {
    const rotating = (expiresAt: Date) =>
      headersOf(
        delivery({
          previous_secret_encrypted: encryptSecret(previous, storeKey),
          previous_secret_expires_at: expiresAt,
        }),
      );
    const before = rotating(new Date(sentAt.getTime() + 1));
    assert.equal(verifies(previous, before), true);
    assert.equal(verifies(current, before), true);
    const atExpiry = rotating(sentAt);
    assert.equal(verifies(previous, atExpiry), false);
    assert.equal(atExpiry['webhook-signature']?.split(' ').length, 1);
  });

  it('decrypts each stored secret once, and throws on one the key cannot decrypt', () => {
    const stored = encryptSecret(current, storeKey);
    const secretOf = secretCache(storeKey);
    const first = secretOf(stored);
    assert.equal(secretOf(stored), first, 'the second lookup is the cached value');
    assert.equal(first.plain, current);
    const other = encryptSecret(current, new Uint8Array(32).fill(4));
    assert.throws(() => secretOf(other), /cannot decrypt/);
  });
});
