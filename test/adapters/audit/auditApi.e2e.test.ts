import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import type { ChainBreak, VerifyReport } from '../../../adapters/audit/verify.ts';
import type { ExportedEvent } from '../../../adapters/audit/export.ts';
import { comparePositions, parsePosition } from '../../../domain/recordedEvent.ts';
import {
  apiClient,
  award,
  createMember,
  createProgram,
  expectStatus,
  settle,
  startTestApp,
  type Api,
  type ApiResponse,
  type LedgerRow,
  type MemberView,
  type Page,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';

type EventsPage = { data: ExportedEvent[]; next_position: string | null };
type VerifyLine = { break?: ChainBreak; summary?: VerifyReport; error?: unknown };

const startedAt = new Date('2025-06-02T09:00:00.000Z');
const minuteMs = 60_000;

const assertError = (
  response: ApiResponse<unknown>,
  status: number,
  code: string,
  field?: string,
) => {
  assert.equal(response.status, status, response.text);
  assert.equal(response.body.error?.code, code, response.text);
  if (field !== undefined) assert.equal(response.body.error?.field, field, response.text);
};

const verifyLines = (response: ApiResponse<unknown>): VerifyLine[] =>
  response.text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as VerifyLine);

describe('audit API', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let api: Api;
  let programId: string;
  let otherProgramId: string;
  let memberIds: string[];
  /** When each points movement of the first member was recorded, and its signed points. */
  const movements: { at: Date; points: number }[] = [];
  const p = (path: string) => `/v1/programs/${programId}${path}`;

  /** Every event of the program in the global order, as the database has them. */
  const storedEvents = async (program: string) =>
    (
      await sql<{ event_id: string; stream_name: string; hash: string }>`
        select event_id::text as event_id, stream_name, hash from incentable_events
        where metadata->>'programId' = ${program}
        order by transaction_id, global_position`.execute(app.runtime.database.db)
    ).rows;

  before(async () => {
    app = await startTestApp({ now: startedAt });
    api = app.api;
    programId = (await createProgram(api)).id;
    otherProgramId = (await createProgram(api, { name: 'Other' })).id;
    memberIds = [];
    for (let i = 0; i < 3; i++) {
      app.clock.advance(minuteMs);
      memberIds.push((await createMember(api, programId)).id);
    }
    await createMember(api, otherProgramId);
    const first = memberIds[0]!;
    for (let i = 0; i < 8; i++) {
      app.clock.advance(minuteMs);
      const memberId = memberIds[i % memberIds.length]!;
      if (i % 4 === 3 && memberId === first) {
        expectStatus(
          await api.post(p(`/members/${memberId}/points/deduct`), { points: 30, reason: 'fix' }),
          201,
        );
      } else {
        await award(api, programId, memberId, 100 + i * 10);
      }
      if (memberId === first)
        movements.push({ at: app.clock.now(), points: i % 4 === 3 ? -30 : 100 + i * 10 });
    }
    app.clock.advance(minuteMs);
    expectStatus(
      await api.post(p(`/members/${first}/points/deduct`), { points: 30, reason: 'fix' }),
      201,
    );
    movements.push({ at: app.clock.now(), points: -30 });
    await settle(app.runtime);
  });
  after(async () => {
    await app?.stop();
  });

  describe('GET /audit/events', () => {
    it("lists the program's events in the global order with their metadata and hashes", async () => {
      const page = expectStatus(await api.get<EventsPage>(p('/audit/events?limit=1000')), 200).body;
      const stored = await storedEvents(programId);
      assert.ok(stored.length > 10);
      assert.deepEqual(
        page.data.map((e) => ({ event_id: e.id, stream_name: e.stream, hash: e.hash })),
        stored,
      );
      assert.equal(page.next_position, null);
      for (const [i, event] of page.data.entries()) {
        assert.match(event.hash, /^[0-9a-f]{64}$/);
        const metadata = event.metadata as { programId: string; recordedAt: string };
        assert.equal(metadata.programId, programId);
        assert.equal(event.time, metadata.recordedAt);
        const position = parsePosition(event.position);
        assert.ok(position);
        const previous = page.data[i - 1];
        if (previous)
          assert.equal(comparePositions(parsePosition(previous.position)!, position), -1);
      }
      const registered = page.data.find((e) => e.type === 'MemberRegistered');
      assert.equal((registered?.data as { memberId: string }).memberId, memberIds[0]);
    });

    it('pages with after_position and next_position through exactly the same events', async () => {
      const all = expectStatus(await api.get<EventsPage>(p('/audit/events?limit=1000')), 200).body
        .data;
      const walked: ExportedEvent[] = [];
      let after: string | null = null;
      let pages = 0;
      do {
        const query: string = after === null ? '' : `&after_position=${after}`;
        const page: EventsPage = expectStatus(
          await api.get<EventsPage>(p(`/audit/events?limit=4${query}`)),
          200,
        ).body;
        assert.ok(page.data.length <= 4);
        walked.push(...page.data);
        after = page.next_position;
        if (after !== null) assert.equal(after, page.data.at(-1)!.position);
        pages++;
      } while (after !== null && pages < 100);
      assert.deepEqual(walked, all);
      assert.ok(pages >= Math.ceil(all.length / 4));
    });

    it('filters by one type, a comma list of types, and one stream', async () => {
      const awarded = expectStatus(
        await api.get<EventsPage>(p('/audit/events?limit=1000&type=PointsAwarded')),
        200,
      ).body.data;
      assert.ok(awarded.length >= 6);
      assert.ok(awarded.every((e) => e.type === 'PointsAwarded'));

      const moved = expectStatus(
        await api.get<EventsPage>(p('/audit/events?limit=1000&type=PointsAwarded,PointsDeducted')),
        200,
      ).body.data;
      assert.deepEqual(
        new Set(moved.map((e) => e.type)),
        new Set(['PointsAwarded', 'PointsDeducted']),
      );
      assert.equal(moved.filter((e) => e.type === 'PointsDeducted').length, 2);

      const stream = `points-${programId}-${memberIds[0]}`;
      const ofStream = expectStatus(
        await api.get<EventsPage>(p(`/audit/events?limit=1000&stream=${stream}`)),
        200,
      ).body.data;
      assert.equal(ofStream.length, movements.length);
      assert.ok(ofStream.every((e) => e.stream === stream));
      assert.deepEqual(
        ofStream.map((e) => e.revision),
        ofStream.map((_e, i) => String(i)),
      );
    });

    it("never shows another program's events, even when asked for its stream", async () => {
      const [otherMember] = await storedEvents(otherProgramId);
      const page = expectStatus(
        await api.get<EventsPage>(p(`/audit/events?stream=${otherMember!.stream_name}`)),
        200,
      ).body;
      assert.deepEqual(page.data, []);
    });

    it('answers 400 naming the parameter at fault', async () => {
      for (const [query, field] of [
        ['limit=0', 'limit'],
        ['limit=1001', 'limit'],
        ['limit=ten', 'limit'],
        ['after_position=12', 'after_position'],
        ['after_position=a.b', 'after_position'],
        ['type=Points-Awarded', 'type'],
        ['type=PointsAwarded,', 'type'],
        ['stream=', 'stream'],
        ['colour=red', 'colour'],
      ] as const) {
        assertError(await api.get(p(`/audit/events?${query}`)), 400, 'validation_error', field);
      }
      assertError(
        await api.get('/v1/programs/not-a-program/audit/events'),
        400,
        'validation_error',
        'program_id',
      );
    });

    it("answers 403 to another program's key, and shows that program only its own", async () => {
      const issued = expectStatus(
        await api.post<{ key: string }>(`/v1/programs/${otherProgramId}/api-keys`, {}),
        201,
      ).body;
      const scoped = apiClient(app.url, issued.key);
      assertError(await scoped.get(p('/audit/events')), 403, 'forbidden');
      assertError(await scoped.get(p('/audit/verify')), 403, 'forbidden');
      const own = expectStatus(
        await scoped.get<EventsPage>(`/v1/programs/${otherProgramId}/audit/events`),
        200,
      ).body.data;
      assert.deepEqual(
        own.map((e) => e.id),
        (await storedEvents(otherProgramId)).map((e) => e.event_id),
      );
    });
  });

  describe('GET /audit/verify', () => {
    it("streams a clean summary covering every event of the program's streams", async () => {
      const response = expectStatus(await api.get(p('/audit/verify')), 200);
      assert.equal(response.headers.get('content-type')?.startsWith('application/x-ndjson'), true);
      const lines = verifyLines(response);
      assert.equal(lines.length, 1);
      const summary = lines[0]!.summary!;
      const counted = await sql<{ events: number; streams: number }>`
        select count(*)::int as events, count(distinct stream_name)::int as streams
        from incentable_events where split_part(stream_name, '-', 2) = ${programId}`.execute(
        app.runtime.database.db,
      );
      assert.equal(summary.ok, true);
      assert.equal(summary.breaks, 0);
      assert.equal(summary.events, counted.rows[0]!.events);
      assert.equal(summary.streams, counted.rows[0]!.streams);
    });

    it('reports exactly the stream and revision of a row tampered with in the database', async () => {
      const db = app.runtime.database.db;
      const stream = `points-${programId}-${memberIds[0]}`;
      const original = await sql<{ data: string; hash: string }>`
        select data::text as data, hash from incentable_events
        where stream_name = ${stream} and stream_revision = 1`.execute(db);
      await sql`update incentable_events set data = jsonb_set(data, '{points}', '999999')
        where stream_name = ${stream} and stream_revision = 1`.execute(db);
      try {
        const lines = verifyLines(expectStatus(await api.get(p('/audit/verify')), 200));
        const breaks = lines.flatMap((line) => (line.break ? [line.break] : []));
        assert.deepEqual(
          breaks.map((b) => ({ stream: b.stream, revision: b.revision, kind: b.kind })),
          [{ stream, revision: '1', kind: 'hash_mismatch' }],
        );
        assert.equal(breaks[0]!.foundHash, original.rows[0]!.hash);
        const summary = lines.at(-1)!.summary!;
        assert.equal(summary.ok, false);
        assert.equal(summary.breaks, 1);
        // The other program's chains are not this program's business, and still clean.
        const other = verifyLines(
          expectStatus(await api.get(`/v1/programs/${otherProgramId}/audit/verify`), 200),
        );
        assert.equal(other.at(-1)!.summary!.ok, true);
      } finally {
        await sql`update incentable_events set data = ${original.rows[0]!.data}::jsonb
          where stream_name = ${stream} and stream_revision = 1`.execute(db);
      }
      const again = verifyLines(expectStatus(await api.get(p('/audit/verify')), 200));
      assert.equal(again.at(-1)!.summary!.ok, true);
    });
  });

  describe('GET member ?as_of', () => {
    it('gives the state at that moment: the balance is the sum of the ledger up to it', async () => {
      const memberId = memberIds[0]!;
      const ledger = expectStatus(
        await api.get<Page<LedgerRow & { created_at: string }>>(
          p(`/members/${memberId}/transactions?limit=100`),
        ),
        200,
      ).body.data;
      assert.equal(ledger.length, movements.length);
      const moments = [
        ...movements.map((m) => m.at),
        ...movements.map((m) => new Date(m.at.getTime() + minuteMs / 2)),
      ];
      for (const moment of moments) {
        const sum = ledger
          .filter((row) => Date.parse(row.created_at) <= moment.getTime())
          .reduce((total, row) => total + row.points, 0);
        const expected = movements
          .filter((m) => m.at.getTime() <= moment.getTime())
          .reduce((total, m) => total + m.points, 0);
        assert.equal(sum, expected);
        const past = expectStatus(
          await api.get<MemberView & { as_of: string }>(
            p(`/members/${memberId}?as_of=${moment.toISOString()}`),
          ),
          200,
        ).body;
        assert.equal(past.id, memberId);
        assert.equal(past.balance, sum, `balance at ${moment.toISOString()}`);
        assert.equal(past.as_of, moment.toISOString());
      }
      const live = expectStatus(await api.get<MemberView>(p(`/members/${memberId}`)), 200).body;
      const now = expectStatus(
        await api.get<MemberView>(p(`/members/${memberId}?as_of=${app.clock.now().toISOString()}`)),
        200,
      ).body;
      assert.equal(now.balance, live.balance);
      assert.equal(now.lifetime_points, live.lifetime_points);
      assert.equal(now.tier, live.tier);
    });

    it('answers 404 before the member was registered', async () => {
      assertError(
        await api.get(p(`/members/${memberIds[0]}?as_of=2020-01-01T00:00:00Z`)),
        404,
        'member_not_found',
      );
    });

    it('answers 400 naming as_of when it is not a timestamp', async () => {
      for (const value of ['yesterday', '2025-13-45T99:00:00Z', '']) {
        assertError(
          await api.get(p(`/members/${memberIds[0]}?as_of=${encodeURIComponent(value)}`)),
          400,
          'validation_error',
          'as_of',
        );
      }
    });
  });
});
