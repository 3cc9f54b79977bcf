import * as crypto from 'node:crypto';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { serializeEnvelope } from '../../delivery/envelope.ts';
import {
  decryptSecret,
  encryptSecret,
  newWebhookSecret,
  signDocs,
  signStandard,
  standardKeyOf,
} from '../../delivery/signing.ts';

// The public docs' snippet ("Verifying Webhooks"), verbatim but for the require line, which is
// the `import * as crypto` above. It is the independent verifier our signature must satisfy.
/* eslint-disable -- untyped third-party JavaScript kept byte for byte; typing it would change it */
// @ts-expect-error -- the snippet's parameters are untyped JavaScript
// prettier-ignore
function verifyWebhook(payload, signature, secret) {
const expected = crypto
.createHmac('sha256', secret)
.update(payload)
.digest('hex');
return crypto.timingSafeEqual(
Buffer.from(signature),
Buffer.from(expected)
);
}
/* eslint-enable */

const fixedBytes =
  (fill: number) =>
  (n: number): Uint8Array =>
    new Uint8Array(n).fill(fill);
const secret = newWebhookSecret(fixedBytes(7));
const otherSecret = newWebhookSecret(fixedBytes(9));
const body = serializeEnvelope({
  id: 'evt_abc123',
  type: 'points.awarded',
  createdAt: new Date('2024-06-15T14:30:00Z'),
  data: {
    transaction_id: 'txn_def456',
    member_id: 'mem_abc123',
    points: 500,
    reason: 'Q2 Sales Target',
    new_balance: 5500,
  },
});

describe('webhook secrets', () => {
  it('are whsec_ and the base64 of 32 injected random bytes', () => {
    assert.equal(secret, `whsec_${Buffer.alloc(32, 7).toString('base64')}`);
  });

  it('yield the decoded bytes as the Standard Webhooks key', () => {
    assert.deepEqual(standardKeyOf(secret), new Uint8Array(32).fill(7));
  });

  it('refuse a secret that is not base64 after whsec_', () => {
    assert.throws(() => standardKeyOf('whsec_not base64!'), /not whsec_ followed by base64/);
  });
});

describe('the docs signature (X-Incentable-Signature)', () => {
  it('is lowercase hex HMAC-SHA256 keyed with the whole secret string', () => {
    const expected = crypto.createHmac('sha256', secret).update(body).digest('hex');
    assert.equal(signDocs(body, secret), expected);
    assert.match(signDocs(body, secret), /^[0-9a-f]{64}$/);
  });

  it("is accepted by the docs' own verification snippet", () => {
    assert.equal(verifyWebhook(body, signDocs(body, secret), secret), true);
  });

  it("is refused by the docs' snippet when the body is tampered with", () => {
    const tampered = body.replace('500', '900');
    assert.equal(verifyWebhook(tampered, signDocs(body, secret), secret), false);
  });
});

describe('the Standard Webhooks signature', () => {
  const sign = (keys: readonly Uint8Array[], signedBody = body) =>
    signStandard({ id: 'evt_abc123', sentAt: new Date(), body: signedBody }, keys);

  it('is accepted by the standardwebhooks package for the same whsec_ secret', () => {
    const headers = sign([standardKeyOf(secret)]);
    assert.deepEqual(new Webhook(secret).verify(body, headers), JSON.parse(body));
  });

  it('signs id.timestamp.body with whole-second timestamps', () => {
    const headers = signStandard(
      { id: 'evt_1', sentAt: new Date('2024-06-15T14:30:00.999Z'), body: '{}' },
      [standardKeyOf(secret)],
    );
    const expected = crypto
      .createHmac('sha256', standardKeyOf(secret))
      .update('evt_1.1718461800.{}')
      .digest('base64');
    assert.deepEqual(headers, {
      'webhook-id': 'evt_1',
      'webhook-timestamp': '1718461800',
      'webhook-signature': `v1,${expected}`,
    });
  });

  it('is refused by the standardwebhooks package when the body is tampered with', () => {
    const headers = sign([standardKeyOf(secret)]);
    assert.throws(() => new Webhook(secret).verify(body.replace('500', '900'), headers));
  });

  it('carries one signature per key so both secrets verify during a rotation', () => {
    const headers = sign([standardKeyOf(secret), standardKeyOf(otherSecret)]);
    assert.equal(headers['webhook-signature'].split(' ').length, 2);
    assert.doesNotThrow(() => new Webhook(secret).verify(body, headers));
    assert.doesNotThrow(() => new Webhook(otherSecret).verify(body, headers));
  });
});

describe('secrets at rest', () => {
  const key = new Uint8Array(32).fill(1);

  it('round-trip through AES-256-GCM in the v1 format', () => {
    const stored = encryptSecret(secret, key);
    assert.match(stored, /^v1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    assert.ok(!stored.includes(secret));
    assert.equal(decryptSecret(stored, key), secret);
  });

  it('use a fresh IV each time', () => {
    assert.notEqual(encryptSecret(secret, key), encryptSecret(secret, key));
  });

  it('refuse to decrypt with the wrong key, saying so', () => {
    const stored = encryptSecret(secret, key);
    assert.throws(() => decryptSecret(stored, new Uint8Array(32).fill(2)), /wrong key or tampered/);
  });

  it('refuse a tampered ciphertext', () => {
    const [version, iv, tag, ciphertext = ''] = encryptSecret(secret, key).split(':');
    const flipped = Buffer.from(ciphertext, 'base64');
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    const stored = [version, iv, tag, flipped.toString('base64')].join(':');
    assert.throws(() => decryptSecret(stored, key), /wrong key or tampered/);
  });

  it('refuse a key that is not 32 bytes and an unknown format', () => {
    assert.throws(() => encryptSecret(secret, new Uint8Array(16)), /32 bytes/);
    assert.throws(() => decryptSecret('v2:a:b:c', key), /v1:<iv>:<tag>:<ciphertext>/);
  });
});
