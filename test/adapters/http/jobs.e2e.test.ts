import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  award,
  createMember,
  createProgram,
  eventCount,
  expectStatus,
  settle,
  startTestApp,
  type Api,
  type LeaderboardView,
  type LedgerRow,
  type MemberView,
  type Page,
  type Periods,
  type Standings,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';

const dayMs = 86_400_000;
/** Friday 10 January 2025, 12:00 UTC. */
const t0 = new Date('2025-01-10T12:00:00.000Z');

describe('scheduled jobs driven by the injected clock', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let api: Api;

  before(async () => {
    app = await startTestApp({ now: t0 });
    api = app.api;
  });
  after(async () => {
    await app?.stop();
  });

  describe('points expiry with a 30-day window', () => {
    let programId: string;
    let idle: MemberView;
    let active: MemberView;
    let fresh: MemberView;
    const p = (path: string) => `/v1/programs/${programId}${path}`;
    const member = async (id: string) =>
      expectStatus(await api.get<MemberView>(p(`/members/${id}`)), 200).body;
    const ledger = async (id: string) =>
      expectStatus(await api.get<Page<LedgerRow>>(p(`/members/${id}/transactions`)), 200).body.data;

    before(async () => {
      app.clock.set(t0);
      programId = (await createProgram(api, { points_expiry_days: 30 })).id;
      idle = await createMember(api, programId);
      active = await createMember(api, programId);
      fresh = await createMember(api, programId);
      await award(api, programId, idle.id, 150);
      await award(api, programId, active.id, 80);
      app.clock.set(new Date(t0.getTime() + 20 * dayMs));
      await award(api, programId, active.id, 20);
      app.clock.set(new Date(t0.getTime() + 30 * dayMs));
      await award(api, programId, fresh.id, 5);
      await settle(app.runtime);
    });

    it('expires nothing before the window has passed', async () => {
      app.clock.set(new Date(t0.getTime() + 30 * dayMs - 1));
      const eventsBefore = await eventCount(app.runtime);
      const report = await app.runtime.jobs.expiry({ atLocalHour: null });
      assert.deepEqual(report, { job: 'expiry', ran: true, changed: 0 });
      await settle(app.runtime);
      assert.equal(await eventCount(app.runtime), eventsBefore);
      assert.equal((await member(idle.id)).balance, 150);
    });

    it('expires the balance of a member idle for 31 days, with a ledger row naming the policy', async () => {
      app.clock.set(new Date(t0.getTime() + 31 * dayMs));
      const report = await app.runtime.jobs.expiry({ atLocalHour: null });
      assert.deepEqual(report, { job: 'expiry', ran: true, changed: 1 });
      await settle(app.runtime);

      const expired = await member(idle.id);
      assert.equal(expired.balance, 0);
      assert.equal(expired.lifetime_points, 150);
      const rows = await ledger(idle.id);
      assert.deepEqual(
        rows.map((row) => row.kind),
        ['expired', 'awarded'],
      );
      const row = rows[0]!;
      assert.equal(row.points, -150);
      assert.equal(row.balance, 0);
      assert.match(row.reason, /points expiry policy/);
      assert.match(row.reason, /30 days/);
    });

    it('keeps the points of a member active at day 20 and of one active at day 30', async () => {
      assert.equal((await member(active.id)).balance, 100);
      assert.deepEqual(
        (await ledger(active.id)).map((row) => row.kind),
        ['awarded', 'awarded'],
      );
      assert.equal((await member(fresh.id)).balance, 5);
    });

    it('expires once when run twice', async () => {
      const eventsBefore = await eventCount(app.runtime);
      const report = await app.runtime.jobs.expiry({ atLocalHour: null });
      assert.deepEqual(report, { job: 'expiry', ran: true, changed: 0 });
      await settle(app.runtime);
      assert.equal(await eventCount(app.runtime), eventsBefore);
      assert.equal((await ledger(idle.id)).filter((row) => row.kind === 'expired').length, 1);
    });

    it('expires the day-20 member once its own window has passed', async () => {
      app.clock.set(new Date(t0.getTime() + 50 * dayMs + 1));
      const report = await app.runtime.jobs.expiry({ atLocalHour: null });
      assert.deepEqual(report, { job: 'expiry', ran: true, changed: 1 });
      await settle(app.runtime);
      assert.equal((await member(active.id)).balance, 0);
      assert.equal((await member(fresh.id)).balance, 5);
    });

    it('sweeps only programs whose local hour matches atLocalHour', async () => {
      const at = new Date(t0.getTime() + 100 * dayMs);
      at.setUTCHours(1, 30, 0, 0);
      app.clock.set(at);
      const berlin = (
        await createProgram(api, { points_expiry_days: 1, timezone: 'Europe/Berlin' })
      ).id;
      const someone = await createMember(api, berlin);
      await award(api, berlin, someone.id, 10);
      app.clock.set(new Date(at.getTime() + 2 * dayMs));
      await settle(app.runtime);
      // 01:30 UTC is 03:30 in Berlin in April (CEST, UTC+2): swept at hour 3, not 2; the UTC
      // program (hour 1) is not swept at all, or fresh's day-30 points would expire too.
      assert.equal(
        (await app.runtime.jobs.expiry({ atLocalHour: 2 })).changed,
        0,
        'not at 02:xx local time',
      );
      assert.equal((await app.runtime.jobs.expiry({ atLocalHour: 3 })).changed, 1);
    });
  });

  describe('leaderboard period close', () => {
    let programId: string;
    let board: LeaderboardView;
    const p = (path: string) => `/v1/programs/${programId}${path}`;
    /** Wednesday 16 April 2025, 09:00 UTC: the week of 14-21 April. */
    const monday = '2025-04-14T00:00:00.000Z';
    const nextMonday = '2025-04-21T00:00:00.000Z';
    const followingMonday = '2025-04-28T00:00:00.000Z';

    before(async () => {
      app.clock.set(new Date('2025-04-16T09:00:00.000Z'));
      programId = (await createProgram(api)).id;
      board = expectStatus(
        await api.post<LeaderboardView & { position: string }>(p('/leaderboards'), {
          name: 'Weekly',
          period: 'weekly',
        }),
        201,
      ).body;
      assert.equal(board.period_start, monday);
      assert.equal(board.period_end, nextMonday);
      await settle(app.runtime);
    });

    it('closes the ended week, keeps its standings and opens an empty new week', async () => {
      const [x, y, z] = [
        await createMember(api, programId),
        await createMember(api, programId),
        await createMember(api, programId),
      ];
      await award(api, programId, x.id, 50);
      await award(api, programId, y.id, 80);
      await award(api, programId, z.id, 50);
      const expected = [
        { position: 1, member_id: y.id, points: 80 },
        { position: 2, member_id: x.id, points: 50 },
        { position: 2, member_id: z.id, points: 50 },
      ];
      await waitFor('the standings to count all three awards', async () => {
        const standings = (await api.get<Standings>(p(`/leaderboards/${board.id}/standings`))).body;
        return standings.standings.length === 3;
      });
      await settle(app.runtime);
      assert.deepEqual(
        expectStatus(await api.get<Standings>(p(`/leaderboards/${board.id}/standings`)), 200).body
          .standings,
        expected,
      );

      const notYet = await app.runtime.jobs.leaderboards();
      assert.deepEqual(notYet, { job: 'leaderboards', ran: true, changed: 0 });

      app.clock.set(new Date('2025-04-21T00:30:00.000Z'));
      const report = await app.runtime.jobs.leaderboards();
      assert.deepEqual(report, { job: 'leaderboards', ran: true, changed: 1 });
      await settle(app.runtime);

      const periods = expectStatus(
        await api.get<Periods>(p(`/leaderboards/${board.id}/periods`)),
        200,
      ).body;
      assert.deepEqual(periods.data, [
        {
          period_id: '20250414T000000.000Z',
          period_start: monday,
          period_end: nextMonday,
          standings: expected,
          corrections: [],
        },
      ]);
      const current = expectStatus(
        await api.get<Standings>(p(`/leaderboards/${board.id}/standings`)),
        200,
      ).body;
      assert.deepEqual(current.standings, []);
      assert.equal(current.period_start, nextMonday);
      assert.equal(current.period_end, followingMonday);
    });

    it('changes nothing when run again', async () => {
      const eventsBefore = await eventCount(app.runtime);
      const report = await app.runtime.jobs.leaderboards();
      assert.deepEqual(report, { job: 'leaderboards', ran: true, changed: 0 });
      await settle(app.runtime);
      assert.equal(await eventCount(app.runtime), eventsBefore);
      const periods = expectStatus(
        await api.get<Periods>(p(`/leaderboards/${board.id}/periods`)),
        200,
      ).body;
      assert.equal(periods.data.length, 1);
    });

    it('counts an award after the rollover in the new week only', async () => {
      const late = await createMember(api, programId);
      await award(api, programId, late.id, 7);
      await waitFor('the new week to count the award', async () => {
        const standings = (await api.get<Standings>(p(`/leaderboards/${board.id}/standings`))).body;
        return standings.standings.length === 1;
      });
      const current = expectStatus(
        await api.get<Standings>(p(`/leaderboards/${board.id}/standings`)),
        200,
      ).body;
      assert.deepEqual(current.standings, [{ position: 1, member_id: late.id, points: 7 }]);
      const periods = expectStatus(
        await api.get<Periods>(p(`/leaderboards/${board.id}/periods`)),
        200,
      ).body;
      assert.equal(
        periods.data[0]!.standings.some((s) => s.member_id === late.id),
        false,
      );
    });
  });
});
