import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signStandard, standardKeyOf } from '../../../delivery/signing.ts';
import { parseWebhook } from '../../../packages/webhooks/src/index.ts';

const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const now = new Date('2024-06-15T14:30:10Z');
const signed = (body: string) =>
  signStandard({ id: 'evt_abc123', sentAt: new Date('2024-06-15T14:30:00Z'), body }, [
    standardKeyOf(secret),
  ]);
const body =
  '{"id":"evt_abc123","type":"member.reactivated","created_at":"2024-06-15T14:30:00Z","data":{"member_id":"mem_abc123"}}';

describe('parsing a received webhook', () => {
  it('gives the verified event, narrowed on its type', () => {
    const parsed = parseWebhook(Buffer.from(body), signed(body), secret, { now });
    assert.equal(parsed.ok, true);
    if (!parsed.ok) return;
    assert.equal(parsed.scheme, 'standard');
    assert.equal(parsed.event.type, 'member.reactivated');
    if (parsed.event.type === 'member.reactivated') {
      assert.equal(parsed.event.data.member_id, 'mem_abc123');
    }
  });

  it('refuses a tampered body before parsing it', () => {
    const tampered = body.replace('mem_abc123', 'mem_evil00');
    assert.deepEqual(parseWebhook(tampered, signed(body), secret, { now }), {
      ok: false,
      reason: 'invalid_signature',
    });
  });

  it('refuses signed bytes that are not JSON, or not an envelope', () => {
    assert.deepEqual(parseWebhook('{"id":', signed('{"id":'), secret, { now }), {
      ok: false,
      reason: 'invalid_json',
    });
    const noData = '{"id":"evt_abc123","type":"member.reactivated","created_at":"x"}';
    assert.deepEqual(parseWebhook(noData, signed(noData), secret, { now }), {
      ok: false,
      reason: 'invalid_envelope',
    });
  });
});
