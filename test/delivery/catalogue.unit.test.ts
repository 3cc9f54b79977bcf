import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  catalogue,
  catalogueEntryOf,
  isSubscribableEventType,
  isWebhookEventType,
  optInCatalogue,
  pointsKinds,
  webhookEventTypes,
} from '../../delivery/catalogue.ts';
import { unknownKeywords, validate } from './jsonSchemaSubset.ts';

const entries = catalogue.flatMap((group) => group.entries);

describe('the webhook event catalogue', () => {
  it("groups and describes the types exactly as the docs' tables", () => {
    const table = catalogue.map((group) => [
      group.name,
      group.entries.map((entry) => [entry.type, entry.description]),
    ]);
    assert.deepEqual(table, [
      [
        'Points events',
        [
          ['points.awarded', "Points were added to a member's balance"],
          ['points.deducted', "Points were removed from a member's balance"],
          ['points.expired', 'Points expired due to inactivity'],
        ],
      ],
      [
        'Member events',
        [
          ['member.created', 'A new member was added'],
          ['member.updated', 'Member details were changed'],
          ['member.tier_changed', 'Member moved to a different tier'],
          ['member.deactivated', 'A member was deactivated'],
          ['member.reactivated', 'A deactivated member was reactivated'],
        ],
      ],
      [
        'Reward events',
        [
          ['reward.redeemed', 'A member redeemed a reward'],
          ['order.shipped', 'A physical reward was shipped'],
          ['order.delivered', 'A reward was delivered'],
          ['order.cancelled', 'An order was cancelled and its points refunded'],
        ],
      ],
      [
        'Leaderboard events',
        [
          ['leaderboard.position_changed', "A member's ranking changed"],
          ['leaderboard.period_ended', 'A competition period ended'],
        ],
      ],
    ]);
  });

  it('lists every type once, in the same order as webhookEventTypes', () => {
    assert.deepEqual(
      entries.map((entry) => entry.type),
      [...webhookEventTypes],
    );
  });

  it("uses the docs' example data as the samples of the three documented types", () => {
    // The docs' five fields byte for byte, then the two added after the docs.
    assert.equal(
      JSON.stringify(catalogueEntryOf('points.awarded').sample),
      '{"transaction_id":"txn_def456","member_id":"mem_abc123","points":500,' +
        '"reason":"Q2 Sales Target","new_balance":5500,"kind":"award","reference":null}',
    );
    assert.deepEqual(catalogueEntryOf('member.tier_changed').sample, {
      member_id: 'mem_abc123',
      previous_tier: 'Silver',
      new_tier: 'Gold',
      reason: 'Points threshold reached',
    });
    assert.deepEqual(catalogueEntryOf('reward.redeemed').sample, {
      order_id: 'ord_789xyz',
      member_id: 'mem_abc123',
      reward_id: 'rwd_001',
      reward_name: 'Amazon Gift Card $25',
      points_spent: 2500,
    });
  });

  for (const entry of entries) {
    describe(entry.type, () => {
      it('has a closed draft 2020-12 object schema requiring every field but reversal_of', () => {
        assert.equal(entry.schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
        assert.equal(entry.schema.type, 'object');
        assert.equal(entry.schema.additionalProperties, false);
        // reversal_of is there only when kind is "reversal".
        assert.deepEqual(
          entry.schema.required,
          Object.keys(entry.schema.properties as object).filter((k) => k !== 'reversal_of'),
        );
        assert.deepEqual(unknownKeywords(entry.schema), []);
      });

      it('has a sample that its schema accepts', () => {
        assert.deepEqual(validate(entry.schema, entry.sample), []);
      });

      it('refuses a sample with a missing or an extra field', () => {
        const [first] = Object.keys(entry.sample);
        const missing = Object.fromEntries(
          Object.entries(entry.sample).filter(([k]) => k !== first),
        );
        assert.notDeepEqual(validate(entry.schema, missing), []);
        assert.notDeepEqual(validate(entry.schema, { ...entry.sample, extra: 1 }), []);
      });
    });
  }

  it('fixes the data fields of every type', () => {
    const fields = Object.fromEntries(
      entries.map((entry) => [entry.type, Object.keys(entry.schema.properties as object)]),
    );
    const points = [
      'transaction_id',
      'member_id',
      'points',
      'reason',
      'new_balance',
      'kind',
      'reference',
    ];
    assert.deepEqual(fields, {
      'points.awarded': [...points, 'reversal_of'],
      'points.deducted': [...points, 'reversal_of'],
      'points.expired': points,
      'member.created': ['member_id', 'email', 'name', 'external_id', 'tier', 'attributes'],
      'member.updated': ['member_id', 'changes'],
      'member.tier_changed': ['member_id', 'previous_tier', 'new_tier', 'reason'],
      'member.deactivated': ['member_id', 'reason'],
      'member.reactivated': ['member_id'],
      'reward.redeemed': ['order_id', 'member_id', 'reward_id', 'reward_name', 'points_spent'],
      'order.shipped': ['order_id', 'member_id', 'reward_id', 'carrier', 'tracking_number'],
      'order.delivered': ['order_id', 'member_id', 'reward_id', 'delivered_at'],
      'order.cancelled': ['order_id', 'member_id', 'reward_id', 'reason', 'points_refunded'],
      'leaderboard.position_changed': [
        'leaderboard_id',
        'member_id',
        'previous_position',
        'new_position',
        'points',
      ],
      'leaderboard.period_ended': [
        'leaderboard_id',
        'period_start',
        'period_end',
        'standings',
        'period_id',
      ],
    });
  });

  it('allows each points type only the kinds that move points its way', () => {
    const kinds = (type: 'points.awarded' | 'points.deducted' | 'points.expired') => {
      const entry = catalogueEntryOf(type);
      return pointsKinds.filter(
        (kind) => validate(entry.schema, { ...entry.sample, kind }).length === 0,
      );
    };
    assert.deepEqual(kinds('points.awarded'), ['award', 'refund', 'reversal']);
    assert.deepEqual(kinds('points.deducted'), ['reversal', 'redemption', 'correction']);
    assert.deepEqual(kinds('points.expired'), ['expiry']);
    const awarded = catalogueEntryOf('points.awarded');
    assert.deepEqual(validate(awarded.schema, { ...awarded.sample, reference: 'crm-1' }), []);
  });

  it('accepts a deactivation without a reason', () => {
    const entry = catalogueEntryOf('member.deactivated');
    assert.deepEqual(validate(entry.schema, { ...entry.sample, reason: null }), []);
  });

  it('accepts null tiers and a first-time leaderboard entry', () => {
    const tier = catalogueEntryOf('member.tier_changed');
    assert.deepEqual(validate(tier.schema, { ...tier.sample, previous_tier: null }), []);
    const position = catalogueEntryOf('leaderboard.position_changed');
    assert.deepEqual(
      validate(position.schema, { ...position.sample, previous_position: null }),
      [],
    );
  });

  it('caps period standings at ten', () => {
    const ended = catalogueEntryOf('leaderboard.period_ended');
    const standings = Array.from({ length: 11 }, (_, i) => ({
      position: i + 1,
      member_id: `mem_${i}`,
      points: 100 - i,
    }));
    assert.deepEqual(
      validate(ended.schema, { ...ended.sample, standings: standings.slice(0, 10) }),
      [],
    );
    assert.notDeepEqual(validate(ended.schema, { ...ended.sample, standings }), []);
  });

  it('recognises its own type names and nothing else', () => {
    assert.equal(isWebhookEventType('points.awarded'), true);
    assert.equal(isWebhookEventType('points.Awarded'), false);
    assert.equal(isWebhookEventType('toString'), false);
  });
});

describe('the opt-in types', () => {
  const entries = optInCatalogue.flatMap((group) => group.entries);

  it('sit in their own group, outside the docs catalogue, and are subscribable', () => {
    assert.deepEqual(
      optInCatalogue.map((group) => group.name),
      ['Audit events'],
    );
    for (const entry of entries) {
      assert.equal(isWebhookEventType(entry.type), false, entry.type);
      assert.equal(isSubscribableEventType(entry.type), true, entry.type);
      assert.deepEqual(unknownKeywords(entry.schema), []);
      assert.deepEqual(validate(entry.schema, entry.sample), []);
      assert.notDeepEqual(validate(entry.schema, { ...entry.sample, extra: 1 }), []);
    }
    const checkpoint = entries.find((e) => e.type === 'audit.checkpoint')!;
    assert.notDeepEqual(validate(checkpoint.schema, { ...checkpoint.sample, root_hash: 'AB' }), []);
  });

  it("audit.checkpoint's sample is a real checkpoint note whose root is its root_hash", () => {
    const sample = entries.find((e) => e.type === 'audit.checkpoint')!.sample as {
      note: string;
      root_hash: string;
      size: number;
      origin: string;
    };
    const text = sample.note.slice(0, sample.note.indexOf('\n\n') + 1);
    const [origin, size, root] = text.split('\n');
    assert.equal(origin, sample.origin);
    assert.equal(Number(size), sample.size);
    assert.equal(Buffer.from(root!, 'base64').toString('hex'), sample.root_hash);
    assert.match(sample.note, new RegExp(`\n\u2014 ${sample.origin} [A-Za-z0-9+/]{91}=\n$`));
  });
});
