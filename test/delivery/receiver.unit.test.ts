import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { verifyWebhook } from '../../delivery/receiver.ts';
import { newWebhookSecret, signDocs, signStandard, standardKeyOf } from '../../delivery/signing.ts';

const secret = newWebhookSecret((n) => new Uint8Array(n).fill(3));
const otherSecret = newWebhookSecret((n) => new Uint8Array(n).fill(4));
const body =
  '{"id":"evt_abc123","type":"points.awarded","created_at":"2024-06-15T14:30:00Z","data":{}}';
const sentAt = new Date('2024-06-15T14:30:00Z');
const now = new Date('2024-06-15T14:31:00Z');
const standard = (keys = [standardKeyOf(secret)], signedBody = body, at = sentAt) =>
  signStandard({ id: 'evt_abc123', sentAt: at, body: signedBody }, keys);

describe('verifying a received webhook', () => {
  it('accepts a Standard Webhooks signature', () => {
    assert.deepEqual(verifyWebhook(body, standard(), secret, { now }), {
      ok: true,
      scheme: 'standard',
    });
  });

  it('accepts a signature made by the standardwebhooks package', () => {
    const signature = new Webhook(secret).sign('msg_1', sentAt, body);
    const headers = {
      'webhook-id': 'msg_1',
      'webhook-timestamp': '1718461800',
      'webhook-signature': signature,
    };
    assert.deepEqual(verifyWebhook(body, headers, secret, { now }), {
      ok: true,
      scheme: 'standard',
    });
  });

  it('accepts a Buffer body and headers in any case', () => {
    const headers = Object.fromEntries(
      Object.entries(standard()).map(([name, value]) => [name.toUpperCase(), value]),
    );
    assert.equal(verifyWebhook(Buffer.from(body), headers, secret, { now }).ok, true);
  });

  it('accepts any of several signatures while the sender rotates secrets', () => {
    const headers = standard([standardKeyOf(otherSecret), standardKeyOf(secret)]);
    assert.equal(verifyWebhook(body, headers, secret, { now }).ok, true);
  });

  it('refuses the docs signature alone by default: without a timestamp it replays for ever', () => {
    const headers = { 'x-incentable-signature': signDocs(body, secret) };
    assert.deepEqual(verifyWebhook(body, headers, secret, { now }), {
      ok: false,
      reason: 'untimestamped_signature',
    });
  });

  it('accepts the docs signature alone when allowUntimestamped is set', () => {
    const headers = { 'x-incentable-signature': signDocs(body, secret) };
    assert.deepEqual(verifyWebhook(body, headers, secret, { now, allowUntimestamped: true }), {
      ok: true,
      scheme: 'incentable',
    });
  });

  it('judges by the Standard signature when both are present', () => {
    const headers = {
      ...standard([standardKeyOf(otherSecret)]),
      'x-incentable-signature': signDocs(body, secret),
    };
    assert.deepEqual(verifyWebhook(body, headers, secret, { now }), {
      ok: false,
      reason: 'invalid_signature',
    });
  });

  it('rejects a tampered body under both schemes', () => {
    const tampered = body.replace('evt_abc123', 'evt_abc124');
    assert.deepEqual(verifyWebhook(tampered, standard(), secret, { now }), {
      ok: false,
      reason: 'invalid_signature',
    });
    const docs = { 'x-incentable-signature': signDocs(body, secret) };
    assert.deepEqual(verifyWebhook(tampered, docs, secret, { now, allowUntimestamped: true }), {
      ok: false,
      reason: 'invalid_signature',
    });
  });

  it('rejects a timestamp older than the tolerance', () => {
    const stale = standard(undefined, body, new Date(now.getTime() - 301_000));
    assert.deepEqual(verifyWebhook(body, stale, secret, { now }), {
      ok: false,
      reason: 'timestamp_out_of_tolerance',
    });
    assert.equal(verifyWebhook(body, stale, secret, { now, toleranceSeconds: 600 }).ok, true);
  });

  it('rejects a timestamp too far in the future', () => {
    const early = standard(undefined, body, new Date(now.getTime() + 301_000));
    assert.deepEqual(verifyWebhook(body, early, secret, { now }), {
      ok: false,
      reason: 'timestamp_out_of_tolerance',
    });
  });

  it('rejects a timestamp that is not a number', () => {
    const headers = { ...standard(), 'webhook-timestamp': '2024-06-15' };
    assert.deepEqual(verifyWebhook(body, headers, secret, { now }), {
      ok: false,
      reason: 'invalid_timestamp',
    });
  });

  it('rejects signatures of the wrong length without throwing', () => {
    const shortStandard = { ...standard(), 'webhook-signature': 'v1,AAAA' };
    assert.deepEqual(verifyWebhook(body, shortStandard, secret, { now }), {
      ok: false,
      reason: 'invalid_signature',
    });
    const shortDocs = { 'x-incentable-signature': 'abc' };
    assert.deepEqual(verifyWebhook(body, shortDocs, secret, { now, allowUntimestamped: true }), {
      ok: false,
      reason: 'invalid_signature',
    });
    const garbage = { ...standard(), 'webhook-signature': 'v1 ,,, v2,zzz v1' };
    assert.deepEqual(verifyWebhook(body, garbage, secret, { now }), {
      ok: false,
      reason: 'invalid_signature',
    });
  });

  it('ignores signatures of versions other than v1', () => {
    const v1 = standard()['webhook-signature'];
    const headers = { ...standard(), 'webhook-signature': v1.replace('v1,', 'v2,') };
    assert.deepEqual(verifyWebhook(body, headers, secret, { now }), {
      ok: false,
      reason: 'invalid_signature',
    });
  });

  it('rejects a Standard signature without its id or timestamp', () => {
    const { 'webhook-id': _id, ...withoutId } = standard();
    assert.deepEqual(verifyWebhook(body, withoutId, secret, { now }), {
      ok: false,
      reason: 'missing_headers',
    });
  });

  it('rejects a request with no signature', () => {
    assert.deepEqual(verifyWebhook(body, { 'content-type': 'application/json' }, secret, { now }), {
      ok: false,
      reason: 'missing_signature',
    });
  });
});
