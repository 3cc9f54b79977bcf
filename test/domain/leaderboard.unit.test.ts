import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  leaderboard,
  standingsOf,
  type LeaderboardCommand,
  type LeaderboardEvent,
} from '../../domain/leaderboard.ts';
import type { Period } from '../../domain/periods.ts';
import { eventsOf, refusalOf, specOf } from './given.ts';

const { given, stateAfter } = specOf(leaderboard);
// Wednesday 2024-06-12; the UTC week runs from Monday 2024-06-10 to Monday 2024-06-17.
const now = new Date('2024-06-12T10:00:00.000Z');
const at = now.toISOString();
const weekStart = '2024-06-10T00:00:00.000Z';
const weekEnd = '2024-06-17T00:00:00.000Z';

const create = (
  overrides: { name?: string; period?: Period; timezone?: string; topN?: number } = {},
): LeaderboardCommand => ({
  type: 'CreateLeaderboard',
  data: {
    leaderboardId: 'lb_1',
    name: 'June sprint',
    period: 'weekly',
    timezone: 'UTC',
    topN: 10,
    ...overrides,
    now,
  },
});
let txn = 0;
const score = (
  memberId: string,
  points: number,
  /** `awardedAt` defaults to `now`: an award scored the moment it is made. */
  extra: { transactionId?: string; now?: Date; awardedAt?: Date } = {},
): LeaderboardCommand => ({
  type: 'RecordScore',
  data: {
    leaderboardId: 'lb_1',
    memberId,
    points,
    transactionId: extra.transactionId ?? `txn_${++txn}`,
    awardedAt: extra.awardedAt ?? extra.now ?? now,
    now: extra.now ?? now,
  },
});
const close = (when: Date, force = false): LeaderboardCommand => ({
  type: 'ClosePeriod',
  data: { leaderboardId: 'lb_1', now: when, force },
});

const created: LeaderboardEvent = {
  type: 'LeaderboardCreated',
  data: {
    leaderboardId: 'lb_1',
    name: 'June sprint',
    period: 'weekly',
    timezone: 'UTC',
    topN: 10,
    periodStart: weekStart,
    periodEnd: weekEnd,
    at,
  },
};

/** Runs commands in order against the history so far and returns the whole history. */
const historyOf = (...commands: LeaderboardCommand[]): LeaderboardEvent[] =>
  commands.reduce<LeaderboardEvent[]>(
    (events, command) => [...events, ...eventsOf(given(events).when(command))],
    [],
  );

const positionChanged = (
  memberId: string,
  previousPosition: number | null,
  newPosition: number,
  points: number,
  when = at,
): LeaderboardEvent => ({
  type: 'PositionChanged',
  data: { leaderboardId: 'lb_1', memberId, previousPosition, newPosition, points, at: when },
});
const recorded = (
  memberId: string,
  points: number,
  total: number,
  transactionId: string,
  when = at,
): LeaderboardEvent => ({
  type: 'ScoreRecorded',
  data: { leaderboardId: 'lb_1', memberId, points, score: total, transactionId, at: when },
});

describe('leaderboard', () => {
  describe('with no history', () => {
    it('creates the board with the period containing now', () => {
      assert.deepEqual(given().when(create()), { ok: true, events: [created] });
    });

    it('cuts the first period in the board time zone', () => {
      const [event] = eventsOf(
        given().when(create({ period: 'monthly', timezone: 'Europe/Berlin' })),
      );
      assert.equal(event?.type, 'LeaderboardCreated');
      assert.deepEqual(
        event?.type === 'LeaderboardCreated' && [event.data.periodStart, event.data.periodEnd],
        ['2024-05-31T22:00:00.000Z', '2024-06-30T22:00:00.000Z'],
      );
    });

    it('refuses a top N outside 1-100', () => {
      for (const topN of [0, 101, 2.5, -1, Number.NaN]) {
        assert.deepEqual(refusalOf(given().when(create({ topN }))), {
          rejection: 'invalid_top_n',
          field: 'top_n',
        });
      }
      assert.equal(given().when(create({ topN: 1 })).ok, true);
      assert.equal(given().when(create({ topN: 100 })).ok, true);
    });

    it('refuses an invalid name, period or time zone', () => {
      assert.deepEqual(refusalOf(given().when(create({ name: '' }))), {
        rejection: 'invalid_name',
        field: 'name',
      });
      assert.deepEqual(refusalOf(given().when(create({ period: 'daily' as never }))), {
        rejection: 'invalid_period',
        field: 'period',
      });
      assert.deepEqual(refusalOf(given().when(create({ timezone: 'Berlin' }))), {
        rejection: 'invalid_timezone',
        field: 'timezone',
      });
    });

    it('refuses scores and closing before it exists', () => {
      assert.deepEqual(refusalOf(given().when(score('mem_a', 10))), {
        rejection: 'leaderboard_not_found',
        field: 'leaderboard_id',
      });
      assert.deepEqual(refusalOf(given().when(close(now, true))), {
        rejection: 'leaderboard_not_found',
        field: 'leaderboard_id',
      });
    });
  });

  describe('once created', () => {
    it('refuses to create it again', () => {
      assert.deepEqual(refusalOf(given([created]).when(create())), {
        rejection: 'leaderboard_exists',
        field: 'leaderboard_id',
      });
    });

    it('records a newcomer with no previous position', () => {
      assert.deepEqual(given([created]).when(score('mem_a', 50, { transactionId: 'txn_a' })), {
        ok: true,
        events: [recorded('mem_a', 50, 50, 'txn_a'), positionChanged('mem_a', null, 1, 50)],
      });
    });

    it('refuses invalid points', () => {
      for (const points of [0, -1, 2.5, 1_000_000_001]) {
        assert.deepEqual(refusalOf(given([created]).when(score('mem_a', points))), {
          rejection: 'invalid_points',
          field: 'points',
        });
      }
    });

    it('counts a transaction once', () => {
      const history = historyOf(create(), score('mem_a', 50, { transactionId: 'txn_dup' }));
      assert.deepEqual(given(history).when(score('mem_a', 50, { transactionId: 'txn_dup' })), {
        ok: true,
        events: [],
      });
    });
  });

  describe('ranking', () => {
    it('shares positions between equal scores: 1, 2, 2, 4', () => {
      const history = historyOf(
        create(),
        score('mem_a', 100),
        score('mem_b', 50),
        score('mem_c', 50),
        score('mem_d', 10),
      );
      assert.deepEqual(standingsOf(stateAfter(history)), [
        { position: 1, memberId: 'mem_a', points: 100 },
        { position: 2, memberId: 'mem_b', points: 50 },
        { position: 2, memberId: 'mem_c', points: 50 },
        { position: 4, memberId: 'mem_d', points: 10 },
      ]);
    });

    it('lists first, among equals, the member who reached the score first', () => {
      const history = historyOf(
        create(),
        score('mem_a', 30),
        score('mem_b', 50),
        score('mem_a', 20),
      );
      assert.deepEqual(standingsOf(stateAfter(history)), [
        { position: 1, memberId: 'mem_b', points: 50 },
        { position: 1, memberId: 'mem_a', points: 50 },
      ]);
    });

    it('reports the scorer, and nobody it moved down within the top N', () => {
      const history = historyOf(
        create(),
        score('mem_a', 100),
        score('mem_b', 50),
        score('mem_c', 50),
        score('mem_d', 10),
      );
      // mem_d jumps from 4th to 1st with 110: everyone above moves down one, inside the top 10.
      assert.deepEqual(given(history).when(score('mem_d', 100, { transactionId: 'txn_jump' })), {
        ok: true,
        events: [recorded('mem_d', 100, 110, 'txn_jump'), positionChanged('mem_d', 4, 1, 110)],
      });
    });

    it('reports the members an award pushes out of the top N, ties alike', () => {
      const history = historyOf(
        create({ topN: 2 }),
        score('mem_a', 100),
        score('mem_b', 50),
        score('mem_c', 50),
        score('mem_d', 10),
      );
      // mem_d's 110 puts mem_a at 2 (still in the top 2) and mem_b, mem_c from 2 to 3 (out).
      assert.deepEqual(given(history).when(score('mem_d', 100, { transactionId: 'txn_jump' })), {
        ok: true,
        events: [
          recorded('mem_d', 100, 110, 'txn_jump'),
          positionChanged('mem_d', 4, 1, 110),
          positionChanged('mem_b', 2, 3, 50),
          positionChanged('mem_c', 2, 3, 50),
        ],
      });
    });

    it('says nothing of members moved further down outside the top N', () => {
      const history = historyOf(
        create({ topN: 1 }),
        score('mem_a', 100),
        score('mem_b', 50),
        score('mem_c', 40),
      );
      assert.deepEqual(given(history).when(score('mem_d', 60, { transactionId: 'txn_mid' })), {
        ok: true,
        events: [recorded('mem_d', 60, 60, 'txn_mid'), positionChanged('mem_d', null, 2, 60)],
      });
    });

    it('keeps the top N of a board created before top_n existed at 10', () => {
      const { topN: _topN, ...old } = created.data as { topN?: number };
      const legacy: LeaderboardEvent = {
        type: 'LeaderboardCreated',
        data: old as Extract<LeaderboardEvent, { type: 'LeaderboardCreated' }>['data'],
      };
      const state = stateAfter([legacy]);
      assert.equal(state.exists && state.topN, 10);
    });

    it('moves nobody else when the scorer stays below them', () => {
      const history = historyOf(create(), score('mem_a', 100), score('mem_b', 50));
      assert.deepEqual(given(history).when(score('mem_b', 10, { transactionId: 'txn_x' })), {
        ok: true,
        events: [recorded('mem_b', 10, 60, 'txn_x'), positionChanged('mem_b', 2, 2, 60)],
      });
    });

    it('moves a member tied with the scorer when the scorer breaks the tie', () => {
      const history = historyOf(create({ topN: 1 }), score('mem_a', 50), score('mem_b', 50));
      assert.deepEqual(given(history).when(score('mem_b', 1, { transactionId: 'txn_y' })), {
        ok: true,
        events: [
          recorded('mem_b', 1, 51, 'txn_y'),
          positionChanged('mem_b', 1, 1, 51),
          positionChanged('mem_a', 1, 2, 50),
        ],
      });
    });

    it('moves members below a newcomer who enters above them', () => {
      const history = historyOf(create({ topN: 2 }), score('mem_a', 100), score('mem_b', 50));
      assert.deepEqual(given(history).when(score('mem_c', 70, { transactionId: 'txn_z' })), {
        ok: true,
        events: [
          recorded('mem_c', 70, 70, 'txn_z'),
          positionChanged('mem_c', null, 2, 70),
          positionChanged('mem_b', 2, 3, 50),
        ],
      });
    });
  });

  describe('periods', () => {
    const afterEnd = new Date('2024-06-18T09:00:00.000Z');
    const scores = (count: number) =>
      Array.from({ length: count }, (_, i) => score(`mem_${String(i).padStart(2, '0')}`, 100 - i));

    it('ends the period at its natural end with the top 10 and opens the one containing now', () => {
      const history = historyOf(create(), ...scores(12));
      const decision = given(history).when(close(afterEnd));
      assert.deepEqual(decision, {
        ok: true,
        events: [
          {
            type: 'PeriodEnded',
            data: {
              leaderboardId: 'lb_1',
              periodStart: weekStart,
              periodEnd: weekEnd,
              standings: Array.from({ length: 10 }, (_, i) => ({
                position: i + 1,
                memberId: `mem_${String(i).padStart(2, '0')}`,
                points: 100 - i,
              })),
              at: afterEnd.toISOString(),
            },
          },
          {
            type: 'PeriodOpened',
            data: {
              leaderboardId: 'lb_1',
              periodStart: weekEnd,
              periodEnd: '2024-06-24T00:00:00.000Z',
              at: afterEnd.toISOString(),
            },
          },
        ],
      });
    });

    it('starts the new period with empty standings', () => {
      const history = historyOf(create(), ...scores(3), close(afterEnd));
      assert.deepEqual(standingsOf(stateAfter(history)), []);
    });

    it('skips periods nobody scored in', () => {
      const muchLater = new Date('2024-07-03T12:00:00.000Z');
      const [, opened] = eventsOf(given(historyOf(create())).when(close(muchLater)));
      assert.deepEqual(
        opened?.type === 'PeriodOpened' && [opened.data.periodStart, opened.data.periodEnd],
        ['2024-07-01T00:00:00.000Z', '2024-07-08T00:00:00.000Z'],
      );
    });

    it('does nothing before the natural end unless forced', () => {
      assert.deepEqual(given(historyOf(create())).when(close(now)), { ok: true, events: [] });
    });

    it('ends a forced period now and opens one that runs to the natural end', () => {
      const history = historyOf(create(), score('mem_a', 5));
      assert.deepEqual(given(history).when(close(now, true)), {
        ok: true,
        events: [
          {
            type: 'PeriodEnded',
            data: {
              leaderboardId: 'lb_1',
              periodStart: weekStart,
              periodEnd: at,
              standings: [{ position: 1, memberId: 'mem_a', points: 5 }],
              at,
            },
          },
          {
            type: 'PeriodOpened',
            data: { leaderboardId: 'lb_1', periodStart: at, periodEnd: weekEnd, at },
          },
        ],
      });
    });

    describe('closed by force twice', () => {
      const inAMinute = (ms: number) => new Date(now.getTime() + ms);
      const closedOnce = () => historyOf(create(), score('mem_a', 5), close(now, true));

      it('repeats the first close within a minute when nobody scored since: nothing ends', () => {
        assert.deepEqual(given(closedOnce()).when(close(inAMinute(59_999), true)), {
          ok: true,
          events: [],
        });
      });

      it('remembers the period the first close ended, for the repeat to answer with', () => {
        const state = stateAfter(closedOnce());
        assert.deepEqual(state.exists && state.lastEnded, {
          periodStart: weekStart,
          periodEnd: at,
          standings: [{ position: 1, memberId: 'mem_a', points: 5 }],
          at,
        });
      });

      it('repeats it even once the short period left open has reached its natural end', () => {
        const lateInWeek = new Date(Date.parse(weekEnd) - 10_000);
        const history = historyOf(create(), score('mem_a', 5), close(lateInWeek, true));
        assert.deepEqual(given(history).when(close(new Date(Date.parse(weekEnd) + 5_000), true)), {
          ok: true,
          events: [],
        });
      });

      it('ends the period again after a score, or after a minute', () => {
        const scored = [...closedOnce(), ...eventsOf(given(closedOnce()).when(score('mem_b', 1)))];
        assert.equal(
          eventsOf(given(scored).when(close(inAMinute(1_000), true)))[0]?.type,
          'PeriodEnded',
        );
        const [ended] = eventsOf(given(closedOnce()).when(close(inAMinute(60_000), true)));
        assert.deepEqual(ended?.type === 'PeriodEnded' && ended.data.standings, []);
      });

      it('never ends a period at or before its start', () => {
        const history = historyOf(create(), score('mem_a', 5), close(now, true), score('mem_b', 1));
        assert.deepEqual(given(history).when(close(now, true)), { ok: true, events: [] });
      });
    });

    it('rolls the period over before recording a score that arrives after its end', () => {
      const history = historyOf(create(), score('mem_a', 80));
      const when = afterEnd.toISOString();
      assert.deepEqual(
        given(history).when(score('mem_b', 10, { transactionId: 'txn_late', now: afterEnd })),
        {
          ok: true,
          events: [
            {
              type: 'PeriodEnded',
              data: {
                leaderboardId: 'lb_1',
                periodStart: weekStart,
                periodEnd: weekEnd,
                standings: [{ position: 1, memberId: 'mem_a', points: 80 }],
                at: when,
              },
            },
            {
              type: 'PeriodOpened',
              data: {
                leaderboardId: 'lb_1',
                periodStart: weekEnd,
                periodEnd: '2024-06-24T00:00:00.000Z',
                at: when,
              },
            },
            recorded('mem_b', 10, 10, 'txn_late', when),
            positionChanged('mem_b', null, 1, 10, when),
          ],
        },
      );
    });

    it('rolls over at exactly the period end', () => {
      const history = historyOf(create());
      const [first] = eventsOf(given(history).when(score('mem_a', 1, { now: new Date(weekEnd) })));
      assert.equal(first?.type, 'PeriodEnded');
      const [onlyEvent] = eventsOf(
        given(history).when(score('mem_a', 1, { now: new Date(Date.parse(weekEnd) - 1) })),
      );
      assert.equal(onlyEvent?.type, 'ScoreRecorded');
    });

    it('counts a transaction once, also when it is scored again after its period closed', () => {
      const history = historyOf(create(), score('mem_a', 10, { transactionId: 'txn_same' }));
      assert.deepEqual(
        given(history).when(score('mem_a', 10, { transactionId: 'txn_same', now: afterEnd })),
        { ok: true, events: [] },
      );
      // The reactor handles the award's batch again after a crash, once the period has closed.
      const rolled = historyOf(
        create(),
        score('mem_a', 10, { transactionId: 'txn_other' }),
        close(afterEnd),
      );
      assert.deepEqual(
        given(rolled).when(
          score('mem_a', 10, { transactionId: 'txn_other', awardedAt: now, now: afterEnd }),
        ),
        { ok: true, events: [] },
      );
    });

    describe("scored by a reactor that lags behind the award's own time", () => {
      it('counts an award made before the end in that period, though scored after it', () => {
        const history = historyOf(create(), score('mem_a', 80));
        const beforeEnd = new Date(Date.parse(weekEnd) - 1);
        const when = afterEnd.toISOString();
        assert.deepEqual(
          given(history).when(
            score('mem_b', 10, { transactionId: 'txn_lag', awardedAt: beforeEnd, now: afterEnd }),
          ),
          {
            ok: true,
            events: [
              recorded('mem_b', 10, 10, 'txn_lag', when),
              positionChanged('mem_b', null, 2, 10, when),
            ],
          },
        );
      });

      it('rolls over for an award made after the end into the period containing the award', () => {
        const history = historyOf(create());
        const madeInNextWeek = new Date('2024-06-18T09:00:00.000Z');
        const scoredWeeksLater = new Date('2024-07-03T12:00:00.000Z');
        const [, opened] = eventsOf(
          given(history).when(
            score('mem_a', 1, { awardedAt: madeInNextWeek, now: scoredWeeksLater }),
          ),
        );
        assert.deepEqual(
          opened?.type === 'PeriodOpened' && [opened.data.periodStart, opened.data.periodEnd],
          [weekEnd, '2024-06-24T00:00:00.000Z'],
        );
      });

      it('counts an award whose period was closed before it was scored in the open period', () => {
        const closedEarly = historyOf(create(), score('mem_a', 5), close(now, true));
        const madeBeforeTheClose = new Date(now.getTime() - 1_000);
        const decision = given(closedEarly).when(
          score('mem_b', 3, { transactionId: 'txn_late', awardedAt: madeBeforeTheClose }),
        );
        assert.deepEqual(decision, {
          ok: true,
          events: [recorded('mem_b', 3, 3, 'txn_late'), positionChanged('mem_b', null, 1, 3)],
        });
      });
    });
  });

  describe('after a change of timezone', () => {
    const changeTimezone = (timezone: string): LeaderboardCommand => ({
      type: 'ChangeTimezone',
      data: { leaderboardId: 'lb_1', timezone, now },
    });

    it('records the zone once, and refuses one that is not a zone', () => {
      const history = historyOf(create(), changeTimezone('Asia/Tokyo'));
      assert.deepEqual(history.at(-1), {
        type: 'LeaderboardTimezoneChanged',
        data: { leaderboardId: 'lb_1', timezone: 'Asia/Tokyo', at },
      });
      assert.deepEqual(given(history).when(changeTimezone('Asia/Tokyo')), {
        ok: true,
        events: [],
      });
      assert.deepEqual(refusalOf(given(history).when(changeTimezone('Mars/Olympus'))), {
        rejection: 'invalid_timezone',
        field: 'timezone',
      });
    });

    it('keeps the open period and starts the next where it ends, cut in the new zone', () => {
      const history = historyOf(create(), changeTimezone('Asia/Tokyo'));
      const afterEnd = new Date('2024-06-17T00:00:10.000Z');
      const [ended, opened] = eventsOf(given(history).when(close(afterEnd)));
      assert.equal(ended?.type === 'PeriodEnded' && ended.data.periodEnd, weekEnd);
      // Tokyo's week of 17 June ends at 00:00 on the 24th there: 15:00 UTC on the 23rd.
      assert.deepEqual(
        opened?.type === 'PeriodOpened' && [opened.data.periodStart, opened.data.periodEnd],
        [weekEnd, '2024-06-23T15:00:00.000Z'],
      );
    });
  });
});

describe('leaderboard reversals and withdrawals', () => {
  const reverse = (
    reversalOf: string,
    transactionId = `rev_${reversalOf}`,
  ): LeaderboardCommand => ({
    type: 'ReverseScore',
    data: { leaderboardId: 'lb_1', memberId: 'ignored', transactionId, reversalOf, now },
  });
  const member = (type: 'WithdrawMember' | 'ReinstateMember', memberId: string) =>
    ({ type, data: { leaderboardId: 'lb_1', memberId, now } }) as LeaderboardCommand;
  const history = (...commands: LeaderboardCommand[]) => historyOf(create(), ...commands);

  it('takes a reversed award back from the open period, telling those who move up', () => {
    const events = history(
      score('ann', 500, { transactionId: 't_a' }),
      score('ben', 300, { transactionId: 't_b' }),
    );
    assert.deepEqual(eventsOf(given(events).when(reverse('t_a'))), [
      {
        type: 'ScoreReversed',
        data: {
          leaderboardId: 'lb_1',
          memberId: 'ann',
          points: 500,
          score: 0,
          transactionId: 'rev_t_a',
          reversalOf: 't_a',
          at,
        },
      },
      positionChanged('ann', 1, 2, 0),
      positionChanged('ben', 2, 1, 300),
    ]);
  });

  it('reverses an award once, and ignores one it never counted', () => {
    const events = history(score('ann', 500, { transactionId: 't_a' }));
    const once = [...events, ...eventsOf(given(events).when(reverse('t_a')))];
    assert.deepEqual(eventsOf(given(once).when(reverse('t_a', 'rev_again'))), []);
    assert.deepEqual(eventsOf(given(events).when(reverse('t_elsewhere'))), []);
  });

  it('corrects the ended period that counted the award', () => {
    const events = history(score('ann', 500, { transactionId: 't_a' }), close(new Date(weekEnd)));
    assert.deepEqual(eventsOf(given(events).when(reverse('t_a'))), [
      {
        type: 'PeriodCorrected',
        data: {
          leaderboardId: 'lb_1',
          periodStart: weekStart,
          memberId: 'ann',
          points: 500,
          transactionId: 'rev_t_a',
          reversalOf: 't_a',
          at,
        },
      },
    ]);
  });

  it('withdraws a member from the open period and reinstates their score', () => {
    const events = history(score('ann', 500), score('ben', 300), score('cat', 100));
    const withdrawn = eventsOf(given(events).when(member('WithdrawMember', 'ann')));
    assert.deepEqual(withdrawn, [
      { type: 'MemberWithdrawn', data: { leaderboardId: 'lb_1', memberId: 'ann', score: 500, at } },
      positionChanged('ben', 2, 1, 300),
      positionChanged('cat', 3, 2, 100),
    ]);
    const away = [...events, ...withdrawn];
    assert.deepEqual(
      standingsOf(stateAfter(away)).map((s) => s.memberId),
      ['ben', 'cat'],
    );
    const back = eventsOf(given(away).when(member('ReinstateMember', 'ann')));
    assert.equal(back[0]?.type, 'MemberReinstated');
    assert.deepEqual(
      standingsOf(stateAfter([...away, ...back])).map((s) => [s.memberId, s.points]),
      [
        ['ann', 500],
        ['ben', 300],
        ['cat', 100],
      ],
    );
    assert.deepEqual(eventsOf(given(events).when(member('ReinstateMember', 'ann'))), []);
  });
});
