import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { loadConfig } from '../../../adapters/config.ts';
import { startRuntime, type Runtime } from '../../../adapters/runtime.ts';
import { comparePositions, type Position } from '../../../domain/recordedEvent.ts';
import {
  award,
  createMember,
  createProgram,
  expectStatus,
  settle,
  startTestApp,
  type ErrorBody,
  type LeaderboardView,
  type Periods,
  type Standings,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';

/** The week of 3-10 March 2025 (UTC) ends at midnight; the test starts 30 s before. */
const weekStart = '2025-03-03T00:00:00.000Z';
const weekEnd = '2025-03-10T00:00:00.000Z';
const nextWeekEnd = '2025-03-17T00:00:00.000Z';
const beforeMidnight = new Date(Date.parse(weekEnd) - 30_000);
const afterMidnight = new Date(Date.parse(weekEnd) + 30_000);

const lastPosition = async (app: TestApp): Promise<Position> => {
  const result = await sql<{ commit: string; prepare: string }>`
    select transaction_id::text as commit, global_position::text as prepare from incentable_events
    order by transaction_id desc, global_position desc limit 1`.execute(app.runtime.database.db);
  const row = result.rows[0]!;
  return { commit: BigInt(row.commit), prepare: BigInt(row.prepare) };
};

describe(
  'a leaderboard score counts in the period of the award',
  { skip: skipWithoutPostgres },
  () => {
    let app: TestApp;
    let programId: string;
    let board: LeaderboardView;
    let ann: string;
    /** Runs the policy reactor once the first process's has been stopped: a reactor that lags. */
    let late: Runtime | null = null;
    const p = (path: string) => `/v1/programs/${programId}${path}`;

    /** Until the reactor that now runs has handled everything, and the read models after it. */
    const reactorSettled = async () => {
      for (let i = 0; i < 3; i++) {
        const target = await lastPosition(app);
        await waitFor('the late reactor to catch up', () => {
          const checkpoint = late!.policies!.checkpoint();
          return checkpoint !== null && comparePositions(checkpoint, target) >= 0;
        });
        await app.runtime.readModels!.caughtUp();
      }
    };

    before(async () => {
      // A manual close waits READ_WAIT_TIMEOUT_MS for the reactor: kept short here.
      app = await startTestApp({ now: beforeMidnight, env: { READ_WAIT_TIMEOUT_MS: '300' } });
      programId = (await createProgram(app.api)).id;
      board = expectStatus(
        await app.api.post<LeaderboardView>(p('/leaderboards'), {
          name: 'Weekly',
          period: 'weekly',
        }),
        201,
      ).body;
      assert.equal(board.period_end, weekEnd);
      ann = (await createMember(app.api, programId)).id;
      await settle(app.runtime);
      // The reactor stops: the award below is recorded at 23:59:30 and scored only after midnight.
      await app.runtime.policies!.stop();
      await award(app.api, programId, ann, 100);
      app.clock.set(afterMidnight);
    });
    after(async () => {
      await late?.stop();
      await app?.stop();
    });

    it('does not close the period on schedule while an award from before its end is unscored', async () => {
      const report = await app.runtime.jobs.leaderboards({ waitMs: 200 });
      assert.deepEqual(report, {
        job: 'leaderboards',
        ran: true,
        changed: 0,
        deferred: 'scores_pending',
      });
      const view = expectStatus(
        await app.api.get<LeaderboardView>(p(`/leaderboards/${board.id}`)),
        200,
      ).body;
      assert.equal(view.period_end, weekEnd);
    });

    it('refuses a manual close meanwhile with a 503 to retry', async () => {
      const response = await app.api.post<ErrorBody>(
        p(`/leaderboards/${board.id}/close-period`),
        {},
      );
      assert.equal(response.status, 503);
      assert.equal(response.body.error?.code, 'scores_pending');
      assert.equal(response.headers.get('retry-after'), '1');
      const periods = expectStatus(
        await app.api.get<Periods>(p(`/leaderboards/${board.id}/periods`)),
        200,
      ).body;
      assert.deepEqual(periods.data, []);
    });

    it('scores the award in its own period when the reactor handles it after midnight', async () => {
      late = await startRuntime(
        loadConfig({
          DATABASE_URL: app.database.url,
          PORT: '0',
          ADMIN_API_KEY: app.rootKey,
          LOG_LEVEL: 'silent',
          NODE_ENV: 'test',
          ROLES: 'projector',
        }),
        { clock: app.clock, scheduler: false, listen: false },
      );
      await reactorSettled();
      const standings = expectStatus(
        await app.api.get<Standings>(p(`/leaderboards/${board.id}/standings`)),
        200,
      ).body;
      assert.equal(standings.period_end, weekEnd, 'the reactor did not roll the week over');
      assert.deepEqual(standings.standings, [{ position: 1, member_id: ann, points: 100 }]);
    });

    it('then closes the period on schedule, with the award in it', async () => {
      const report = await app.runtime.jobs.leaderboards({ waitMs: 5_000 });
      assert.deepEqual(report, { job: 'leaderboards', ran: true, changed: 1 });
      await reactorSettled();
      const periods = expectStatus(
        await app.api.get<Periods>(p(`/leaderboards/${board.id}/periods`)),
        200,
      ).body;
      assert.deepEqual(periods.data, [
        {
          period_id: '20250303T000000.000Z',
          period_start: weekStart,
          period_end: weekEnd,
          standings: [{ position: 1, member_id: ann, points: 100 }],
          corrections: [],
        },
      ]);
    });

    it('counts an award after midnight in the next period', async () => {
      await award(app.api, programId, ann, 7);
      await reactorSettled();
      const standings = expectStatus(
        await app.api.get<Standings>(p(`/leaderboards/${board.id}/standings`)),
        200,
      ).body;
      assert.equal(standings.period_start, weekEnd);
      assert.equal(standings.period_end, nextWeekEnd);
      assert.deepEqual(standings.standings, [{ position: 1, member_id: ann, points: 7 }]);
    });
  },
);
