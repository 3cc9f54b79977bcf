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
  type LeaderboardView,
  type MemberView,
  type Redemption,
  type Standing,
  type TestApp,
  deliveriesSettled,
  replayDifferences,
} from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';
import { startReceiver, type Receiver } from '../../support/receiver.ts';

type Webhook = { type: string; data: Record<string, unknown> };
type Member = MemberView & { tier_locked_until: string | null };

const t0 = new Date('2025-03-05T12:00:00.000Z');
const dayMs = 86_400_000;

describe('tier overrides and member deactivation', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let receiver: Receiver;
  let programId: string;
  let board: LeaderboardView;
  const p = (path: string) => `/v1/programs/${programId}${path}`;
  const webhooks = () => receiver.at('/all').map((w) => JSON.parse(w.body) as Webhook);
  const member = async (id: string) => {
    await settle(app.runtime);
    return expectStatus(await app.api.get<Member>(p(`/members/${id}`)), 200).body;
  };
  const patch = (id: string, body: Record<string, unknown>) =>
    app.api.patch<Member>(p(`/members/${id}`), body);
  const standings = async () => {
    await settle(app.runtime);
    return expectStatus(
      await app.api.get<{ standings: Standing[] }>(p(`/leaderboards/${board.id}/standings`)),
      200,
    ).body.standings;
  };
  const delivered = () => deliveriesSettled(app);
  const later = (days: number) => new Date(app.clock.now().getTime() + days * dayMs).toISOString();

  before(async () => {
    receiver = await startReceiver();
    app = await startTestApp({ now: t0 });
    programId = (await createProgram(app.api, { points_expiry_days: 30 })).id;
    board = expectStatus(
      await app.api.post<LeaderboardView>(p('/leaderboards'), {
        name: 'March',
        period: 'monthly',
      }),
      201,
    ).body;
    expectStatus(
      await app.api.post(p('/webhook-endpoints'), { url: `${receiver.origin}/all`, events: ['*'] }),
      201,
    );
    await settle(app.runtime);
  });

  after(async () => {
    await app?.stop();
    await receiver?.close();
  });

  describe('a manual tier override', () => {
    it('moves the member and holds the tier against the rules until the hold lapses', async () => {
      const id = (await createMember(app.api, programId)).id;
      await award(app.api, programId, id, 100);
      assert.equal((await member(id)).tier, 'Bronze');
      const until = later(7);
      const patched = expectStatus(
        await patch(id, { tier: 'Gold', tier_locked_until: until }),
        200,
      );
      assert.equal(patched.body.tier, 'Gold');
      assert.equal(patched.body.tier_locked_until, until);
      assert.equal((await member(id)).tier_locked_until, until);

      // The rules would put 110 points in Bronze; the hold keeps Gold.
      await award(app.api, programId, id, 10);
      assert.equal((await member(id)).tier, 'Gold');

      app.clock.advance(8 * dayMs);
      const report = await app.runtime.jobs.tiers();
      assert.equal(report.changed, 1);
      const lapsed = await member(id);
      assert.equal(lapsed.tier, 'Bronze');
      assert.equal(lapsed.tier_locked_until, null);
      assert.equal((await app.runtime.jobs.tiers()).changed, 0, 'a second run has nothing to do');

      await delivered();
      const changes = webhooks()
        .filter((w) => w.type === 'member.tier_changed' && w.data.member_id === id)
        .map((w) => [w.data.previous_tier, w.data.new_tier, w.data.reason]);
      assert.deepEqual(changes, [
        ['Bronze', 'Gold', 'Manual override'],
        ['Gold', 'Bronze', 'Tier hold ended'],
      ]);
    });

    it('applies the rules at once when the hold is lifted', async () => {
      const id = (await createMember(app.api, programId)).id;
      await award(app.api, programId, id, 600);
      assert.equal((await member(id)).tier, 'Silver');
      expectStatus(await patch(id, { tier: 'Bronze', tier_locked_until: later(30) }), 200);
      assert.equal((await member(id)).tier, 'Bronze');
      const lifted = expectStatus(await patch(id, { tier_locked_until: null }), 200);
      assert.equal(lifted.body.tier, 'Silver');
      assert.equal((await member(id)).tier_locked_until, null);
    });

    it('refuses a tier the program does not have, and a hold in the past or malformed', async () => {
      const id = (await createMember(app.api, programId)).id;
      const unknown = expectStatus(await patch(id, { tier: 'Diamond' }), 400);
      assert.equal(unknown.body.error?.code, 'invalid_tier');
      assert.equal(unknown.body.error?.field, 'tier');
      const past = expectStatus(
        await patch(id, { tier: 'Gold', tier_locked_until: '2020-01-01T00:00:00Z' }),
        400,
      );
      assert.equal(past.body.error?.field, 'tier_locked_until');
      for (const bad of ['tomorrow', '2027-13-01T00:00:00Z', 1, true]) {
        const refused = expectStatus(await patch(id, { tier_locked_until: bad }), 400);
        assert.equal(refused.body.error?.field, 'tier_locked_until', String(bad));
      }
      assert.equal((await member(id)).tier, 'Bronze', 'nothing was half-written');
    });
  });

  describe('deactivation', () => {
    let ann: string;
    let ben: string;
    let cat: string;
    let orderId: string;

    before(async () => {
      ann = (await createMember(app.api, programId)).id;
      ben = (await createMember(app.api, programId)).id;
      cat = (await createMember(app.api, programId)).id;
      await award(app.api, programId, ann, 3_000);
      await award(app.api, programId, ben, 2_000);
      await award(app.api, programId, cat, 1_500);
      const reward = await createReward(app.api, programId, { points_cost: 500, kind: 'physical' });
      orderId = expectStatus(
        await app.api.post<Redemption>(p(`/members/${ann}/redemptions`), { reward_id: reward.id }),
        201,
      ).body.id;
      await delivered();
    });

    it('takes the member off the open leaderboard, telling those who move up', async () => {
      const top = (await standings()).slice(0, 3).map((s) => s.member_id);
      assert.deepEqual(top, [ann, ben, cat]);
      const seen = webhooks().length;
      expectStatus(await app.api.post(p(`/members/${ann}/deactivate`), {}), 200);
      const after = await standings();
      assert.equal(
        after.find((s) => s.member_id === ann),
        undefined,
      );
      assert.deepEqual(
        after.slice(0, 2).map((s) => [s.member_id, s.position]),
        [
          [ben, 1],
          [cat, 2],
        ],
      );
      await delivered();
      const moves = webhooks()
        .slice(seen)
        .filter((w) => w.type === 'leaderboard.position_changed')
        .map((w) => [w.data.member_id, w.data.previous_position, w.data.new_position]);
      assert.deepEqual(moves.slice(0, 2), [
        [ben, 2, 1],
        [cat, 3, 2],
      ]);
    });

    it('freezes the points: no expiry, and a refund waits for reactivation', async () => {
      const balance = (await member(ann)).balance;
      assert.equal(balance, 2_500);
      expectStatus(
        await app.api.post(p(`/orders/${orderId}/cancel`), { reason: 'Out of stock' }),
        200,
      );
      assert.equal((await member(ann)).balance, 2_500, 'the refund waits');

      app.clock.advance(31 * dayMs);
      await app.runtime.jobs.expiry({ atLocalHour: null });
      assert.equal((await member(ann)).balance, 2_500, 'nothing expired');
      const award = await app.api.post(p(`/members/${ann}/points/award`), {
        points: 1,
        reason: 'x',
      });
      assert.equal(expectStatus(award, 422).body.error?.code, 'member_inactive');
    });

    it('reactivates: the refund is paid and the member is back on the board', async () => {
      // The clock moved past March: a new period is open, and ann's March score stays in March.
      const reactivated = expectStatus(
        await app.api.post<{ status: string }>(p(`/members/${ann}/reactivate`), {}),
        200,
      );
      assert.equal(reactivated.body.status, 'active');
      const back = await member(ann);
      assert.equal(back.status, 'active');
      assert.equal(back.balance, 3_000, 'the refund that waited was paid');
      expectStatus(await app.api.post(p(`/members/${ann}/reactivate`), {}), 200);
      assert.equal((await member(ann)).balance, 3_000, 'a second reactivation changes nothing');
    });

    it('gives a member reactivated in the same period their score back', async () => {
      const dan = (await createMember(app.api, programId)).id;
      await award(app.api, programId, dan, 50_000);
      assert.equal((await standings())[0]?.member_id, dan);
      expectStatus(await app.api.post(p(`/members/${dan}/deactivate`), {}), 200);
      assert.equal(
        (await standings()).find((s) => s.member_id === dan),
        undefined,
      );
      expectStatus(await app.api.post(p(`/members/${dan}/reactivate`), {}), 200);
      assert.deepEqual((await standings())[0], { position: 1, member_id: dan, points: 50_000 });
    });
  });

  it('replays to the live read models with zero differences', async () => {
    const { differences, total } = await replayDifferences(app);
    assert.deepEqual(differences, []);
    assert.equal(total, 0);
  });
});
