import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  award,
  createMember,
  createProgram,
  createReward,
  expectStatus,
  settle,
  startTestApp,
  type OrderView,
  type Page,
  type Redemption,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';

describe('order listings', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let programId: string;
  let ann: string;
  let bob: string;
  /** In the order they were placed: ann's mug, bob's mug, ann's gift card, ann's second mug. */
  let placed: Redemption[];

  const get = (path: string) => app.api.get<Page<OrderView>>(`/v1/programs/${programId}${path}`);
  const idsOf = async (path: string) =>
    expectStatus(await get(path), 200).body.data.map((o) => o.id);

  before(async () => {
    app = await startTestApp();
    const { api } = app;
    programId = (await createProgram(api)).id;
    ann = (await createMember(api, programId)).id;
    bob = (await createMember(api, programId)).id;
    await award(api, programId, ann, 1_000);
    await award(api, programId, bob, 1_000);
    const mug = await createReward(api, programId, { points_cost: 100, kind: 'physical' });
    const card = await createReward(api, programId, { points_cost: 200, kind: 'digital' });
    const redeem = async (member: string, reward: string) =>
      expectStatus(
        await api.post<Redemption>(`/v1/programs/${programId}/members/${member}/redemptions`, {
          reward_id: reward,
        }),
        201,
      ).body;
    placed = [];
    for (const [member, reward] of [
      [ann, mug.id],
      [bob, mug.id],
      [ann, card.id],
      [ann, mug.id],
    ] as const)
      placed.push(await redeem(member, reward));
    expectStatus(
      await api.post(`/v1/programs/${programId}/orders/${placed[0]!.id}/ship`, {
        carrier: 'UPS',
        tracking_number: '1Z1',
      }),
      200,
    );
    expectStatus(
      await api.post(`/v1/programs/${programId}/orders/${placed[3]!.id}/cancel`, {}),
      200,
    );
    await settle(app.runtime);
  });

  after(async () => {
    await app?.stop();
  });

  describe('GET …/orders', () => {
    it("lists the program's orders oldest first, a page at a time", async () => {
      const first = expectStatus(await get('/orders?limit=3'), 200).body;
      assert.deepEqual(
        first.data.map((o) => o.id),
        placed.slice(0, 3).map((o) => o.id),
      );
      assert.match(first.next_cursor ?? '', /^\d+$/);
      const second = expectStatus(
        await get(`/orders?limit=3&cursor=${first.next_cursor}`),
        200,
      ).body;
      assert.deepEqual(
        second.data.map((o) => o.id),
        [placed[3]!.id],
      );
      assert.equal(second.next_cursor, null);
      assert.deepEqual(Object.keys(second.data[0]!), [
        'id',
        'member_id',
        'reward_id',
        'reward_name',
        'kind',
        'points_spent',
        'status',
        'carrier',
        'tracking_number',
        'history',
        'created_at',
        'updated_at',
      ]);
    });

    it('is a fulfilment queue by status', async () => {
      assert.deepEqual(await idsOf('/orders?status=redeemed'), [placed[1]!.id, placed[2]!.id]);
      assert.deepEqual(await idsOf('/orders?status=shipped'), [placed[0]!.id]);
      assert.deepEqual(await idsOf('/orders?status=cancelled'), [placed[3]!.id]);
      assert.deepEqual(await idsOf('/orders?status=delivered'), []);
    });

    it('filters by member, with the status too', async () => {
      assert.deepEqual(await idsOf(`/orders?member_id=${bob}`), [placed[1]!.id]);
      assert.deepEqual(await idsOf(`/orders?member_id=${ann}&status=redeemed`), [placed[2]!.id]);
      // A member the program does not have is a filter that matches nothing, as ?email= is.
      assert.deepEqual(await idsOf('/orders?member_id=mem_00000000000000000000'), []);
    });

    it('shows a new order at once with ?after_position', async () => {
      const order = expectStatus(
        await app.api.post<Redemption>(`/v1/programs/${programId}/members/${bob}/redemptions`, {
          reward_id: placed[2]!.reward_id,
        }),
        201,
      ).body;
      const page = expectStatus(
        await get(`/orders?status=redeemed&after_position=${order.position}`),
        200,
      ).body;
      assert.equal(page.data.at(-1)?.id, order.id);
      placed.push(order);
    });

    for (const [query, field] of [
      ['status=lost', 'status'],
      ['status=', 'status'],
      ['member_id=bob', 'member_id'],
      ['member_id=rwd_00000000000000000000', 'member_id'],
      ['cursor=abc', 'cursor'],
      ['cursor=-1', 'cursor'],
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['limit=ten', 'limit'],
      ['sort=desc', 'sort'],
      ['after_position=nope', 'after_position'],
    ] as const) {
      it(`answers 400 naming ${field} for ?${query}`, async () => {
        const response = await get(`/orders?${query}`);
        assert.equal(response.status, 400, response.text);
        assert.equal(response.body.error?.code, 'validation_error');
        assert.equal(response.body.error?.field, field);
      });
    }
  });

  describe('GET …/members/{member_id}/orders', () => {
    it("lists only the member's orders, oldest first, by status too", async () => {
      assert.deepEqual(await idsOf(`/members/${ann}/orders`), [
        placed[0]!.id,
        placed[2]!.id,
        placed[3]!.id,
      ]);
      assert.deepEqual(await idsOf(`/members/${ann}/orders?status=cancelled`), [placed[3]!.id]);
      const page = expectStatus(await get(`/members/${ann}/orders?limit=2`), 200).body;
      assert.deepEqual(await idsOf(`/members/${ann}/orders?cursor=${page.next_cursor}`), [
        placed[3]!.id,
      ]);
    });

    it('answers 404 member_not_found for a member the program does not have', async () => {
      const response = await get('/members/mem_00000000000000000000/orders');
      assert.equal(response.status, 404);
      assert.equal(response.body.error?.code, 'member_not_found');
      assert.equal(response.body.error?.field, 'member_id');
    });

    for (const [path, field] of [
      ['/members/bob/orders', 'member_id'],
      [`/members/{ann}/orders?status=open`, 'status'],
      [`/members/{ann}/orders?member_id={ann}`, 'member_id'],
      [`/members/{ann}/orders?limit=-5`, 'limit'],
    ] as const) {
      it(`answers 400 naming ${field} for ${path}`, async () => {
        const response = await get(path.replaceAll('{ann}', ann));
        assert.equal(response.status, 400, response.text);
        assert.equal(response.body.error?.code, 'validation_error');
        assert.equal(response.body.error?.field, field);
      });
    }
  });
});
