import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { replayReadModels, type RowDifference } from '../../../adapters/audit/replay.ts';
import { backfillExpiryLots } from '../../../adapters/db/migrations/013_expiryLots.ts';
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
  type Page,
  type Redemption,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';
import { startReceiver, type Receiver } from '../../support/receiver.ts';

const dayMs = 86_400_000;
const hourMs = 3_600_000;
const t0 = new Date('2025-01-10T12:00:00.000Z');
const daysAfter = (days: number, from = t0) => new Date(from.getTime() + days * dayMs);

type Expiry = { mode: 'inactivity' | 'per_award'; days: number } | null;
type ProgramRead = { id: string; points_expiry: Expiry; points_expiry_days: number | null };
type MemberRead = MemberView & { next_expiry: { at: string; points: number } | null };
type Expired = {
  transaction_id: string;
  member_id: string;
  points: number;
  reason: string;
  new_balance: number;
};

/** Every queued delivery answered and recorded: nothing more will arrive. */
const deliveriesSettled = async (app: TestApp): Promise<void> => {
  await settle(app.runtime);
  await app.runtime.webhookProjection!.caughtUp();
  await waitFor('every delivery to be delivered', async () => {
    const rows = await sql<{ n: number }>`
      select count(*)::int as n from webhook_deliveries where status <> 'delivered'`.execute(
      app.runtime.database.db,
    );
    return rows.rows[0]!.n === 0;
  });
};

describe('points expiry', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let api: Api;
  let receiver: Receiver;

  before(async () => {
    receiver = await startReceiver();
    app = await startTestApp({ now: t0 });
    api = app.api;
  });
  after(async () => {
    await app?.stop();
    await receiver?.close();
  });

  /** A program created with the given expiry fields only (not the harness's default spelling). */
  const programWith = async (
    fields: Record<string, unknown>,
    timezone = 'UTC',
  ): Promise<ProgramRead> =>
    createProgram(api, { points_expiry_days: undefined, timezone, ...fields }) as Promise<
      Awaited<ReturnType<typeof createProgram>> & ProgramRead
    >;
  const member = async (programId: string, id: string) =>
    expectStatus(await api.get<MemberRead>(`/v1/programs/${programId}/members/${id}`), 200).body;
  const program = async (programId: string) =>
    expectStatus(await api.get<ProgramRead>(`/v1/programs/${programId}`), 200).body;

  describe('the program setting', () => {
    it('creates a per-award program and reads it back in both spellings', async () => {
      const created = await programWith({ points_expiry: { mode: 'per_award', days: 365 } });
      assert.deepEqual(
        [created.points_expiry, created.points_expiry_days],
        [{ mode: 'per_award', days: 365 }, null],
      );
      const read = await program(created.id);
      assert.deepEqual(read.points_expiry, { mode: 'per_award', days: 365 });
      assert.equal(read.points_expiry_days, null);
    });

    it('takes points_expiry_days as the inactivity mode', async () => {
      const created = await programWith({ points_expiry_days: 30 });
      const read = await program(created.id);
      assert.deepEqual(read.points_expiry, { mode: 'inactivity', days: 30 });
      assert.equal(read.points_expiry_days, 30);
    });

    it('switches mode with PATCH, in either spelling, and turns expiry off with null', async () => {
      const { id } = await programWith({ points_expiry_days: 30 });
      const path = `/v1/programs/${id}`;
      const toPerAward = expectStatus(
        await api.patch<ProgramRead>(path, { points_expiry: { mode: 'per_award', days: 90 } }),
        200,
      ).body;
      assert.deepEqual(toPerAward.points_expiry, { mode: 'per_award', days: 90 });
      const back = expectStatus(
        await api.patch<ProgramRead>(path, { points_expiry_days: 45 }),
        200,
      ).body;
      assert.deepEqual(back.points_expiry, { mode: 'inactivity', days: 45 });
      const off = expectStatus(
        await api.patch<ProgramRead>(path, { points_expiry: null }),
        200,
      ).body;
      assert.deepEqual([off.points_expiry, off.points_expiry_days], [null, null]);
    });

    it('accepts both spellings when they agree, as GET returns them', async () => {
      const { id } = await programWith({ points_expiry: { mode: 'per_award', days: 10 } });
      const read = await program(id);
      const again = await api.patch<ProgramRead>(`/v1/programs/${id}`, {
        points_expiry: read.points_expiry,
        points_expiry_days: read.points_expiry_days,
      });
      expectStatus(again, 200);
      assert.deepEqual(again.body.points_expiry, { mode: 'per_award', days: 10 });
    });

    const invalid: [string, Record<string, unknown>, string][] = [
      ['an unknown mode', { points_expiry: { mode: 'forever', days: 30 } }, 'points_expiry.mode'],
      ['no mode', { points_expiry: { days: 30 } }, 'points_expiry.mode'],
      ['0 days', { points_expiry: { mode: 'per_award', days: 0 } }, 'points_expiry.days'],
      ['3651 days', { points_expiry: { mode: 'per_award', days: 3651 } }, 'points_expiry.days'],
      [
        'fractional days',
        { points_expiry: { mode: 'per_award', days: 1.5 } },
        'points_expiry.days',
      ],
      ['days as text', { points_expiry: { mode: 'per_award', days: '30' } }, 'points_expiry.days'],
      [
        'an unknown key',
        { points_expiry: { mode: 'per_award', days: 3, x: 1 } },
        'points_expiry.x',
      ],
      ['not an object', { points_expiry: 365 }, 'points_expiry'],
      [
        'disagreeing spellings',
        { points_expiry: { mode: 'per_award', days: 30 }, points_expiry_days: 30 },
        'points_expiry',
      ],
    ];
    for (const [what, body, field] of invalid) {
      it(`answers 400 naming ${field} for ${what}, on create and on PATCH`, async () => {
        const created = await api.post('/v1/programs', {
          name: 'Bad expiry',
          notification_email: 'ops@example.com',
          ...body,
        });
        assert.equal(created.status, 400, created.text);
        assert.deepEqual(
          [created.body.error?.code, created.body.error?.field],
          ['validation_error', field],
        );
        const { id } = await programWith({});
        const patched = await api.patch(`/v1/programs/${id}`, body);
        assert.equal(patched.status, 400, patched.text);
        assert.deepEqual(
          [patched.body.error?.code, patched.body.error?.field],
          ['validation_error', field],
        );
      });
    }
  });

  describe('per award, 365 days', () => {
    let programId: string;
    let spender: string;
    let refunded: string;
    let expired: Expired[];
    const p = (path: string) => `/v1/programs/${programId}${path}`;

    before(async () => {
      app.clock.set(t0);
      programId = (await programWith({ points_expiry: { mode: 'per_award', days: 365 } })).id;
      expectStatus(
        await api.post(p('/webhook-endpoints'), {
          url: `${receiver.origin}/expired`,
          events: ['points.expired'],
        }),
        201,
      );
      spender = (await createMember(api, programId)).id;
      refunded = (await createMember(api, programId)).id;
      await award(api, programId, spender, 100);
      await award(api, programId, refunded, 200);
      app.clock.set(daysAfter(100));
      await award(api, programId, spender, 50);
      app.clock.set(daysAfter(150));
      expectStatus(
        await api.post(p(`/members/${spender}/points/deduct`), { points: 30, reason: 'Fix' }),
        201,
      );
      // A redemption spends the oldest 150 of 200; the cancellation refunds them as a new lot.
      const reward = await createReward(api, programId, { points_cost: 150, kind: 'physical' });
      const order = expectStatus(
        await api.post<Redemption>(p(`/members/${refunded}/redemptions`), {
          reward_id: reward.id,
        }),
        201,
      ).body;
      app.clock.set(daysAfter(200));
      expectStatus(await api.post(p(`/orders/${order.id}/cancel`), {}), 200);
      await settle(app.runtime);
    });

    it('shows the oldest lot as the next expiry: what spending left of the first award', async () => {
      assert.deepEqual((await member(programId, spender)).next_expiry, {
        at: daysAfter(365).toISOString(),
        points: 70,
      });
      assert.deepEqual((await member(programId, refunded)).next_expiry, {
        at: daysAfter(365).toISOString(),
        points: 50,
      });
    });

    it('expires nothing a moment before the oldest lot is due', async () => {
      app.clock.set(new Date(daysAfter(365).getTime() - 1));
      const report = await app.runtime.jobs.expiry({ atLocalHour: null });
      assert.deepEqual(report, { job: 'expiry', ran: true, changed: 0 });
    });

    it('expires exactly the lots past their date, with one points.expired each', async () => {
      app.clock.set(daysAfter(365));
      const report = await app.runtime.jobs.expiry({ atLocalHour: null });
      assert.deepEqual(report, { job: 'expiry', ran: true, changed: 2 });
      await deliveriesSettled(app);
      expired = receiver.at('/expired').map((w) => (JSON.parse(w.body) as { data: Expired }).data);
      const bySpender = expired.find((d) => d.member_id === spender)!;
      // The documented five, then kind and reference (docs/webhooks.md).
      assert.deepEqual(Object.keys(bySpender).sort(), [
        'kind',
        'member_id',
        'new_balance',
        'points',
        'reason',
        'reference',
        'transaction_id',
      ]);
      assert.deepEqual([bySpender.points, bySpender.new_balance], [70, 50]);
      assert.match(bySpender.reason, /365 days/);
      const byRefunded = expired.find((d) => d.member_id === refunded)!;
      assert.deepEqual([byRefunded.points, byRefunded.new_balance], [50, 150]);
      assert.equal(expired.length, 2);
    });

    it('leaves the later award and the refund, each with its own date', async () => {
      const s = await member(programId, spender);
      assert.equal(s.balance, 50);
      assert.deepEqual(s.next_expiry, { at: daysAfter(465).toISOString(), points: 50 });
      const r = await member(programId, refunded);
      assert.equal(r.balance, 150);
      assert.deepEqual(r.next_expiry, { at: daysAfter(565).toISOString(), points: 150 });
      const ledger = expectStatus(
        await api.get<Page<LedgerRow>>(p(`/members/${spender}/transactions`)),
        200,
      ).body.data;
      assert.deepEqual(
        ledger.map((row) => [row.kind, row.points]),
        [
          ['expired', -70],
          ['deducted', -30],
          ['awarded', 50],
          ['awarded', 100],
        ],
      );
    });

    it('expires the later award and the refund lot, each on its own date', async () => {
      app.clock.set(daysAfter(565));
      const report = await app.runtime.jobs.expiry({ atLocalHour: null });
      assert.deepEqual(report, { job: 'expiry', ran: true, changed: 2 });
      await settle(app.runtime);
      for (const id of [spender, refunded]) {
        const m = await member(programId, id);
        assert.deepEqual([m.balance, m.next_expiry], [0, null]);
      }
    });
  });

  describe('a program that switches from inactivity to per award', () => {
    it('dates each point by its own award, awarded before the switch or after', async () => {
      app.clock.set(t0);
      const { id: programId } = await programWith({ points_expiry_days: 30 });
      const someone = (await createMember(api, programId)).id;
      await award(api, programId, someone, 40);
      app.clock.set(daysAfter(20));
      await award(api, programId, someone, 60);
      await settle(app.runtime);
      assert.deepEqual((await member(programId, someone)).next_expiry, {
        at: daysAfter(50).toISOString(),
        points: 100,
      });
      expectStatus(
        await api.patch(`/v1/programs/${programId}`, {
          points_expiry: { mode: 'per_award', days: 30 },
        }),
        200,
      );
      await settle(app.runtime);
      assert.deepEqual((await member(programId, someone)).next_expiry, {
        at: daysAfter(30).toISOString(),
        points: 40,
      });
      app.clock.set(daysAfter(31));
      assert.equal((await app.runtime.jobs.expiry({ atLocalHour: null })).changed, 1);
      await settle(app.runtime);
      const after = await member(programId, someone);
      assert.equal(after.balance, 60);
      assert.deepEqual(after.next_expiry, { at: daysAfter(50).toISOString(), points: 60 });
    });
  });

  describe('in inactivity mode', () => {
    it('shows the whole balance expiring its days after the last activity', async () => {
      app.clock.set(t0);
      const { id: programId } = await programWith({ points_expiry_days: 30 });
      const someone = (await createMember(api, programId)).id;
      await settle(app.runtime);
      assert.equal((await member(programId, someone)).next_expiry, null);
      await award(api, programId, someone, 10);
      app.clock.set(daysAfter(5));
      await award(api, programId, someone, 5);
      await settle(app.runtime);
      assert.deepEqual((await member(programId, someone)).next_expiry, {
        at: daysAfter(35).toISOString(),
        points: 15,
      });
    });

    it('shows no next expiry when the program has none', async () => {
      const { id: programId } = await programWith({});
      const someone = (await createMember(api, programId)).id;
      await award(api, programId, someone, 10);
      await settle(app.runtime);
      assert.equal((await member(programId, someone)).next_expiry, null);
    });
  });

  describe('the daily sweep at 02:00 local time', () => {
    /**
     * Makes the scheduler's hourly call (minute 0, as adapters/runtime.ts schedules it) for
     * every hour from `from` (inclusive) to `to` (exclusive) and returns the hours at which the
     * member's points expired (read from its points stream: other programs' members may expire
     * in the same calls). `beforeEach` runs before the call of each hour.
     */
    const hourly = async (
      watched: { programId: string; memberId: string },
      range: { from: string; to: string },
      beforeEach: (at: Date) => Promise<void> = async () => {},
    ): Promise<string[]> => {
      const expiries = async () =>
        (await pointsEventsOf(app.runtime, watched.programId, watched.memberId)).filter(
          (e) => e.type === 'PointsExpired',
        ).length;
      const expiredAt: string[] = [];
      let seen = await expiries();
      for (let at = Date.parse(range.from); at < Date.parse(range.to); at += hourMs) {
        app.clock.set(new Date(at));
        await beforeEach(new Date(at));
        await app.runtime.jobs.expiry({ atLocalHour: 2 });
        const now = await expiries();
        if (now > seen) expiredAt.push(new Date(at).toISOString());
        seen = now;
      }
      return expiredAt;
    };

    it('runs at 03:00 on a spring-forward day whose 02:00 does not exist (America/New_York)', async () => {
      // 9 March 2025: 02:00 EST (07:00Z) jumps to 03:00 EDT; the local day is 05:00Z-04:00Z.
      app.clock.set(new Date('2025-03-07T12:00:00.000Z'));
      const { id: programId } = await programWith(
        { points_expiry: { mode: 'per_award', days: 1 } },
        'America/New_York',
      );
      const memberId = (await createMember(api, programId)).id;
      await award(api, programId, memberId, 10);
      await settle(app.runtime);
      // Due from 8 March 12:00Z, after that day's sweep (02:00 EST, 07:00Z).
      assert.deepEqual(
        await hourly(
          { programId, memberId },
          { from: '2025-03-08T12:00:00.000Z', to: '2025-03-10T05:00:00.000Z' },
        ),
        ['2025-03-09T07:00:00.000Z'],
      );
    });

    it('runs once on a fall-back day that repeats 02:00 (Europe/Berlin), at the first 02:00', async () => {
      // 26 October 2025: 03:00 CEST (01:00Z) falls back to 02:00 CET, so 02:00 local is both
      // 00:00Z and 01:00Z. Points due at 00:30Z miss the day's sweep (the first 02:00) and wait
      // for the next day's (02:00 CET, 01:00Z on 27 October), not for the repeated hour.
      app.clock.set(new Date('2025-10-25T00:30:00.000Z'));
      const { id: programId } = await programWith(
        { points_expiry: { mode: 'per_award', days: 1 } },
        'Europe/Berlin',
      );
      const memberId = (await createMember(api, programId)).id;
      await award(api, programId, memberId, 10);
      await settle(app.runtime);
      assert.deepEqual(
        await hourly(
          { programId, memberId },
          { from: '2025-10-25T22:00:00.000Z', to: '2025-10-27T22:00:00.000Z' },
        ),
        ['2025-10-27T01:00:00.000Z'],
      );
    });

    it('sweeps once every local day across the spring-forward, at 02:00 or the first time after', async () => {
      // A one-day lot awarded each day at 05:00Z is due at the next day's 05:00Z, before that
      // day's sweep: every sweep expires the previous day's award, so each shows.
      app.clock.set(new Date('2025-03-01T05:00:00.000Z'));
      const { id: programId } = await programWith(
        { points_expiry: { mode: 'per_award', days: 1 } },
        'America/New_York',
      );
      const memberId = (await createMember(api, programId)).id;
      const expiredAt = await hourly(
        { programId, memberId },
        { from: '2025-03-01T05:00:00.000Z', to: '2025-03-16T05:00:00.000Z' },
        async (at) => {
          if (at.getUTCHours() !== 5) return;
          await award(api, programId, memberId, 1);
          await settle(app.runtime);
        },
      );
      const expected = [
        ...[2, 3, 4, 5, 6, 7, 8, 9].map((d) => `2025-03-0${d}T07:00:00.000Z`), // 02:00 EST; 03:00 EDT on the 9th
        ...[10, 11, 12, 13, 14, 15].map((d) => `2025-03-${d}T06:00:00.000Z`), // 02:00 EDT
      ];
      assert.deepEqual(expiredAt, expected);
    });
  });

  describe('replay --verify after this whole history', () => {
    for (const engine of ['batched', 'projector'] as const) {
      it(`rebuilds the lots, next expiry dates and modes with no difference (${engine} engine)`, async () => {
        await settle(app.runtime);
        const differences: RowDifference[] = [];
        const report = await replayReadModels(app.runtime.database.db, {
          verify: true,
          engine,
          onDifference: (d) => {
            differences.push(d);
          },
        });
        assert.deepEqual(differences, []);
        assert.equal(report.totalDifferences, 0);
        const lots = await sql<{ n: number }>`
          select count(*)::int as n from rm_members where jsonb_array_length(expiry_lots) > 0`.execute(
          app.runtime.database.db,
        );
        assert.ok(lots.rows[0]!.n > 0, 'the history left members holding lots');
      });
    }
  });

  describe('an upgraded database (migration 011_expiry_lots)', () => {
    it('fills the lots of members who held points before it from their ledger', async () => {
      const db = app.runtime.database.db;
      const verify = async () =>
        (await replayReadModels(db, { verify: true, engine: 'batched' })).totalDifferences;
      // As the migration's DDL leaves the rows: no lots yet.
      await sql`update rm_members set expiry_lots = '[]', oldest_lot_at = null`.execute(db);
      assert.ok((await verify()) > 0, 'the emptied lots differ from the history');
      await backfillExpiryLots(db as unknown as Kysely<unknown>);
      const differences: RowDifference[] = [];
      await replayReadModels(db, {
        verify: true,
        engine: 'batched',
        onDifference: (d) => {
          differences.push(d);
        },
      });
      assert.deepEqual(differences, []);
      // Pages of one and of two members: every member on a page boundary, the last page full.
      for (const membersPerPage of [1, 2]) {
        await sql`update rm_members set expiry_lots = '[]', oldest_lot_at = null`.execute(db);
        await backfillExpiryLots(db as unknown as Kysely<unknown>, { membersPerPage });
        assert.equal(await verify(), 0, `${membersPerPage} member(s) a page`);
      }
    });
  });
});
