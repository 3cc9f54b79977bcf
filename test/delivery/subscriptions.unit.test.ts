import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { webhookEventTypes } from '../../delivery/catalogue.ts';
import { matchesPatterns, subscribedTypes, subscribes } from '../../delivery/subscriptions.ts';

describe('subscriptions', () => {
  it('an endpoint listing types gets only those', () => {
    const events = ['points.awarded', 'order.shipped'];
    assert.equal(subscribes(events, 'points.awarded'), true);
    assert.equal(subscribes(events, 'order.shipped'), true);
    assert.equal(subscribes(events, 'points.deducted'), false);
    assert.deepEqual(subscribedTypes(events), events);
  });

  it('"*" takes every type of the catalogue, and no opt-in type', () => {
    for (const events of [['*'], ['points.awarded', '*']]) {
      for (const type of webhookEventTypes) assert.equal(subscribes(events, type), true, type);
      assert.equal(subscribes(events, 'audit.checkpoint'), false);
      assert.equal(subscribedTypes(events).includes('audit.checkpoint'), false);
      assert.deepEqual(new Set(subscribedTypes(events)), new Set(webhookEventTypes));
    }
  });

  it('an opt-in type only by name, beside "*" or alone', () => {
    assert.equal(subscribes(['audit.checkpoint'], 'audit.checkpoint'), true);
    assert.equal(subscribes(['audit.checkpoint'], 'points.awarded'), false);
    assert.equal(subscribes(['*', 'audit.checkpoint'], 'audit.checkpoint'), true);
    assert.ok(subscribedTypes(['*', 'audit.checkpoint']).includes('audit.checkpoint'));
    assert.equal(matchesPatterns(['*'], 'audit.checkpoint'), false);
    assert.equal(matchesPatterns(['audit.checkpoint'], 'audit.checkpoint'), true);
  });

  it('no types: nothing, and no prefix or pattern matching', () => {
    assert.equal(subscribes([], 'points.awarded'), false);
    assert.deepEqual(subscribedTypes([]), []);
    assert.equal(subscribes(['points.*'], 'points.awarded'), false);
    assert.equal(subscribes(['points'], 'points.awarded'), false);
  });
});
