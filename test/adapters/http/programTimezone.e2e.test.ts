import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  createProgram,
  expectStatus,
  settle,
  startTestApp,
  type LeaderboardView,
  type TestApp,
  replayDifferences,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';
import { startReceiver, type Receiver } from '../../support/receiver.ts';

type Webhook = { type: string; data: Record<string, unknown> };

// Wednesday; the UTC week runs from Monday 2025-03-31 to Monday 2025-04-07.
const t0 = new Date('2025-04-02T09:00:00.000Z');

describe("a program's timezone change", { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let receiver: Receiver;
  let programId: string;
  let board: LeaderboardView;
  const p = (path: string) => `/v1/programs/${programId}${path}`;
  const view = async () => {
    await settle(app.runtime);
    return expectStatus(await app.api.get<LeaderboardView>(p(`/leaderboards/${board.id}`)), 200)
      .body;
  };
  const rollOverAt = async (iso: string) => {
    app.clock.set(new Date(iso));
    const report = await app.runtime.jobs.leaderboards();
    assert.equal(report.changed, 1);
    return view();
  };

  before(async () => {
    receiver = await startReceiver();
    app = await startTestApp({ now: t0 });
    programId = (await createProgram(app.api, { timezone: 'UTC' })).id;
    expectStatus(
      await app.api.post(p('/webhook-endpoints'), { url: `${receiver.origin}/all`, events: ['*'] }),
      201,
    );
    board = expectStatus(
      await app.api.post<LeaderboardView>(p('/leaderboards'), { name: 'Week', period: 'weekly' }),
      201,
    ).body;
    await settle(app.runtime);
  });

  after(async () => {
    await app?.stop();
    await receiver?.close();
  });

  it('keeps the current period and cuts the ones after it in the new zone', async () => {
    expectStatus(await app.api.patch(p(''), { timezone: 'Asia/Tokyo' }), 200);
    const changed = await view();
    assert.equal(changed.timezone, 'Asia/Tokyo');
    assert.equal(changed.period_start, '2025-03-31T00:00:00.000Z');
    assert.equal(
      changed.period_end,
      '2025-04-07T00:00:00.000Z',
      'the current period keeps its end',
    );

    // Tokyo's week of Monday 7 April runs to 00:00 on the 14th there, 15:00 UTC on the 13th; the
    // first period in the new zone begins where the old one ended.
    const next = await rollOverAt('2025-04-07T00:00:30.000Z');
    assert.equal(next.period_start, '2025-04-07T00:00:00.000Z');
    assert.equal(next.period_end, '2025-04-13T15:00:00.000Z');
    const after = await rollOverAt('2025-04-13T15:00:30.000Z');
    assert.equal(after.period_start, '2025-04-13T15:00:00.000Z');
    assert.equal(after.period_end, '2025-04-20T15:00:00.000Z');

    await app.runtime.webhookProjection!.caughtUp();
    const periodsEnded = () =>
      receiver
        .at('/all')
        .map((w) => JSON.parse(w.body) as Webhook)
        .filter((w) => w.type === 'leaderboard.period_ended');
    // Both, in whichever order they arrived: deliveries run side by side.
    await waitFor('both period_ended webhooks', () => periodsEnded().length >= 2);
    const ended = periodsEnded()
      .map((w) => [w.data.period_start, w.data.period_end])
      .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    assert.deepEqual(ended, [
      ['2025-03-31T00:00:00Z', '2025-04-07T00:00:00Z'],
      ['2025-04-07T00:00:00Z', '2025-04-13T15:00:00Z'],
    ]);
  });

  it('replays to the live read models with zero differences', async () => {
    const { differences, total } = await replayDifferences(app);
    assert.deepEqual(differences, []);
    assert.equal(total, 0);
  });
});
