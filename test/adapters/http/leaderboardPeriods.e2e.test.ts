import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { catalogueEntryOf } from '../../../delivery/catalogue.ts';
import { validate } from '../../delivery/jsonSchemaSubset.ts';
import {
  award,
  createMember,
  createProgram,
  eventCount,
  expectStatus,
  settle,
  startTestApp,
  type ErrorBody,
  type LeaderboardView,
  type Standing,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';
import { startReceiver, type Receiver } from '../../support/receiver.ts';

type Ended = {
  period_id: string;
  period_start: string;
  period_end: string;
  standings: Standing[];
};
type Closed = {
  leaderboard_id: string;
  ended: Ended | null;
  current_period: { period_start: string; period_end: string };
  position?: string;
};
type StandingsPage = {
  leaderboard_id: string;
  period_id: string;
  period_start: string;
  period_end: string;
  data: Standing[];
  next_cursor: string | null;
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

/** Wednesday 5 March 2025, in the UTC week of 3-10 March. */
const t0 = new Date('2025-03-05T12:00:00.000Z');

describe('the final standings of a leaderboard period', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let receiver: Receiver;
  let programId: string;
  let board: LeaderboardView;
  let expected: Standing[];
  let closed: Closed;
  const p = (path: string) => `/v1/programs/${programId}${path}`;
  const endedWebhooks = () =>
    receiver
      .at('/ended')
      .map((w) => (JSON.parse(w.body) as { data: Record<string, unknown> }).data);

  before(async () => {
    receiver = await startReceiver();
    app = await startTestApp({ now: t0 });
    const { api } = app;
    programId = (await createProgram(api)).id;
    board = expectStatus(
      await api.post<LeaderboardView>(p('/leaderboards'), { name: 'Weekly', period: 'weekly' }),
      201,
    ).body;
    expectStatus(
      await api.post(p('/webhook-endpoints'), {
        url: `${receiver.origin}/ended`,
        events: ['leaderboard.period_ended'],
      }),
      201,
    );
    await settle(app.runtime);

    // 25 members in threes of equal points, awarded from the lowest up, so among equals the
    // member awarded first is listed first; then one member catches up with the top three.
    const members: string[] = [];
    for (let i = 0; i < 25; i++) members.push((await createMember(api, programId)).id);
    const reached = new Map<string, { points: number; order: number }>();
    let order = 0;
    const give = async (member: string, points: number) => {
      await award(api, programId, member, points);
      reached.set(member, { points: (reached.get(member)?.points ?? 0) + points, order: order++ });
    };
    for (let i = 24; i >= 0; i--) await give(members[i]!, 500 - 20 * Math.floor(i / 3));
    await give(members[3]!, 20); // 480 + 20: level with the three on 500, reached last
    const sorted = [...reached].sort(([, a], [, b]) => b.points - a.points || a.order - b.order);
    expected = [];
    sorted.forEach(([member_id, { points }], i) => {
      const previous = expected[i - 1];
      expected.push({
        position: previous?.points === points ? previous.position : i + 1,
        member_id,
        points,
      });
    });
    assert.deepEqual(
      expected.slice(0, 5).map((s) => s.position),
      [1, 1, 1, 1, 5],
    );
    await settle(app.runtime);
    closed = expectStatus(
      await api.post<Closed>(p(`/leaderboards/${board.id}/close-period`), {}),
      200,
    ).body;
    await deliveriesSettled(app);
  });
  after(async () => {
    await app?.stop();
    await receiver?.close();
  });

  it('answers the close with the top ten and the id of the ended period', () => {
    assert.deepEqual(closed.ended, {
      period_id: '20250303T000000.000Z',
      period_start: '2025-03-03T00:00:00.000Z',
      period_end: t0.toISOString(),
      standings: expected.slice(0, 10),
    });
  });

  it('lists the period with its id and top ten', async () => {
    const periods = expectStatus(
      await app.api.get<{ data: Ended[] }>(p(`/leaderboards/${board.id}/periods`)),
      200,
    ).body;
    assert.deepEqual(periods.data, [{ ...closed.ended, corrections: [] }]);
  });

  it('keeps all 25 final standings, read page by page in ranking order', async () => {
    const pages: StandingsPage[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '?limit=7' : `?limit=7&cursor=${cursor}`;
      const page: StandingsPage = expectStatus(
        await app.api.get<StandingsPage>(
          p(`/leaderboards/${board.id}/periods/${closed.ended!.period_id}/standings${query}`),
        ),
        200,
      ).body;
      pages.push(page);
      cursor = page.next_cursor;
    } while (cursor !== null && pages.length < 10);
    assert.deepEqual(
      pages.map((page) => page.data.length),
      [7, 7, 7, 4],
    );
    assert.deepEqual(
      pages.flatMap((page) => page.data),
      expected,
    );
    assert.deepEqual(
      {
        leaderboard_id: pages[0]!.leaderboard_id,
        period_id: pages[0]!.period_id,
        period_start: pages[0]!.period_start,
        period_end: pages[0]!.period_end,
      },
      {
        leaderboard_id: board.id,
        period_id: '20250303T000000.000Z',
        period_start: '2025-03-03T00:00:00.000Z',
        period_end: t0.toISOString(),
      },
    );
    const whole = expectStatus(
      await app.api.get<StandingsPage>(
        p(`/leaderboards/${board.id}/periods/${closed.ended!.period_id}/standings?limit=200`),
      ),
      200,
    ).body;
    assert.deepEqual(whole.data, expected);
    assert.equal(whole.next_cursor, null);
  });

  it('refuses a malformed page or period id with a 400 naming it, and an unknown period with a 404', async () => {
    const path = (periodId: string, query = '') =>
      p(`/leaderboards/${board.id}/periods/${periodId}/standings${query}`);
    const cases: [string, number, string, string | undefined][] = [
      [path('20250303T000000.000Z', '?limit=0'), 400, 'validation_error', 'limit'],
      [path('20250303T000000.000Z', '?limit=201'), 400, 'validation_error', 'limit'],
      [path('20250303T000000.000Z', '?cursor=abc'), 400, 'validation_error', 'cursor'],
      [path('20250303T000000.000Z', '?tier=Gold'), 400, 'validation_error', 'tier'],
      [path('2025-03-03'), 400, 'validation_error', 'period_id'],
      [path('20251303T000000.000Z'), 400, 'validation_error', 'period_id'],
      [path('20250310T000000.000Z'), 404, 'period_not_found', 'period_id'],
    ];
    for (const [url, status, code, field] of cases) {
      const response = await app.api.get<ErrorBody>(url);
      assert.equal(response.status, status, url);
      assert.equal(response.body.error?.code, code, url);
      assert.equal(response.body.error?.field, field, url);
    }
  });

  it('sends period_ended with the documented top ten and the period_id that holds the rest', () => {
    const got = endedWebhooks();
    assert.equal(got.length, 1);
    const data = got[0]!;
    assert.deepEqual(data, {
      leaderboard_id: board.id,
      period_start: '2025-03-03T00:00:00Z',
      period_end: '2025-03-05T12:00:00Z',
      standings: expected.slice(0, 10),
      period_id: '20250303T000000.000Z',
    });
    assert.deepEqual(validate(catalogueEntryOf('leaderboard.period_ended').schema, data), []);
  });

  describe('closed again', () => {
    it('within a minute and with no score between, answers as the first close and emits nothing', async () => {
      const events = await eventCount(app.runtime);
      app.clock.advance(10_000);
      const again = expectStatus(
        await app.api.post<Closed>(p(`/leaderboards/${board.id}/close-period`), {}),
        200,
      ).body;
      assert.deepEqual(again.ended, closed.ended);
      assert.deepEqual(again.current_period, closed.current_period);
      await deliveriesSettled(app);
      assert.equal(await eventCount(app.runtime), events);
      assert.equal(endedWebhooks().length, 1);
      const periods = expectStatus(
        await app.api.get<{ data: Ended[] }>(p(`/leaderboards/${board.id}/periods`)),
        200,
      ).body;
      assert.equal(periods.data.length, 1);
    });

    it('after a score, ends the period that holds it', async () => {
      const late = await createMember(app.api, programId);
      await award(app.api, programId, late.id, 7);
      await settle(app.runtime);
      app.clock.advance(5_000);
      const again = expectStatus(
        await app.api.post<Closed>(p(`/leaderboards/${board.id}/close-period`), {}),
        200,
      ).body;
      assert.deepEqual(again.ended?.standings, [{ position: 1, member_id: late.id, points: 7 }]);
      assert.equal(again.ended?.period_start, t0.toISOString());
      assert.equal(again.ended?.period_id, t0.toISOString().replace(/[-:]/g, ''));
      await deliveriesSettled(app);
      assert.equal(endedWebhooks().length, 2);
    });

    it('a minute later, ends the empty period', async () => {
      app.clock.advance(60_000);
      const again = expectStatus(
        await app.api.post<Closed>(p(`/leaderboards/${board.id}/close-period`), {}),
        200,
      ).body;
      assert.deepEqual(again.ended?.standings, []);
      await deliveriesSettled(app);
      assert.equal(endedWebhooks().length, 3);
    });
  });
});
