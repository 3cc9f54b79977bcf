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
  type Movement,
  type Redemption,
  type Standing,
  type TestApp,
  deliveriesSettled,
  replayDifferences,
} from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';
import { startReceiver, type Receiver } from '../../support/receiver.ts';

type Reversal = {
  transaction_id: string;
  reversal_of: string;
  reversed: 'award' | 'deduction';
  member_id: string;
  points: number;
  new_balance: number;
  lifetime_points: number;
};
type Webhook = { type: string; data: Record<string, unknown> };
type Period = {
  period_id: string;
  standings: Standing[];
  corrections: { transaction_id: string; reversal_of: string; member_id: string; points: number }[];
};

/** Wednesday 5 March 2025: the month runs from 1 March to 1 April (UTC). */
const t0 = new Date('2025-03-05T12:00:00.000Z');

describe('reversing a transaction', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let receiver: Receiver;
  let programId: string;
  let board: LeaderboardView;
  const p = (path: string) => `/v1/programs/${programId}${path}`;
  const webhooks = () => receiver.at('/all').map((w) => JSON.parse(w.body) as Webhook);
  const reverse = (transactionId: string, body: Record<string, unknown> = {}) =>
    app.api.post<Reversal>(p(`/transactions/${transactionId}/reverse`), {
      reason: 'Entered in error',
      ...body,
    });
  const member = async (id: string) => {
    await settle(app.runtime);
    return expectStatus(await app.api.get<MemberView>(p(`/members/${id}`)), 200).body;
  };
  const standings = async () => {
    await settle(app.runtime);
    return expectStatus(
      await app.api.get<{ standings: Standing[] }>(p(`/leaderboards/${board.id}/standings`)),
      200,
    ).body.standings;
  };
  const delivered = () => deliveriesSettled(app);

  before(async () => {
    receiver = await startReceiver();
    app = await startTestApp({ now: t0 });
    programId = (
      await createProgram(app.api, {
        tiers: [
          { name: 'Bronze', min_points: 0 },
          { name: 'Gold', min_points: 1000 },
          { name: 'Platinum', min_points: 20000 },
        ],
      })
    ).id;
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

  it('undoes a mistaken award: balance, lifetime points, tier and leaderboard score', async () => {
    const alice = (await createMember(app.api, programId)).id;
    const bob = (await createMember(app.api, programId)).id;
    await award(app.api, programId, bob, 300);
    const mistake = await award(app.api, programId, alice, 20_000);
    assert.equal((await member(alice)).tier, 'Platinum');
    assert.equal((await standings())[0]?.member_id, alice);

    const reversal = expectStatus(await reverse(mistake.transaction_id), 201).body;
    assert.equal(reversal.reversal_of, mistake.transaction_id);
    assert.equal(reversal.reversed, 'award');
    assert.equal(reversal.points, 20_000);
    assert.equal(reversal.new_balance, 0);
    assert.equal(reversal.lifetime_points, 0);

    const after = await member(alice);
    assert.equal(after.balance, 0);
    assert.equal(after.lifetime_points, 0);
    assert.equal(after.tier, 'Bronze');
    assert.deepEqual(
      (await standings()).map((s) => [s.member_id, s.points, s.position]),
      [
        [bob, 300, 1],
        [alice, 0, 2],
      ],
    );

    await delivered();
    const deducted = webhooks().find(
      (w) => w.type === 'points.deducted' && w.data.reversal_of === mistake.transaction_id,
    );
    assert.ok(deducted, 'a points.deducted webhook names the reversed award');
    assert.equal(deducted.data.transaction_id, reversal.transaction_id);
    assert.equal(deducted.data.points, 20_000);
    assert.equal(deducted.data.new_balance, 0);
    const tierChange = webhooks().find(
      (w) =>
        w.type === 'member.tier_changed' &&
        w.data.member_id === alice &&
        w.data.reason === 'Award reversed',
    );
    assert.deepEqual(tierChange?.data, {
      member_id: alice,
      previous_tier: 'Platinum',
      new_tier: 'Bronze',
      reason: 'Award reversed',
    });
    const moved = webhooks().filter(
      (w) => w.type === 'leaderboard.position_changed' && w.data.new_position === 1,
    );
    assert.ok(
      moved.some((w) => w.data.member_id === bob && w.data.previous_position === 2),
      'bob is told he moved up to #1',
    );
  });

  it('reverses a transaction at most once', async () => {
    const carol = (await createMember(app.api, programId)).id;
    const awarded = await award(app.api, programId, carol, 50);
    expectStatus(await reverse(awarded.transaction_id), 201);
    const again = expectStatus(await reverse(awarded.transaction_id), 409);
    assert.equal(again.body.error?.code, 'already_reversed');
    assert.equal(again.body.error?.field, 'transaction_id');
    assert.equal((await member(carol)).balance, 0);
  });

  it('refuses a reversal that would make the balance negative, unless allowed', async () => {
    const dave = (await createMember(app.api, programId)).id;
    const awarded = await award(app.api, programId, dave, 100);
    const spent = expectStatus(
      await app.api.post<Movement>(p(`/members/${dave}/points/deduct`), {
        points: 60,
        reason: 'Shop purchase',
      }),
      201,
    ).body;
    const refused = expectStatus(await reverse(awarded.transaction_id), 422);
    assert.equal(refused.body.error?.code, 'insufficient_points');
    assert.equal(refused.body.error?.field, 'allow_negative');
    assert.equal((await member(dave)).balance, 40);

    const allowed = expectStatus(
      await reverse(awarded.transaction_id, { allow_negative: true }),
      201,
    ).body;
    assert.equal(allowed.new_balance, -60);
    assert.equal((await member(dave)).balance, -60);

    // Undoing the deduction gives its points back: a points.awarded naming it.
    const undone = expectStatus(await reverse(spent.transaction_id), 201).body;
    assert.equal(undone.reversed, 'deduction');
    assert.equal(undone.new_balance, 0);
    await delivered();
    const awardedBack = webhooks().find(
      (w) => w.type === 'points.awarded' && w.data.reversal_of === spent.transaction_id,
    );
    assert.equal(awardedBack?.data.points, 60);
    assert.equal(awardedBack?.data.new_balance, 0);
  });

  it('answers 404, 400 and 422 for transactions that cannot be reversed', async () => {
    const missing = expectStatus(await reverse('txn_doesnotexist0000000000'), 404);
    assert.equal(missing.body.error?.code, 'transaction_not_found');
    assert.equal(missing.body.error?.field, 'transaction_id');
    const malformed = expectStatus(await reverse('not-an-id'), 400);
    assert.equal(malformed.body.error?.field, 'transaction_id');
    const noReason = expectStatus(
      await app.api.post(p('/transactions/txn_doesnotexist0000000000/reverse'), {}),
      400,
    );
    assert.equal(noReason.body.error?.field, 'reason');

    const erin = (await createMember(app.api, programId)).id;
    await award(app.api, programId, erin, 500);
    const reward = await createReward(app.api, programId, { points_cost: 200, kind: 'digital' });
    const redeemed = expectStatus(
      await app.api.post<Redemption>(p(`/members/${erin}/redemptions`), { reward_id: reward.id }),
      201,
    ).body;
    const redemption = expectStatus(await reverse(redeemed.transaction_id), 422);
    assert.equal(redemption.body.error?.code, 'not_reversible');
    assert.match(redemption.body.error?.message ?? '', /cancel the order/);
  });

  it('corrects the standings of an ended period that counted the award', async () => {
    const frank = (await createMember(app.api, programId)).id;
    const grace = (await createMember(app.api, programId)).id;
    const big = await award(app.api, programId, frank, 9_000);
    await award(app.api, programId, grace, 4_000);
    await settle(app.runtime);
    const closed = expectStatus(
      await app.api.post<{ ended: { period_id: string; standings: Standing[] } }>(
        p(`/leaderboards/${board.id}/close-period`),
        {},
      ),
      200,
    ).body;
    const periodId = closed.ended.period_id;
    assert.equal(closed.ended.standings[0]?.member_id, frank);

    app.clock.advance(60 * 60_000);
    const reversal = expectStatus(await reverse(big.transaction_id), 201).body;
    await settle(app.runtime);

    const periods = expectStatus(
      await app.api.get<{ data: Period[] }>(p(`/leaderboards/${board.id}/periods`)),
      200,
    ).body.data;
    const ended = periods.find((period) => period.period_id === periodId)!;
    // The published top ten stays as it was sent; the correction is listed beside it.
    assert.equal(ended.standings[0]?.member_id, frank);
    assert.deepEqual(
      ended.corrections.map((c) => [c.transaction_id, c.reversal_of, c.member_id, c.points]),
      [[reversal.transaction_id, big.transaction_id, frank, -9_000]],
    );
    const corrected = expectStatus(
      await app.api.get<{ data: Standing[] }>(
        p(`/leaderboards/${board.id}/periods/${periodId}/standings?limit=100`),
      ),
      200,
    ).body.data;
    const place = (id: string) => corrected.find((s) => s.member_id === id);
    assert.equal(place(frank)?.points, 0);
    assert.equal(place(grace)?.position, 1);
    assert.ok(place(frank)!.position > place(grace)!.position);
    assert.deepEqual(
      corrected.map((s) => s.position),
      [...corrected.map((s) => s.position)].sort((a, b) => a - b),
      'the corrected standings are ranked again',
    );
    // The open period never counted the award: it is left alone.
    assert.equal(
      (await standings()).find((s) => s.member_id === frank),
      undefined,
    );
  });

  it('replays to the live read models with zero differences', async () => {
    const { differences, total } = await replayDifferences(app);
    assert.deepEqual(differences, []);
    assert.equal(total, 0);
  });
});
