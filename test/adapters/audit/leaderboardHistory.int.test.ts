import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { replayReadModels, type RowDifference } from '../../../adapters/audit/replay.ts';
import { streams } from '../../../application/incentives.ts';
import { loadConfig } from '../../../adapters/config.ts';
import type { NewEvent } from '../../../application/ports.ts';
import { startRuntime, type Runtime } from '../../../adapters/runtime.ts';
import type { LeaderboardEvent } from '../../../domain/leaderboard.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  type TestDatabase,
} from '../../support/postgres.ts';
import { testClock } from '../../support/api.ts';

type Ranked = { position: number; memberId: string; points: number };

/** The ranking every version of the domain used: points down, ties share, first to reach first. */
const ranked = (scores: Map<string, { points: number; seq: number }>): Ranked[] => {
  const sorted = [...scores].sort(([, a], [, b]) => b.points - a.points || a.seq - b.seq);
  const out: Ranked[] = [];
  sorted.forEach(([memberId, { points }], i) => {
    const previous = out[i - 1];
    out.push({
      memberId,
      points,
      position: previous && previous.points === points ? previous.position : i + 1,
    });
  });
  return out;
};

/**
 * A leaderboard history as the domain recorded it before issue 14: a board without `topN`, and
 * for every award a PositionChanged for the scorer and for every member whose place it changed.
 */
const legacyHistory = (leaderboardId: string, members: string[]) => {
  let clock = Date.parse('2025-03-03T09:00:00Z');
  const at = () => new Date((clock += 60_000)).toISOString();
  const events: LeaderboardEvent[] = [
    {
      type: 'LeaderboardCreated',
      data: {
        leaderboardId,
        name: 'Legacy board',
        period: 'weekly',
        timezone: 'UTC',
        periodStart: '2025-03-03T00:00:00.000Z',
        periodEnd: '2025-03-10T00:00:00.000Z',
        at: at(),
      },
    },
  ];
  let scores = new Map<string, { points: number; seq: number }>();
  let seq = 0;
  let txn = 0;
  const scoreOnce = (memberId: string, points: number) => {
    const time = at();
    const before = new Map(ranked(scores).map((s) => [s.memberId, s.position]));
    const total = (scores.get(memberId)?.points ?? 0) + points;
    scores.set(memberId, { points: total, seq: seq++ });
    events.push({
      type: 'ScoreRecorded',
      data: {
        leaderboardId,
        memberId,
        points,
        score: total,
        transactionId: `txn_legacy${txn++}`,
        at: time,
      },
    });
    const after = ranked(scores);
    const scorer = after.find((s) => s.memberId === memberId)!;
    const moved = after.filter(
      (s) => s.memberId !== memberId && (before.get(s.memberId) ?? null) !== s.position,
    );
    for (const s of [scorer, ...moved]) {
      events.push({
        type: 'PositionChanged',
        data: {
          leaderboardId,
          memberId: s.memberId,
          previousPosition: before.get(s.memberId) ?? null,
          newPosition: s.position,
          points: s.points,
          at: time,
        },
      });
    }
  };
  // Ascending, with a tie: every award re-ranks everyone below the scorer.
  members.forEach((member, i) => scoreOnce(member, 10 * (i + 1) - (i === 4 ? 10 : 0)));
  scoreOnce(members[0]!, 5);
  const final = ranked(scores);
  const endedAt = '2025-03-06T12:00:00.000Z';
  events.push(
    {
      type: 'PeriodEnded',
      data: {
        leaderboardId,
        periodStart: '2025-03-03T00:00:00.000Z',
        periodEnd: endedAt,
        standings: final.slice(0, 10),
        at: endedAt,
      },
    },
    {
      type: 'PeriodOpened',
      data: {
        leaderboardId,
        periodStart: endedAt,
        periodEnd: '2025-03-10T00:00:00.000Z',
        at: endedAt,
      },
    },
  );
  scores = new Map();
  members.slice(0, 6).forEach((member, i) => scoreOnce(member, 100 - 10 * i));
  return { events, final, current: ranked(scores) };
};

describe('a leaderboard history recorded before issue 14', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  let runtime: Runtime;
  let programId: string;
  const leaderboardId = 'lb_legacy0000000000000';
  const members = Array.from({ length: 14 }, (_, i) => `mem_legacy${String(i).padStart(12, '0')}`);
  let current: Ranked[];
  let final: Ranked[];
  let positionChanges: number;

  before(async () => {
    database = await createTestDatabase();
    runtime = await startRuntime(
      loadConfig({ DATABASE_URL: database.url, ROLES: 'api,projector', LOG_LEVEL: 'silent' }),
      { clock: testClock(new Date('2025-03-03T08:00:00Z')), scheduler: false, listen: false },
    );
    const created = await runtime.incentives.createProgram(
      {
        name: 'Legacy',
        tiers: [],
        tierBasis: 'lifetime',
        pointsExpiryDays: null,
        timezone: 'UTC',
        notificationEmail: 'ops@example.com',
      },
      { programId: null, actor: 'key_test', correlationId: 'legacy', causationId: null },
    );
    assert.ok(created.ok);
    const first = created.value.events[0]!;
    assert.equal(first.type, 'ProgramCreated');
    programId = first.type === 'ProgramCreated' ? first.data.programId : '';
    const history = legacyHistory(leaderboardId, members);
    current = history.current;
    final = history.final;
    positionChanges = history.events.filter((e) => e.type === 'PositionChanged').length;
    const recorded: NewEvent[] = history.events.map((event) => ({
      id: randomUUID(),
      type: event.type,
      data: event.data,
      metadata: {
        programId,
        correlationId: 'legacy',
        causationId: null,
        actor: 'system:policies',
        recordedAt: event.data.at,
      },
    }));
    await runtime.store.append(
      streams.leaderboard(programId, leaderboardId),
      recorded,
      'no_stream',
    );
    await runtime.readModels!.caughtUp();
  });
  after(async () => {
    await runtime?.stop();
    await database?.drop();
  });

  it('holds a PositionChanged for every member each award moved', () => {
    assert.ok(positionChanges > 60, `${positionChanges} PositionChanged`);
  });

  it('projects the board with a top N of 10 and its standings ranked', async () => {
    const board = await runtime.queries.leaderboard(programId, leaderboardId);
    assert.equal(board?.top_n, 10);
    assert.deepEqual(
      await runtime.queries.standings(leaderboardId),
      current.map((s) => ({ position: s.position, member_id: s.memberId, points: s.points })),
    );
  });

  it('keeps the whole final ranking of its ended period, though the event holds ten', async () => {
    const page = await runtime.queries.periodStandings(leaderboardId, '2025-03-03T00:00:00.000Z', {
      limit: 50,
    });
    assert.equal(final.length, 14);
    assert.deepEqual(
      page.data,
      final.map((s) => ({ position: s.position, member_id: s.memberId, points: s.points })),
    );
    assert.equal(page.next_cursor, null);
  });

  for (const engine of ['batched', 'projector'] as const) {
    it(`replays to the live read models with zero differences (${engine} engine)`, async () => {
      const differences: RowDifference[] = [];
      const report = await replayReadModels(runtime.database.db, {
        verify: true,
        engine,
        onDifference: (d) => {
          differences.push(d);
        },
      });
      assert.deepEqual(differences, []);
      assert.equal(report.totalDifferences, 0);
    });
  }
});
