import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { endpointLabel, failureNotice } from '../../delivery/failureNotice.ts';
import type { FinishedAttempt } from '../../delivery/ports.ts';

const attempt = (
  overrides: Partial<Pick<FinishedAttempt, 'result' | 'lastError' | 'decision'>> = {},
): Pick<FinishedAttempt, 'delivery' | 'result' | 'lastError' | 'decision'> => ({
  delivery: {
    delivery_id: 'dlv_1',
    program_id: 'prg_1',
    endpoint_id: 'end_1',
    envelope_id: 'evt_1',
    attempts: 4,
    type: 'points.awarded',
    body: '{}',
    is_test: false,
    url: 'https://hooks.example.com:8443/in?token=secret',
    url_userinfo_encrypted: null,
    subject: null,
    sequence: null,
    secret_encrypted: 'v1:x:y:z',
    previous_secret_encrypted: null,
    previous_secret_expires_at: null,
    leaseOwner: 'w:1',
    leaseExpiresAt: 0,
  },
  result: { kind: 'response', status: 500, durationMs: 12, body: '' },
  lastError: 'HTTP 500',
  decision: { status: 'failed' },
  ...overrides,
});

describe('the failure email', () => {
  it('names the endpoint by id and host, never its path or query', () => {
    assert.equal(
      endpointLabel('end_1', 'https://hooks.example.com:8443/in?token=secret'),
      'end_1 at hooks.example.com:8443',
    );
    assert.equal(endpointLabel('end_1', 'not a url'), 'end_1 at an unreadable URL');
  });

  it('says a delivery failed after its attempts, and links to it on the dashboard', () => {
    const { subject, text } = failureNotice(attempt(), 'https://incentives.example.com');
    assert.equal(
      subject,
      'Webhook delivery failed: points.awarded to end_1 at hooks.example.com:8443',
    );
    assert.match(text, /^A webhook could not be delivered after 5 attempts/);
    assert.match(text, /\nAttempts: 5\n/);
    assert.match(text, /\nLast status: 500\n/);
    assert.match(text, /\nLast error: HTTP 500\n/);
    assert.match(text, /\nEvent id: evt_1\n/);
    assert.ok(
      text.endsWith(
        'Details and redelivery: https://incentives.example.com/dashboard/webhooks/end_1/deliveries/dlv_1',
      ),
    );
    assert.doesNotMatch(text, /token=secret/);
  });

  it('says an endpoint that answered 410 Gone was disabled', () => {
    const { subject, text } = failureNotice(
      attempt({
        decision: { status: 'gone' },
        result: { kind: 'response', status: 410, durationMs: 3, body: '' },
        lastError: 'HTTP 410',
      }),
      'https://incentives.example.com',
    );
    assert.equal(subject, 'Webhook endpoint disabled (410 Gone): end_1 at hooks.example.com:8443');
    assert.match(text, /^Your webhook endpoint answered 410 Gone, so it has been disabled\./);
  });

  it('says when there was no response at all', () => {
    const { text } = failureNotice(
      attempt({
        result: { kind: 'error', error: 'timeout', message: 'timed out', durationMs: 10_000 },
        lastError: 'timeout: timed out',
      }),
      'https://incentives.example.com',
    );
    assert.match(text, /\nLast status: no response\n/);
    assert.match(text, /\nLast error: timeout: timed out\n/);
  });
});
