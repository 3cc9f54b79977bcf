import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assignSequences, sequenceKey, subjectOf } from '../../delivery/ordering.ts';

describe('ordered endpoints: subjects and sequences', () => {
  it("names each event's subject: its member, order or leaderboard", () => {
    assert.equal(subjectOf('points.awarded', { member_id: 'mem_1' }), 'member:mem_1');
    assert.equal(subjectOf('member.tier_changed', { member_id: 'mem_1' }), 'member:mem_1');
    assert.equal(
      subjectOf('reward.redeemed', { order_id: 'ord_9', member_id: 'mem_1' }),
      'order:ord_9',
    );
    assert.equal(subjectOf('order.shipped', { order_id: 'ord_9' }), 'order:ord_9');
    assert.equal(
      subjectOf('leaderboard.position_changed', { leaderboard_id: 'lb_2', member_id: 'mem_1' }),
      'leaderboard:lb_2',
    );
    assert.equal(subjectOf('points.awarded', {}), null);
    assert.equal(subjectOf('audit.checkpoint', { size: 3 }), null);
  });

  it('numbers each endpoint and subject from where it stood, in the order given', () => {
    const numbered = assignSequences(
      [
        { endpointId: 'a', subject: 'member:1' },
        { endpointId: 'a', subject: 'member:2' },
        { endpointId: 'a', subject: 'member:1' },
        { endpointId: 'b', subject: 'member:1' },
      ],
      new Map([[sequenceKey('a', 'member:1'), 41n]]),
    );
    assert.deepEqual(
      numbered.map((r) => r.sequence),
      [42n, 1n, 43n, 1n],
    );
  });
});
