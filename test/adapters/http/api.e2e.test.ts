import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  apiClient,
  award,
  createMember,
  createProgram,
  createReward,
  expectStatus,
  settle,
  startTestApp,
  type Api,
  type ApiResponse,
  type LeaderboardView,
  type LedgerRow,
  type MemberView,
  type Movement,
  type OrderView,
  type Page,
  type Periods,
  type ProgramView,
  type Redemption,
  type RewardView,
  type Standings,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';
import { readModelsProjection, projectReadModels } from '../../../projections/readModels.ts';
import type { ReadModelTables } from '../../../projections/readModelTables.ts';
import { comparePositions, parsePosition } from '../../../domain/recordedEvent.ts';
import type { Kysely } from 'kysely';

const positionPattern = /^\d+\.\d+$/;
/** Wednesday noon UTC: inside one ISO week, well away from its edges. */
const startedAt = new Date('2025-03-05T12:00:00.000Z');
const unknownId = (prefix: string) => `${prefix}_${'0'.repeat(20)}`;

const assertError = (
  response: ApiResponse<unknown>,
  status: number,
  code: string,
  field?: string,
): void => {
  assert.equal(response.status, status, response.text);
  assert.equal(response.headers.get('content-type')?.startsWith('application/json'), true);
  assert.equal(response.body.error?.code, code, response.text);
  assert.equal(typeof response.body.error?.message, 'string');
  if (field !== undefined) assert.equal(response.body.error?.field, field, response.text);
};

describe('HTTP API end to end', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let api: Api;
  let programId: string;
  const p = (path: string) => `/v1/programs/${programId}${path}`;

  before(async () => {
    app = await startTestApp({ now: startedAt });
    api = app.api;
    programId = (await createProgram(api)).id;
  });
  after(async () => {
    await app?.stop();
  });

  describe('programs', () => {
    it('creates a program and reads it back', async () => {
      const created = expectStatus(
        await api.post<ProgramView & { position: string; created_at: string }>('/v1/programs', {
          name: 'Coffee Club',
          tiers: [
            { name: 'Bean', min_points: 0 },
            { name: 'Roast', min_points: 100 },
          ],
          tier_basis: 'balance',
          points_expiry_days: 90,
          timezone: 'Europe/Berlin',
          notification_email: 'owner@coffee.example',
        }),
        201,
      ).body;
      assert.match(created.id, /^prg_[a-z0-9]{20}$/);
      assert.match(created.position, positionPattern);
      assert.deepEqual(
        {
          name: created.name,
          tiers: created.tiers,
          tier_basis: created.tier_basis,
          points_expiry_days: created.points_expiry_days,
          timezone: created.timezone,
          notification_email: created.notification_email,
          created_at: created.created_at,
        },
        {
          name: 'Coffee Club',
          tiers: [
            { name: 'Bean', min_points: 0 },
            { name: 'Roast', min_points: 100 },
          ],
          tier_basis: 'balance',
          points_expiry_days: 90,
          timezone: 'Europe/Berlin',
          notification_email: 'owner@coffee.example',
          created_at: startedAt.toISOString(),
        },
      );
      const read = expectStatus(
        await api.get<ProgramView>(`/v1/programs/${created.id}?after_position=${created.position}`),
        200,
      ).body;
      assert.equal(read.id, created.id);
      assert.equal(read.name, 'Coffee Club');
      assert.equal(read.timezone, 'Europe/Berlin');
      assert.deepEqual(read.tiers, created.tiers);
    });

    it('applies defaults for the optional settings', async () => {
      const created = expectStatus(
        await api.post<ProgramView>('/v1/programs', {
          name: 'Defaults',
          notification_email: 'd@example.com',
        }),
        201,
      ).body;
      assert.deepEqual(created.tiers, []);
      assert.equal(created.tier_basis, 'lifetime');
      assert.equal(created.points_expiry_days, null);
      assert.equal(created.timezone, 'UTC');
    });

    it('updates a program', async () => {
      const target = await createProgram(api, { name: 'Before' });
      const updated = expectStatus(
        await api.patch<ProgramView & { position: string }>(`/v1/programs/${target.id}`, {
          name: 'After',
          points_expiry_days: 30,
        }),
        200,
      ).body;
      assert.equal(updated.name, 'After');
      assert.equal(updated.points_expiry_days, 30);
      assert.match(updated.position, positionPattern);
      const read = expectStatus(
        await api.get<ProgramView>(`/v1/programs/${target.id}?after_position=${updated.position}`),
        200,
      ).body;
      assert.equal(read.name, 'After');
      assert.equal(read.points_expiry_days, 30);
    });

    it('issues a program key that works on its own program', async () => {
      const issued = expectStatus(
        await api.post<{ id: string; key: string; program_id: string }>(p('/api-keys'), {
          label: 'backend',
        }),
        201,
      ).body;
      assert.match(issued.id, /^key_[a-z0-9]{20}$/);
      assert.equal(issued.key.startsWith(`${issued.id}.`), true);
      assert.equal(issued.program_id, programId);
      const scoped = apiClient(app.url, issued.key);
      const read = expectStatus(await scoped.get<ProgramView>(p('')), 200).body;
      assert.equal(read.id, programId);
      const member = await createMember(scoped, programId);
      assert.match(member.id, /^mem_/);
    });
  });

  describe('members', () => {
    it('registers a member in the lowest tier and reads it back', async () => {
      const created = expectStatus(
        await api.post<MemberView & { position: string }>(p('/members'), {
          email: 'Ada@Example.com',
          name: 'Ada Lovelace',
          external_id: 'crm-ada',
          attributes: { plan: 'pro', seats: 3, beta: true, note: null },
        }),
        201,
      ).body;
      assert.match(created.id, /^mem_[a-z0-9]{20}$/);
      assert.match(created.position, positionPattern);
      assert.equal(created.email, 'Ada@Example.com');
      assert.equal(created.name, 'Ada Lovelace');
      assert.equal(created.external_id, 'crm-ada');
      assert.deepEqual(created.attributes, { plan: 'pro', seats: 3, beta: true, note: null });
      assert.equal(created.tier, 'Bronze');
      assert.equal(created.balance, 0);
      assert.equal(created.lifetime_points, 0);
      assert.equal(created.status, 'active');

      const read = expectStatus(
        await api.get<MemberView>(p(`/members/${created.id}?after_position=${created.position}`)),
        200,
      ).body;
      assert.deepEqual(
        {
          id: read.id,
          email: read.email,
          name: read.name,
          external_id: read.external_id,
          attributes: read.attributes,
          tier: read.tier,
          balance: read.balance,
          lifetime_points: read.lifetime_points,
          status: read.status,
          last_activity_at: read.last_activity_at,
        },
        {
          id: created.id,
          email: 'Ada@Example.com',
          name: 'Ada Lovelace',
          external_id: 'crm-ada',
          attributes: { plan: 'pro', seats: 3, beta: true, note: null },
          tier: 'Bronze',
          balance: 0,
          lifetime_points: 0,
          status: 'active',
          last_activity_at: null,
        },
      );
    });

    it('lists members with filters and a cursor', async () => {
      const program = (await createProgram(api)).id;
      const a = await createMember(api, program, {
        email: 'first@list.example',
        external_id: 'x-1',
      });
      const b = await createMember(api, program, { email: 'second@list.example' });
      const c = await createMember(api, program, { external_id: 'x-3' });
      await award(api, program, c.id, 600);
      const last = await award(api, program, c.id, 1);
      const base = `/v1/programs/${program}/members`;

      const all = expectStatus(
        await api.get<Page<MemberView>>(`${base}?after_position=${last.position}`),
        200,
      ).body;
      assert.deepEqual(
        all.data.map((m) => m.id),
        [a.id, b.id, c.id],
      );
      assert.equal(all.next_cursor, null);

      const first = expectStatus(await api.get<Page<MemberView>>(`${base}?limit=2`), 200).body;
      assert.deepEqual(
        first.data.map((m) => m.id),
        [a.id, b.id],
      );
      assert.notEqual(first.next_cursor, null);
      const second = expectStatus(
        await api.get<Page<MemberView>>(`${base}?limit=2&cursor=${first.next_cursor}`),
        200,
      ).body;
      assert.deepEqual(
        second.data.map((m) => m.id),
        [c.id],
      );
      assert.equal(second.next_cursor, null);

      const byEmail = expectStatus(
        await api.get<Page<MemberView>>(`${base}?email=SECOND@list.example`),
        200,
      ).body;
      assert.deepEqual(
        byEmail.data.map((m) => m.id),
        [b.id],
      );
      const byExternal = expectStatus(
        await api.get<Page<MemberView>>(`${base}?external_id=x-1`),
        200,
      ).body;
      assert.deepEqual(
        byExternal.data.map((m) => m.id),
        [a.id],
      );
      await waitFor('member c to reach Silver', async () => {
        const read = await api.get<MemberView>(`${base}/${c.id}`);
        return read.body.tier === 'Silver';
      });
      const byTier = expectStatus(await api.get<Page<MemberView>>(`${base}?tier=Silver`), 200).body;
      assert.deepEqual(
        byTier.data.map((m) => m.id),
        [c.id],
      );
    });

    it('updates a member', async () => {
      const member = await createMember(api, programId);
      const updated = expectStatus(
        await api.patch<{ id: string; tier: string; status: string; position: string }>(
          p(`/members/${member.id}`),
          { name: 'Renamed', external_id: 'ext-9', attributes: { vip: true } },
        ),
        200,
      ).body;
      assert.deepEqual(
        { id: updated.id, tier: updated.tier, status: updated.status },
        { id: member.id, tier: 'Bronze', status: 'active' },
      );
      assert.match(updated.position, positionPattern);
      const read = expectStatus(
        await api.get<MemberView>(p(`/members/${member.id}?after_position=${updated.position}`)),
        200,
      ).body;
      assert.equal(read.name, 'Renamed');
      assert.equal(read.external_id, 'ext-9');
      assert.deepEqual(read.attributes, { vip: true });
    });

    it('deactivates a member, who then cannot earn points', async () => {
      const member = await createMember(api, programId);
      const deactivated = expectStatus(
        await api.post<{ id: string; status: string; position: string }>(
          p(`/members/${member.id}/deactivate`),
          {},
        ),
        200,
      ).body;
      assert.equal(deactivated.id, member.id);
      assert.equal(deactivated.status, 'deactivated');
      const read = expectStatus(
        await api.get<MemberView>(
          p(`/members/${member.id}?after_position=${deactivated.position}`),
        ),
        200,
      ).body;
      assert.equal(read.status, 'deactivated');
      assertError(
        await api.post(p(`/members/${member.id}/points/award`), { points: 5, reason: 'late' }),
        422,
        'member_inactive',
      );
    });
  });

  describe('points', () => {
    it('awards and deducts, and the ledger lists both newest first', async () => {
      const member = await createMember(api, programId);
      const awarded = expectStatus(
        await api.post<Movement & { created_at: string }>(p(`/members/${member.id}/points/award`), {
          points: 120,
          reason: 'Order #1001',
          reference: 'order-1001',
        }),
        201,
      ).body;
      assert.match(awarded.transaction_id, /^txn_[a-z0-9]{20}$/);
      assert.match(awarded.position, positionPattern);
      assert.deepEqual(
        {
          member_id: awarded.member_id,
          points: awarded.points,
          reason: awarded.reason,
          reference: awarded.reference,
          new_balance: awarded.new_balance,
          created_at: awarded.created_at,
        },
        {
          member_id: member.id,
          points: 120,
          reason: 'Order #1001',
          reference: 'order-1001',
          new_balance: 120,
          created_at: startedAt.toISOString(),
        },
      );

      const deducted = expectStatus(
        await api.post<Movement>(p(`/members/${member.id}/points/deduct`), {
          points: 20,
          reason: 'Correction',
        }),
        201,
      ).body;
      assert.equal(deducted.points, 20);
      assert.equal(deducted.new_balance, 100);
      assert.equal(deducted.reference, null);
      assert.notEqual(deducted.transaction_id, awarded.transaction_id);

      const ledger = expectStatus(
        await api.get<Page<LedgerRow>>(
          p(`/members/${member.id}/transactions?after_position=${deducted.position}`),
        ),
        200,
      ).body;
      assert.deepEqual(
        ledger.data.map(({ transaction_id, kind, points, reason, reference, balance }) => ({
          transaction_id,
          kind,
          points,
          reason,
          reference,
          balance,
        })),
        [
          {
            transaction_id: deducted.transaction_id,
            kind: 'deducted',
            points: -20,
            reason: 'Correction',
            reference: null,
            balance: 100,
          },
          {
            transaction_id: awarded.transaction_id,
            kind: 'awarded',
            points: 120,
            reason: 'Order #1001',
            reference: 'order-1001',
            balance: 120,
          },
        ],
      );
      const read = expectStatus(
        await api.get<MemberView>(p(`/members/${member.id}?after_position=${deducted.position}`)),
        200,
      ).body;
      assert.equal(read.balance, 100);
      assert.equal(read.lifetime_points, 120);
      assert.equal(read.last_activity_at, startedAt.toISOString());
    });

    it('moves a member to Gold once lifetime points cross the threshold', async () => {
      const member = await createMember(api, programId);
      await award(api, programId, member.id, 999);
      await waitFor('the member to reach Silver', async () => {
        const read = await api.get<MemberView>(p(`/members/${member.id}`));
        return read.body.tier === 'Silver';
      });
      await award(api, programId, member.id, 1);
      await waitFor('the member to reach Gold', async () => {
        const read = await api.get<MemberView>(p(`/members/${member.id}`));
        return read.body.tier === 'Gold';
      });
      const read = expectStatus(await api.get<MemberView>(p(`/members/${member.id}`)), 200).body;
      assert.equal(read.lifetime_points, 1000);
    });
  });

  describe('rewards', () => {
    it('creates, lists, reads and changes a reward', async () => {
      const program = (await createProgram(api)).id;
      const base = `/v1/programs/${program}/rewards`;
      const created = expectStatus(
        await api.post<RewardView & { position: string }>(base, {
          name: 'Tote bag',
          points_cost: 250,
          stock: 5,
          kind: 'physical',
        }),
        201,
      ).body;
      assert.match(created.id, /^rwd_[a-z0-9]{20}$/);
      assert.deepEqual(
        {
          name: created.name,
          points_cost: created.points_cost,
          stock: created.stock,
          kind: created.kind,
          active: created.active,
        },
        { name: 'Tote bag', points_cost: 250, stock: 5, kind: 'physical', active: true },
      );
      const list = expectStatus(
        await api.get<Page<RewardView>>(`${base}?after_position=${created.position}`),
        200,
      ).body;
      assert.deepEqual(
        list.data.map((r) => r.id),
        [created.id],
      );
      const changed = expectStatus(
        await api.patch<RewardView & { position: string }>(`${base}/${created.id}`, {
          name: 'Big tote',
          points_cost: 300,
          stock: 2,
          active: false,
        }),
        200,
      ).body;
      assert.deepEqual(
        {
          id: changed.id,
          name: changed.name,
          points_cost: changed.points_cost,
          stock: changed.stock,
          kind: changed.kind,
          active: changed.active,
        },
        {
          id: created.id,
          name: 'Big tote',
          points_cost: 300,
          stock: 2,
          kind: 'physical',
          active: false,
        },
      );
      const read = expectStatus(
        await api.get<RewardView>(`${base}/${created.id}?after_position=${changed.position}`),
        200,
      ).body;
      assert.deepEqual(
        {
          name: read.name,
          points_cost: read.points_cost,
          stock: read.stock,
          active: read.active,
        },
        { name: 'Big tote', points_cost: 300, stock: 2, active: false },
      );
    });
  });

  describe('orders', () => {
    it('takes a physical order from redeemed through shipped to delivered', async () => {
      const member = await createMember(api, programId);
      await award(api, programId, member.id, 500);
      const reward = await createReward(api, programId, {
        name: 'Hoodie',
        points_cost: 300,
        stock: 3,
        kind: 'physical',
      });
      const order = expectStatus(
        await api.post<Redemption>(p(`/members/${member.id}/redemptions`), {
          reward_id: reward.id,
        }),
        201,
      ).body;
      assert.match(order.id, /^ord_[a-z0-9]{20}$/);
      assert.match(order.transaction_id, /^txn_/);
      assert.match(order.position, positionPattern);
      assert.deepEqual(
        {
          member_id: order.member_id,
          reward_id: order.reward_id,
          reward_name: order.reward_name,
          points_spent: order.points_spent,
          status: order.status,
          new_balance: order.new_balance,
        },
        {
          member_id: member.id,
          reward_id: reward.id,
          reward_name: 'Hoodie',
          points_spent: 300,
          status: 'redeemed',
          new_balance: 200,
        },
      );
      const placed = expectStatus(
        await api.get<OrderView>(p(`/orders/${order.id}?after_position=${order.position}`)),
        200,
      ).body;
      assert.equal(placed.status, 'redeemed');
      assert.equal(placed.kind, 'physical');
      assert.equal(placed.points_spent, 300);
      const stock = expectStatus(
        await api.get<RewardView>(p(`/rewards/${reward.id}?after_position=${order.position}`)),
        200,
      ).body;
      assert.equal(stock.stock, 2);
      const balance = expectStatus(
        await api.get<MemberView>(p(`/members/${member.id}?after_position=${order.position}`)),
        200,
      ).body;
      assert.equal(balance.balance, 200);

      const shipped = expectStatus(
        await api.post<OrderView & { position: string }>(p(`/orders/${order.id}/ship`), {
          carrier: 'DHL',
          tracking_number: 'JD0146000034',
        }),
        200,
      ).body;
      assert.deepEqual(
        {
          id: shipped.id,
          status: shipped.status,
          member_id: shipped.member_id,
          reward_id: shipped.reward_id,
          carrier: shipped.carrier,
          tracking_number: shipped.tracking_number,
        },
        {
          id: order.id,
          status: 'shipped',
          member_id: member.id,
          reward_id: reward.id,
          carrier: 'DHL',
          tracking_number: 'JD0146000034',
        },
      );
      const inTransit = expectStatus(
        await api.get<OrderView>(p(`/orders/${order.id}?after_position=${shipped.position}`)),
        200,
      ).body;
      assert.equal(inTransit.status, 'shipped');
      assert.equal(inTransit.carrier, 'DHL');
      assert.equal(inTransit.tracking_number, 'JD0146000034');

      const delivered = expectStatus(
        await api.post<OrderView & { position: string }>(p(`/orders/${order.id}/deliver`), {}),
        200,
      ).body;
      assert.equal(delivered.status, 'delivered');
      const done = expectStatus(
        await api.get<OrderView>(p(`/orders/${order.id}?after_position=${delivered.position}`)),
        200,
      ).body;
      assert.equal(done.status, 'delivered');
      assert.deepEqual(
        done.history.map((h) => h.status),
        ['redeemed', 'shipped', 'delivered'],
      );
    });

    it('delivers a digital order without shipping', async () => {
      const member = await createMember(api, programId);
      await award(api, programId, member.id, 50);
      const reward = await createReward(api, programId, {
        name: 'E-book',
        points_cost: 50,
        stock: null,
        kind: 'digital',
      });
      const order = expectStatus(
        await api.post<Redemption>(p(`/members/${member.id}/redemptions`), {
          reward_id: reward.id,
        }),
        201,
      ).body;
      assert.equal(order.new_balance, 0);
      const delivered = expectStatus(
        await api.post<OrderView & { position: string }>(p(`/orders/${order.id}/deliver`)),
        200,
      ).body;
      assert.equal(delivered.status, 'delivered');
      const read = expectStatus(
        await api.get<OrderView>(p(`/orders/${order.id}?after_position=${delivered.position}`)),
        200,
      ).body;
      assert.equal(read.status, 'delivered');
      assert.equal(read.kind, 'digital');
      const unlimited = expectStatus(
        await api.get<RewardView>(p(`/rewards/${reward.id}?after_position=${delivered.position}`)),
        200,
      ).body;
      assert.equal(unlimited.stock, null);
    });

    it('cancelling refunds the points and restores the stock', async () => {
      const member = await createMember(api, programId);
      await award(api, programId, member.id, 400);
      const reward = await createReward(api, programId, {
        name: 'Cap',
        points_cost: 150,
        stock: 1,
        kind: 'physical',
      });
      const order = expectStatus(
        await api.post<Redemption>(p(`/members/${member.id}/redemptions`), {
          reward_id: reward.id,
        }),
        201,
      ).body;
      assert.equal(order.new_balance, 250);
      const cancelled = expectStatus(
        await api.post<OrderView & { position: string }>(p(`/orders/${order.id}/cancel`), {
          reason: 'Customer changed their mind',
        }),
        200,
      ).body;
      assert.equal(cancelled.status, 'cancelled');
      const after = cancelled.position;
      const read = expectStatus(
        await api.get<OrderView>(p(`/orders/${order.id}?after_position=${after}`)),
        200,
      ).body;
      assert.equal(read.status, 'cancelled');
      const refunded = expectStatus(
        await api.get<MemberView>(p(`/members/${member.id}?after_position=${after}`)),
        200,
      ).body;
      assert.equal(refunded.balance, 400);
      const restocked = expectStatus(
        await api.get<RewardView>(p(`/rewards/${reward.id}?after_position=${after}`)),
        200,
      ).body;
      assert.equal(restocked.stock, 1);
      const ledger = expectStatus(
        await api.get<Page<LedgerRow>>(
          p(`/members/${member.id}/transactions?after_position=${after}`),
        ),
        200,
      ).body;
      assert.deepEqual(
        ledger.data.map((row) => [row.kind, row.points, row.balance]),
        [
          ['refunded', 150, 400],
          ['deducted', -150, 250],
          ['awarded', 400, 400],
        ],
      );
      await settle(app.runtime);
      const ledgerAfterReactor = expectStatus(
        await api.get<Page<LedgerRow>>(p(`/members/${member.id}/transactions`)),
        200,
      ).body;
      assert.equal(
        ledgerAfterReactor.data.filter((row) => row.kind === 'refunded').length,
        1,
        'the policy reactor repeats the refund idempotently, not twice',
      );
    });
  });

  describe('leaderboards', () => {
    it('ranks ties as 1, 2, 2, 4, closes the period and keeps its final standings', async () => {
      const program = (await createProgram(api)).id;
      const base = `/v1/programs/${program}/leaderboards`;
      const board = expectStatus(
        await api.post<LeaderboardView & { position: string }>(base, {
          name: 'Weekly top',
          period: 'weekly',
        }),
        201,
      ).body;
      assert.match(board.id, /^lb_[a-z0-9]{20}$/);
      assert.deepEqual(
        {
          name: board.name,
          period: board.period,
          timezone: board.timezone,
          period_start: board.period_start,
          period_end: board.period_end,
        },
        {
          name: 'Weekly top',
          period: 'weekly',
          timezone: 'UTC',
          period_start: '2025-03-03T00:00:00.000Z',
          period_end: '2025-03-10T00:00:00.000Z',
        },
      );
      const list = expectStatus(
        await api.get<{ data: LeaderboardView[] }>(`${base}?after_position=${board.position}`),
        200,
      ).body;
      assert.deepEqual(
        list.data.map((l) => l.id),
        [board.id],
      );
      const one = expectStatus(await api.get<LeaderboardView>(`${base}/${board.id}`), 200).body;
      assert.equal(one.name, 'Weekly top');

      const [a, b, c, d] = [
        await createMember(api, program),
        await createMember(api, program),
        await createMember(api, program),
        await createMember(api, program),
      ];
      await award(api, program, a.id, 300);
      await award(api, program, b.id, 200);
      await award(api, program, c.id, 200);
      await award(api, program, d.id, 100);
      const expected = [
        { position: 1, member_id: a.id, points: 300 },
        { position: 2, member_id: b.id, points: 200 },
        { position: 2, member_id: c.id, points: 200 },
        { position: 4, member_id: d.id, points: 100 },
      ];
      let last: Standings | undefined;
      await waitFor('the standings to hold all four awards', async () => {
        last = (await api.get<Standings>(`${base}/${board.id}/standings`)).body;
        return (
          last.standings.length === 4 &&
          last.standings.every((s, i) => s.points === expected[i]!.points)
        );
      });
      assert.deepEqual(last!.standings, expected);
      assert.equal(last!.leaderboard_id, board.id);
      assert.equal(last!.period_start, '2025-03-03T00:00:00.000Z');

      const closed = expectStatus(
        await api.post<{
          leaderboard_id: string;
          ended: { period_start: string; period_end: string; standings: Standings['standings'] };
          current_period: { period_start: string; period_end: string };
          position: string;
        }>(`${base}/${board.id}/close-period`, {}),
        200,
      ).body;
      assert.equal(closed.leaderboard_id, board.id);
      assert.deepEqual(closed.ended, {
        period_id: '20250303T000000.000Z',
        period_start: '2025-03-03T00:00:00.000Z',
        period_end: startedAt.toISOString(),
        standings: expected,
      });
      assert.deepEqual(closed.current_period, {
        period_start: startedAt.toISOString(),
        period_end: '2025-03-10T00:00:00.000Z',
      });

      const periods = expectStatus(
        await api.get<Periods>(`${base}/${board.id}/periods?after_position=${closed.position}`),
        200,
      ).body;
      assert.equal(periods.leaderboard_id, board.id);
      assert.deepEqual(periods.data, [
        {
          period_id: '20250303T000000.000Z',
          period_start: '2025-03-03T00:00:00.000Z',
          period_end: startedAt.toISOString(),
          standings: expected,
          corrections: [],
        },
      ]);
      const fresh = expectStatus(
        await api.get<Standings>(`${base}/${board.id}/standings?after_position=${closed.position}`),
        200,
      ).body;
      assert.deepEqual(fresh.standings, []);
      assert.equal(fresh.period_start, startedAt.toISOString());
    });
  });

  describe('errors', () => {
    it('answers 400 validation_error naming the field', async () => {
      assertError(
        await api.post(p('/members'), { email: 'not-an-email', name: 'X' }),
        400,
        'validation_error',
        'email',
      );
      assertError(
        await api.post(p('/members'), { email: 'ok@example.com' }),
        400,
        'validation_error',
        'name',
      );
      assertError(await api.get(p('/members?limit=0')), 400, 'validation_error', 'limit');
      assertError(
        await api.get(p('/members?after_position=yesterday')),
        400,
        'validation_error',
        'after_position',
      );
    });

    it('answers 400 malformed_json for a body that is not JSON', async () => {
      assertError(
        await api.request('POST', p('/members'), { raw: '{"email": "a@b.co", "name": ' }),
        400,
        'malformed_json',
      );
    });

    it('answers 401 to a bad key before it looks at the body (a prototype key included)', async () => {
      const body = { email: 'p@example.com', name: 'x', attributes: { prototype: 0 } };
      assertError(await api.post(p('/members'), body, { key: null }), 401, 'unauthorized');
      assertError(
        await api.post(p('/members'), body, {
          key: randomBytes(24).toString('base64url').slice(0, 32),
        }),
        401,
        'invalid_api_key',
      );
      // With a good key the body's refusal stands.
      assertError(await api.post(p('/members'), body), 400, 'validation_error');
    });

    it('answers 401 without a key, with a wrong key and with a malformed header', async () => {
      assertError(await api.get(p(''), { key: null }), 401, 'unauthorized');
      assertError(
        await api.get(p(''), { key: randomBytes(24).toString('base64url').slice(0, 32) }),
        401,
        'invalid_api_key',
      );
      assertError(
        await api.get(p(''), {
          key: `key_${'a'.repeat(20)}.${randomBytes(32).toString('base64url')}`,
        }),
        401,
        'invalid_api_key',
      );
      for (const authorization of [
        `Basic ${Buffer.from('user:pass').toString('base64')}`,
        'Bearer',
        'Bearer short',
        `bearer ${app.rootKey}`,
        app.rootKey,
      ]) {
        assertError(
          await api.get(p(''), { key: null, headers: { authorization } }),
          401,
          'unauthorized',
        );
      }
    });

    it('answers 403 when a program key reaches another program or creates programs', async () => {
      const other = (await createProgram(api)).id;
      const issued = expectStatus(
        await api.post<{ key: string }>(`/v1/programs/${other}/api-keys`, {}),
        201,
      ).body;
      const scoped = apiClient(app.url, issued.key);
      assertError(await scoped.get(p('')), 403, 'forbidden');
      assertError(
        await scoped.post(p('/members'), { email: 'a@b.co', name: 'A' }),
        403,
        'forbidden',
      );
      assertError(
        await scoped.post('/v1/programs', { name: 'Mine', notification_email: 'a@b.co' }),
        403,
        'forbidden',
      );
      assertError(await scoped.post(`/v1/programs/${other}/api-keys`, {}), 403, 'forbidden');
    });

    it('answers 404 for unknown programs, members, rewards, orders, leaderboards and routes', async () => {
      assertError(await api.get(`/v1/programs/${unknownId('prg')}`), 404, 'program_not_found');
      assertError(
        await api.post(`/v1/programs/${unknownId('prg')}/members`, { email: 'a@b.co', name: 'A' }),
        404,
        'program_not_found',
      );
      assertError(await api.get(p(`/members/${unknownId('mem')}`)), 404, 'member_not_found');
      assertError(
        await api.get(p(`/members/${unknownId('mem')}/transactions`)),
        404,
        'member_not_found',
      );
      assertError(
        await api.post(p(`/members/${unknownId('mem')}/points/award`), { points: 1, reason: 'x' }),
        404,
        'member_not_found',
      );
      assertError(await api.get(p(`/rewards/${unknownId('rwd')}`)), 404, 'reward_not_found');
      assertError(
        await api.patch(p(`/rewards/${unknownId('rwd')}`), { name: 'x' }),
        404,
        'reward_not_found',
      );
      const member = await createMember(api, programId);
      assertError(
        await api.post(p(`/members/${member.id}/redemptions`), { reward_id: unknownId('rwd') }),
        404,
        'reward_not_found',
      );
      assertError(await api.get(p(`/orders/${unknownId('ord')}`)), 404, 'order_not_found');
      assertError(
        await api.post(p(`/orders/${unknownId('ord')}/deliver`), {}),
        404,
        'order_not_found',
      );
      assertError(
        await api.get(p(`/leaderboards/${unknownId('lb')}/standings`)),
        404,
        'leaderboard_not_found',
      );
      assertError(
        await api.post(p(`/leaderboards/${unknownId('lb')}/close-period`), {}),
        404,
        'leaderboard_not_found',
      );
      assertError(await api.get('/v1/nothing-here'), 404, 'not_found');
      assertError(await api.get('/nothing-here', { key: null }), 404, 'not_found');
      assertError(await api.request('DELETE', p('')), 404, 'not_found');
    });

    it('answers 409 idempotency_conflict when a key is reused with another body', async () => {
      const member = await createMember(api, programId);
      const path = p(`/members/${member.id}/points/award`);
      const headers = { 'idempotency-key': `award-${randomBytes(8).toString('hex')}` };
      const first = expectStatus(
        await api.post<Movement>(path, { points: 10, reason: 'first' }, { headers }),
        201,
      );
      const repeat = expectStatus(
        await api.post<Movement>(path, { points: 10, reason: 'first' }, { headers }),
        201,
      );
      assert.equal(repeat.body.transaction_id, first.body.transaction_id);
      assert.equal(repeat.headers.get('idempotent-replayed'), 'true');
      assertError(
        await api.post(path, { points: 11, reason: 'first' }, { headers }),
        409,
        'idempotency_conflict',
        'Idempotency-Key',
      );
    });

    it('answers 413 for a 2 MB body', async () => {
      const big = 'x'.repeat(2 * 1024 * 1024);
      assertError(
        await api.post(p('/members'), { email: 'a@b.co', name: 'A', attributes: { blob: big } }),
        413,
        'payload_too_large',
      );
    });

    it('answers 415 for a text/plain body', async () => {
      assertError(
        await api.request('POST', p('/members'), {
          raw: JSON.stringify({ email: 'a@b.co', name: 'A' }),
          headers: { 'content-type': 'text/plain' },
        }),
        415,
        'unsupported_media_type',
      );
    });

    it('keeps programs apart: ids of one program are unknown in another', async () => {
      const other = (await createProgram(api)).id;
      const o = (path: string) => `/v1/programs/${other}${path}`;
      const member = await createMember(api, programId);
      await award(api, programId, member.id, 100);
      const reward = await createReward(api, programId, { points_cost: 10, kind: 'digital' });
      const order = expectStatus(
        await api.post<Redemption>(p(`/members/${member.id}/redemptions`), {
          reward_id: reward.id,
        }),
        201,
      ).body;
      assertError(
        await api.get(o(`/members/${member.id}?after_position=${order.position}`)),
        404,
        'member_not_found',
      );
      assertError(
        await api.post(o(`/members/${member.id}/points/award`), { points: 1, reason: 'x' }),
        404,
        'member_not_found',
      );
      assertError(await api.get(o(`/rewards/${reward.id}`)), 404, 'reward_not_found');
      assertError(await api.get(o(`/orders/${order.id}`)), 404, 'order_not_found');
      assertError(await api.post(o(`/orders/${order.id}/cancel`), {}), 404, 'order_not_found');
      const stranger = await createMember(api, other);
      await award(api, other, stranger.id, 100);
      assertError(
        await api.post(o(`/members/${stranger.id}/redemptions`), { reward_id: reward.id }),
        404,
        'reward_not_found',
      );
    });

    describe('422 refusals', () => {
      it('refuses a redemption above the balance', async () => {
        const member = await createMember(api, programId);
        await award(api, programId, member.id, 99);
        const reward = await createReward(api, programId, { points_cost: 100, kind: 'digital' });
        assertError(
          await api.post(p(`/members/${member.id}/redemptions`), { reward_id: reward.id }),
          422,
          'insufficient_points',
        );
        assertError(
          await api.post(p(`/members/${member.id}/points/deduct`), { points: 100, reason: 'x' }),
          422,
          'insufficient_points',
          'points',
        );
      });

      it('refuses a redemption when the reward is out of stock', async () => {
        const member = await createMember(api, programId);
        await award(api, programId, member.id, 100);
        const reward = await createReward(api, programId, {
          points_cost: 10,
          stock: 1,
          kind: 'physical',
        });
        expectStatus(
          await api.post(p(`/members/${member.id}/redemptions`), { reward_id: reward.id }),
          201,
        );
        assertError(
          await api.post(p(`/members/${member.id}/redemptions`), { reward_id: reward.id }),
          422,
          'out_of_stock',
          'reward_id',
        );
      });

      it('refuses to ship a digital order, deliver an unshipped one, or cancel a delivered one', async () => {
        const member = await createMember(api, programId);
        await award(api, programId, member.id, 100);
        const digital = await createReward(api, programId, { points_cost: 10, kind: 'digital' });
        const physical = await createReward(api, programId, { points_cost: 10, kind: 'physical' });
        const digitalOrder = expectStatus(
          await api.post<Redemption>(p(`/members/${member.id}/redemptions`), {
            reward_id: digital.id,
          }),
          201,
        ).body;
        const physicalOrder = expectStatus(
          await api.post<Redemption>(p(`/members/${member.id}/redemptions`), {
            reward_id: physical.id,
          }),
          201,
        ).body;
        assertError(
          await api.post(p(`/orders/${digitalOrder.id}/ship`), {
            carrier: 'UPS',
            tracking_number: '1Z',
          }),
          422,
          'digital_order_not_shippable',
        );
        assertError(
          await api.post(p(`/orders/${physicalOrder.id}/deliver`), {}),
          422,
          'order_not_shipped',
        );
        expectStatus(await api.post(p(`/orders/${digitalOrder.id}/deliver`), {}), 200);
        assertError(
          await api.post(p(`/orders/${digitalOrder.id}/cancel`), {}),
          422,
          'order_already_delivered',
        );
      });
    });
  });
});

describe('leaderboard scoring while the read models lag', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;

  before(async () => {
    app = await startTestApp({ now: startedAt });
  });
  after(async () => {
    await app?.stop();
  });

  it('counts an award made right after the leaderboard was created', async () => {
    // The policy reactor and the read-model projector are separate subscriptions, so either may
    // be ahead. Holding the projector back makes the order deterministic: the reactor handles
    // the award before the projector has recorded the leaderboard.
    const api = app.api;
    const program = (await createProgram(api)).id;
    const member = await createMember(api, program);
    await settle(app.runtime);
    await app.runtime.readModels!.stop();
    const board = expectStatus(
      await api.post<LeaderboardView & { position: string }>(
        `/v1/programs/${program}/leaderboards`,
        {
          name: 'Launch week',
          period: 'weekly',
        },
      ),
      201,
    ).body;
    const awarded = await award(api, program, member.id, 40);
    const target = parsePosition(awarded.position)!;
    await waitFor('the policy reactor to handle the award', () => {
      const checkpoint = app.runtime.policies!.checkpoint();
      return checkpoint !== null && comparePositions(checkpoint, target) >= 0;
    });
    const projector = await app.runtime.store.subscribe({
      name: readModelsProjection,
      handle: (events, tx) => projectReadModels(events, tx as unknown as Kysely<ReadModelTables>),
    });
    try {
      // The reactor appended its scores before its checkpoint passed the award: catching up with
      // everything committed now includes them.
      await projector.caughtUp();
      const standings = expectStatus(
        await api.get<Standings>(`/v1/programs/${program}/leaderboards/${board.id}/standings`),
        200,
      ).body;
      assert.deepEqual(standings.standings, [{ position: 1, member_id: member.id, points: 40 }]);
    } finally {
      await projector.stop();
    }
  });
});
