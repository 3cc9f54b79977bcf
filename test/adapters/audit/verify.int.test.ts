import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { sql } from 'kysely';
import { verifyChains, type ChainBreak } from '../../../adapters/audit/verify.ts';
import { openDatabase, type DatabaseHandle } from '../../../adapters/db/database.ts';
import { PostgresEventStore } from '../../../adapters/eventstore/postgresEventStore.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  type TestDatabase,
} from '../../support/postgres.ts';

/**
 * The breaks found at the stream heads (incentable_streams), on a small history: the scripted
 * audit test covers altered, swapped and deleted events; these are the kinds it does not reach.
 */
const verifySuite = (name: string, open: () => Promise<DatabaseHandle>) => {
  describe(`audit verify on ${name}`, () => {
    let handle: DatabaseHandle;
    let streams: string[];
    before(async () => {
      handle = await open();
    });
    after(async () => {
      await handle?.close();
    });
    beforeEach(async () => {
      await sql`truncate incentable_events, incentable_streams`.execute(handle.db);
      const store = new PostgresEventStore(handle);
      streams = ['a', 'b', 'c'].map((s) => `points-prg_v-${s}`);
      for (const stream of streams)
        for (let i = 0; i < 4; i++)
          await store.append(
            stream,
            [
              {
                id: randomUUID(),
                type: 'Noted',
                data: { i, note: 'quoted "text"', big: 1e21 },
                metadata: {
                  programId: 'prg_v',
                  correlationId: 'c',
                  causationId: null,
                  actor: 'key_v',
                  recordedAt: '2026-01-01T00:00:00.000Z',
                },
              },
            ],
            'any',
          );
      await store.close();
    });

    const breaks = async (): Promise<{ ok: boolean; found: ChainBreak[]; events: number }> => {
      const found: ChainBreak[] = [];
      const report = await verifyChains(handle.db, { onBreak: (b) => void found.push(b) });
      assert.equal(report.breaks, found.length);
      return { ok: report.ok, found, events: report.events };
    };
    const where = (b: ChainBreak) => ({ stream: b.stream, revision: b.revision, kind: b.kind });

    it('finds a clean history clean, counting every stream and event', async () => {
      const report = await verifyChains(handle.db);
      assert.deepEqual(
        { ok: report.ok, streams: report.streams, events: report.events },
        { ok: true, streams: 3, events: 12 },
      );
    });

    it("reports a head whose hash is not its last event's", async () => {
      await sql`update incentable_streams set last_hash = repeat('0', 64)
        where stream_name = ${streams[1]!}`.execute(handle.db);
      const { ok, found } = await breaks();
      assert.equal(ok, false);
      assert.deepEqual(found.map(where), [
        { stream: streams[1], revision: '3', kind: 'head_mismatch' },
      ]);
    });

    it('reports events without a head row', async () => {
      await sql`delete from incentable_streams where stream_name = ${streams[2]!}`.execute(
        handle.db,
      );
      const { found } = await breaks();
      assert.deepEqual(found.map(where), [
        { stream: streams[2], revision: '4', kind: 'missing_head' },
      ]);
    });

    it('reports a head whose every event is gone', async () => {
      await sql`delete from incentable_events where stream_name = ${streams[0]!}`.execute(
        handle.db,
      );
      const { found, events } = await breaks();
      assert.equal(events, 8);
      assert.deepEqual(found.map(where), [
        { stream: streams[0], revision: '0', kind: 'missing_tail' },
      ]);
      assert.equal(found[0]!.links, 4);
    });

    it('reports a first event deleted as a gap at revision 0', async () => {
      await sql`delete from incentable_events
        where stream_name = ${streams[1]!} and stream_revision = 0`.execute(handle.db);
      const { found } = await breaks();
      assert.deepEqual(found.map(where), [
        { stream: streams[1], revision: '0', kind: 'revision_gap' },
      ]);
    });
  });
};

describe('audit verify at the stream heads', () => {
  describe('on PostgreSQL', { skip: skipWithoutPostgres }, () => {
    let database: TestDatabase;
    verifySuite('PostgreSQL', async () => {
      database = await createTestDatabase();
      const handle = await openDatabase({ kind: 'postgres', url: database.url });
      return {
        ...handle,
        close: async () => {
          await handle.close();
          await database.drop();
        },
      };
    });
  });
  verifySuite('PGlite', () => openDatabase({ kind: 'pglite', dataDir: null }));
});
