import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { streams } from '../../../application/incentives.ts';
import {
  award,
  createMember,
  createProgram,
  createReward,
  expectStatus,
  pointsEventsOf,
  settle,
  startTestApp,
  type Api,
  type LedgerRow,
  type MemberView,
  type Movement,
  type Page,
  type Redemption,
  type RewardView,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';

describe('HTTP API under concurrent requests', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let api: Api;
  let programId: string;
  const p = (path: string) => `/v1/programs/${programId}${path}`;

  before(async () => {
    app = await startTestApp();
    api = app.api;
    programId = (await createProgram(api)).id;
  });
  after(async () => {
    await app?.stop();
  });

  describe('100 parallel awards of 7 points to one member', () => {
    it('loses none: the balance is 700 and the ledger has 100 rows', async () => {
      const member = await createMember(api, programId);
      const responses = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          api.post<Movement>(p(`/members/${member.id}/points/award`), {
            points: 7,
            reason: `parallel award ${i}`,
          }),
        ),
      );
      assert.deepEqual(
        responses.map((r) => r.status),
        Array.from({ length: 100 }, () => 201),
      );
      const balances = responses.map((r) => r.body.new_balance).sort((a, b) => a - b);
      assert.deepEqual(
        balances,
        Array.from({ length: 100 }, (_, i) => 7 * (i + 1)),
        'every award saw the balance its predecessor left',
      );
      assert.equal(new Set(responses.map((r) => r.body.transaction_id)).size, 100);

      await settle(app.runtime);
      const read = expectStatus(await api.get<MemberView>(p(`/members/${member.id}`)), 200).body;
      assert.equal(read.balance, 700);
      assert.equal(read.lifetime_points, 700);
      const ledger = expectStatus(
        await api.get<Page<LedgerRow>>(p(`/members/${member.id}/transactions?limit=200`)),
        200,
      ).body;
      assert.equal(ledger.data.length, 100);
      assert.equal(new Set(ledger.data.map((row) => row.transaction_id)).size, 100);
      assert.equal(
        ledger.data.every((row) => row.kind === 'awarded' && row.points === 7),
        true,
      );
      assert.equal((await pointsEventsOf(app.runtime, programId, member.id)).length, 100);
    });
  });

  describe('50 members redeeming a reward with 10 in stock at once', () => {
    it('hands out exactly 10 and leaves the 40 losers untouched', async () => {
      const members = await Promise.all(
        Array.from({ length: 50 }, () => createMember(api, programId)),
      );
      await Promise.all(members.map((m) => award(api, programId, m.id, 1000)));
      const reward = await createReward(api, programId, {
        name: 'Limited edition',
        points_cost: 100,
        stock: 10,
        kind: 'physical',
      });

      const responses = await Promise.all(
        members.map((m) =>
          api.post<Redemption>(p(`/members/${m.id}/redemptions`), { reward_id: reward.id }),
        ),
      );
      const winners = members.filter((_, i) => responses[i]!.status === 201);
      const losers = members.filter((_, i) => responses[i]!.status !== 201);
      assert.equal(winners.length, 10, 'exactly the stock is handed out');
      assert.equal(losers.length, 40);
      for (const [i, response] of responses.entries()) {
        if (response.status === 201) {
          assert.equal(response.body.new_balance, 900);
          continue;
        }
        assert.equal(response.status, 422, `member ${i}: ${response.text}`);
        assert.equal(response.body.error?.code, 'out_of_stock');
      }

      await settle(app.runtime);
      const stock = expectStatus(await api.get<RewardView>(p(`/rewards/${reward.id}`)), 200).body;
      assert.equal(stock.stock, 0);
      const rewardEvents = await app.runtime.store.readStream(streams.reward(programId, reward.id));
      assert.equal(rewardEvents.filter((e) => e.type === 'StockReserved').length, 10);
      assert.equal(rewardEvents.filter((e) => e.type === 'StockReleased').length, 0);

      for (const loser of losers) {
        const read = expectStatus(await api.get<MemberView>(p(`/members/${loser.id}`)), 200).body;
        assert.equal(read.balance, 1000, `loser ${loser.id} keeps the balance`);
        const ledger = expectStatus(
          await api.get<Page<LedgerRow>>(p(`/members/${loser.id}/transactions`)),
          200,
        ).body;
        assert.deepEqual(
          ledger.data.map((row) => row.kind),
          ['awarded'],
        );
        assert.deepEqual(
          (await pointsEventsOf(app.runtime, programId, loser.id)).map((e) => e.type),
          ['PointsAwarded'],
          `no points event for loser ${loser.id}`,
        );
      }
      for (const winner of winners) {
        const read = expectStatus(await api.get<MemberView>(p(`/members/${winner.id}`)), 200).body;
        assert.equal(read.balance, 900);
        assert.deepEqual(
          (await pointsEventsOf(app.runtime, programId, winner.id)).map((e) => e.type),
          ['PointsAwarded', 'PointsDeducted', 'RewardRedeemed'],
        );
      }
    });
  });

  describe('Idempotency-Key', () => {
    it('runs 20 parallel identical requests once and answers all with the same transaction', async () => {
      const member = await createMember(api, programId);
      const path = p(`/members/${member.id}/points/award`);
      const headers = { 'idempotency-key': `bonus-${randomBytes(8).toString('hex')}` };
      const body = { points: 25, reason: 'Signup bonus', reference: 'signup' };
      const responses = await Promise.all(
        Array.from({ length: 20 }, () => api.post<Movement>(path, body, { headers })),
      );
      assert.deepEqual(
        responses.map((r) => r.status),
        Array.from({ length: 20 }, () => 201),
        responses.map((r) => r.text).join('\n'),
      );
      const ids = new Set(responses.map((r) => r.body.transaction_id));
      assert.equal(ids.size, 1, 'one transaction id for all 20');
      assert.equal(
        responses.filter((r) => r.headers.get('idempotent-replayed') === 'true').length,
        19,
      );
      assert.equal(
        responses.every((r) => r.body.new_balance === 25 && r.body.points === 25),
        true,
      );

      await settle(app.runtime);
      const ledger = expectStatus(
        await api.get<Page<LedgerRow>>(p(`/members/${member.id}/transactions`)),
        200,
      ).body;
      assert.deepEqual(
        ledger.data.map((row) => row.transaction_id),
        [...ids],
      );
      assert.equal((await pointsEventsOf(app.runtime, programId, member.id)).length, 1);
      const read = expectStatus(await api.get<MemberView>(p(`/members/${member.id}`)), 200).body;
      assert.equal(read.balance, 25);

      const conflict = await api.post(path, { ...body, points: 26 }, { headers });
      assert.equal(conflict.status, 409, conflict.text);
      assert.equal(conflict.body.error?.code, 'idempotency_conflict');
      assert.equal(conflict.body.error?.field, 'Idempotency-Key');
      const otherPath = await api.post(p(`/members/${member.id}/points/deduct`), body, { headers });
      assert.equal(otherPath.status, 409, 'the key is bound to the path too');
      assert.equal(otherPath.body.error?.code, 'idempotency_conflict');
      await settle(app.runtime);
      assert.equal((await pointsEventsOf(app.runtime, programId, member.id)).length, 1);
    });

    it('scopes keys to the program: the same key from another of its API keys gets the same answer', async () => {
      const member = await createMember(api, programId);
      const issued = expectStatus(await api.post<{ key: string }>(p('/api-keys'), {}), 201).body;
      const path = p(`/members/${member.id}/points/award`);
      const headers = { 'idempotency-key': `shared-${randomBytes(8).toString('hex')}` };
      const body = { points: 5, reason: 'scoped' };
      const root = expectStatus(await api.post<Movement>(path, body, { headers }), 201).body;
      const scoped = expectStatus(
        await api.post<Movement>(path, body, { headers, key: issued.key }),
        201,
      ).body;
      assert.equal(scoped.transaction_id, root.transaction_id);
      assert.equal(scoped.new_balance, 5);
    });
  });
});
