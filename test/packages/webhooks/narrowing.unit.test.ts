import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { anyEntryOf } from '../../../delivery/catalogue.ts';
import {
  webhookEventTypes,
  type PointsAwardedData,
  type WebhookEvent,
  type WebhookEventOf,
  type WebhookEventType,
} from '../../../packages/webhooks/src/index.ts';

// Compile-time checks: `npm run typecheck` fails when the generated types go loose (a `data` of
// `any` or `unknown`, a `type` of `string`, an opt-in type missing). The @ts-expect-error lines
// fail the compile the moment the error they expect stops happening.
type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const same = <A, B>(_proof: Equal<A, B>): void => {};
same<WebhookEventType, (typeof webhookEventTypes)[number]>(true);
same<WebhookEventOf<'points.awarded'>['data'], PointsAwardedData>(true);
same<WebhookEventOf<'audit.checkpoint'>['data']['root_hash'], string>(true);
// @ts-expect-error `type` is a union of the catalogue's names, not any string.
same<WebhookEventType, string>(true);

/** One line per event, reading a field only its own type has: total over every type. */
const summary = (event: WebhookEvent): string => {
  switch (event.type) {
    case 'points.awarded':
    case 'points.deducted':
    case 'points.expired':
      // @ts-expect-error points events have no tier.
      void event.data.new_tier;
      return `${event.data.member_id} ${event.data.kind} ${event.data.points} -> ${event.data.new_balance}`;
    case 'member.created':
      return `${event.data.member_id} ${event.data.email}`;
    case 'member.updated':
      return `${event.data.member_id} ${Object.keys(event.data.changes).join(',')}`;
    case 'member.tier_changed':
      return `${event.data.member_id} ${event.data.previous_tier} -> ${event.data.new_tier}`;
    case 'member.deactivated':
      return `${event.data.member_id} ${event.data.reason ?? 'no reason'}`;
    case 'member.reactivated':
      return event.data.member_id;
    case 'reward.redeemed':
      return `${event.data.order_id} ${event.data.reward_name} ${event.data.points_spent}`;
    case 'order.shipped':
      return `${event.data.order_id} ${event.data.carrier}`;
    case 'order.delivered':
      return `${event.data.order_id} ${event.data.delivered_at}`;
    case 'order.cancelled':
      return `${event.data.order_id} ${event.data.points_refunded}`;
    case 'leaderboard.position_changed':
      return `${event.data.member_id} ${event.data.previous_position ?? '-'} -> ${event.data.new_position}`;
    case 'leaderboard.period_ended':
      return `${event.data.leaderboard_id} ${event.data.standings.map((s) => s.member_id).join(',')}`;
    case 'audit.checkpoint':
      // @ts-expect-error a checkpoint's tree size is `size`, not `tree_size`.
      void event.data.tree_size;
      return `${event.data.origin} ${event.data.size}`;
  }
};

describe('narrowing a webhook on its type', () => {
  it('reads each type’s own fields from the catalogue’s sample of it', () => {
    for (const type of webhookEventTypes) {
      const event = {
        id: 'evt_sample',
        type,
        created_at: '2024-06-15T14:30:00Z',
        data: anyEntryOf(type).sample,
      } as WebhookEvent;
      assert.doesNotMatch(summary(event), /undefined/, type);
    }
  });
});
