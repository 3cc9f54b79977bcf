import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  defaultEndpointHealthPolicy,
  endpointHealthNotice,
  healthChanges,
} from '../../delivery/endpointHealth.ts';
import type { DeliveryDecision } from '../../delivery/outcome.ts';
import type { FinishedAttempt } from '../../delivery/ports.ts';

const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute));

const attempt = (endpointId: string, minute: number, decision: DeliveryDecision) =>
  ({
    delivery: { endpoint_id: endpointId },
    startedAt: at(minute),
    decision,
  }) as FinishedAttempt;

const pending: DeliveryDecision = { status: 'pending', nextAttemptAt: at(99) };

describe("an endpoint's failure clock", () => {
  it('starts at the first failure and counts the deliveries failed for good', () => {
    assert.deepEqual(
      healthChanges([
        attempt('a', 3, { status: 'failed' }),
        attempt('a', 1, pending),
        attempt('a', 2, { status: 'failed' }),
      ]),
      [{ endpointId: 'a', reset: false, firstFailureAt: at(1), failedDeliveries: 2 }],
    );
  });

  it('starts again at a success: only what came after it counts', () => {
    assert.deepEqual(
      healthChanges([
        attempt('a', 1, { status: 'failed' }),
        attempt('a', 2, { status: 'delivered' }),
        attempt('a', 4, { status: 'failed' }),
        attempt('a', 3, pending),
        attempt('b', 5, { status: 'delivered' }),
      ]),
      [
        { endpointId: 'a', reset: true, firstFailureAt: at(3), failedDeliveries: 1 },
        { endpointId: 'b', reset: true, firstFailureAt: null, failedDeliveries: 0 },
      ],
    );
  });

  it('says in the email when it will be, or was, disabled and why', () => {
    const endpoint = {
      endpointId: 'we_1',
      programId: 'prg_1',
      url: 'https://hooks.example.com/in?token=x',
      failingSince: new Date('2026-01-01T00:00:00Z'),
      failedDeliveries: 12,
    };
    const warning = endpointHealthNotice(
      'endpoint_failing',
      endpoint,
      defaultEndpointHealthPolicy,
      new Date('2026-01-03T12:00:00Z'),
      'https://incentives.example.com',
    );
    assert.equal(
      warning.subject,
      'Webhook endpoint failing for 2.5 days: we_1 at hooks.example.com',
    );
    assert.match(warning.text, /disabled \(reason: sustained_failure\)/);
    assert.match(warning.text, /before 2026-01-06T00:00:00\.000Z/);
    assert.equal(warning.text.includes('token=x'), false, 'no query string in an email');
    const disabled = endpointHealthNotice(
      'endpoint_disabled',
      endpoint,
      defaultEndpointHealthPolicy,
      new Date('2026-01-06T00:00:00Z'),
      'https://incentives.example.com',
    );
    assert.match(disabled.subject, /^Webhook endpoint disabled after 5 days of failures/);
    assert.match(disabled.text, /12 deliveries failed for good/);
    assert.match(
      disabled.text,
      /https:\/\/incentives\.example\.com\/dashboard\/settings\/webhooks\/we_1/,
    );
  });
});
