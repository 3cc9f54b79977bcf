import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { subscribedTypes, subscribes } from '../../delivery/subscriptions.ts';

describe('subscriptions', () => {
  it('an endpoint listing types gets only those', () => {
    const events = ['points.awarded', 'order.shipped'];
    assert.equal(subscribes(events, 'points.awarded'), true);
    assert.equal(subscribes(events, 'order.shipped'), true);
    assert.equal(subscribes(events, 'points.deducted'), false);
    assert.deepEqual(subscribedTypes(events), events);
  });

  it('"*" takes every type (the API keeps it alone; the rule does not depend on that)', () => {
    for (const events of [['*'], ['points.awarded', '*']]) {
      assert.equal(subscribes(events, 'member.tier_changed'), true);
      assert.equal(subscribedTypes(events), 'every');
    }
  });

  it('no types: nothing, and no prefix or pattern matching', () => {
    assert.equal(subscribes([], 'points.awarded'), false);
    assert.deepEqual(subscribedTypes([]), []);
    assert.equal(subscribes(['points.*'], 'points.awarded'), false);
    assert.equal(subscribes(['points'], 'points.awarded'), false);
  });
});
