import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import {
  award,
  createMember,
  createProgram,
  expectStatus,
  settle,
  startTestApp,
  type ErrorBody,
  type LeaderboardView,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';
import { startReceiver, type Receiver } from '../../support/receiver.ts';

type PositionChanged = {
  leaderboard_id: string;
  member_id: string;
  previous_position: number | null;
  new_position: number;
  points: number;
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

describe('leaderboard.position_changed webhooks', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let receiver: Receiver;
  let programId: string;
  const p = (path: string) => `/v1/programs/${programId}${path}`;

  before(async () => {
    receiver = await startReceiver();
    app = await startTestApp();
    programId = (await createProgram(app.api)).id;
  });
  after(async () => {
    await app?.stop();
    await receiver?.close();
  });

  describe('twelve ascending awards, each reaching #1', () => {
    let wide: LeaderboardView;
    let narrow: LeaderboardView;
    let members: string[];
    let received: PositionChanged[];

    before(async () => {
      const { api } = app;
      wide = expectStatus(
        await api.post<LeaderboardView>(p('/leaderboards'), { name: 'Top ten', period: 'monthly' }),
        201,
      ).body;
      narrow = expectStatus(
        await api.post<LeaderboardView>(p('/leaderboards'), {
          name: 'Podium',
          period: 'monthly',
          top_n: 3,
        }),
        201,
      ).body;
      expectStatus(
        await api.post(p('/webhook-endpoints'), {
          url: `${receiver.origin}/positions`,
          events: ['leaderboard.position_changed'],
        }),
        201,
      );
      await settle(app.runtime); // the policy reactor knows both boards before the first award
      members = [];
      for (let i = 0; i < 12; i++) members.push((await createMember(api, programId)).id);
      // Each award is higher than every score before it: the scorer enters at #1 and everyone
      // else moves down one place.
      for (const [i, member] of members.entries())
        await award(api, programId, member, 10 * (i + 1));
      await deliveriesSettled(app);
      received = receiver
        .at('/positions')
        .map((w) => (JSON.parse(w.body) as { data: PositionChanged }).data);
    });

    it('tells the scorer on every award, and others only when they drop out of the top ten', () => {
      const onWide = received.filter((d) => d.leaderboard_id === wide.id);
      const scorers = members.map((member, i) => ({
        leaderboard_id: wide.id,
        member_id: member,
        previous_position: null,
        new_position: 1,
        points: 10 * (i + 1),
      }));
      // The 11th and 12th awards push the member at #10 to #11.
      const droppedOut = [
        {
          leaderboard_id: wide.id,
          member_id: members[0]!,
          previous_position: 10,
          new_position: 11,
          points: 10,
        },
        {
          leaderboard_id: wide.id,
          member_id: members[1]!,
          previous_position: 10,
          new_position: 11,
          points: 20,
        },
      ];
      const byJson = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));
      assert.equal(onWide.length, 14, 'twelve scorers and two members leaving the top ten, not 78');
      assert.deepEqual([...onWide].sort(byJson), [...scorers, ...droppedOut].sort(byJson));
    });

    it("follows each board's own top_n", () => {
      const onNarrow = received.filter((d) => d.leaderboard_id === narrow.id);
      // Twelve scorers; awards 4 to 12 each push the member at #3 to #4.
      assert.equal(onNarrow.length, 12 + 9);
      const dropped = onNarrow.filter((d) => d.previous_position !== null);
      assert.deepEqual(
        dropped.map((d) => [d.member_id, d.previous_position, d.new_position]).sort(),
        members
          .slice(0, 9)
          .map((m) => [m, 3, 4])
          .sort(),
      );
    });

    it('still ranks every member in the standings', async () => {
      const standings = expectStatus(
        await app.api.get<{ standings: { position: number; member_id: string; points: number }[] }>(
          p(`/leaderboards/${wide.id}/standings`),
        ),
        200,
      ).body.standings;
      assert.deepEqual(
        standings,
        [...members].reverse().map((member, i) => ({
          position: i + 1,
          member_id: member,
          points: 10 * (12 - i),
        })),
      );
    });

    it('shows top_n on the board', async () => {
      assert.equal(wide.top_n, 10);
      assert.equal(narrow.top_n, 3);
      const read = expectStatus(
        await app.api.get<LeaderboardView>(p(`/leaderboards/${narrow.id}`)),
        200,
      ).body;
      assert.equal(read.top_n, 3);
    });
  });

  it('refuses a top_n outside 1-100 with a 400 naming top_n', async () => {
    for (const topN of [0, 101, 2.5, '10', null, -1]) {
      const response = await app.api.post<ErrorBody>(p('/leaderboards'), {
        name: 'Bad',
        period: 'weekly',
        top_n: topN,
      });
      assert.equal(response.status, 400, `top_n ${JSON.stringify(topN)}`);
      assert.equal(response.body.error?.code, 'validation_error');
      assert.equal(response.body.error?.field, 'top_n');
    }
  });
});
