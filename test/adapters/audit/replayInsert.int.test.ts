import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { createReadModelSchema } from '../../../adapters/audit/replay.ts';
import { insertRows } from '../../../adapters/audit/replayProjector.ts';
import { openDatabase, type DatabaseHandle } from '../../../adapters/db/database.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  type TestDatabase,
} from '../../support/postgres.ts';

const total = 2500;

/**
 * Ledger rows as a replay writes them, from a generator (the rows are never all in one array),
 * their event ids descending so that the order of `seq` is not also the order of the key.
 */
function* ledger() {
  for (let i = 0; i < total; i++)
    yield {
      event_id: `00000000-0000-4000-8000-${(total - i).toString(16).padStart(12, '0')}`,
      program_id: 'prg_insert',
      member_id: `mem_${i % 7}`,
      transaction_id: `txn_${i}`,
      kind: 'awarded',
      points: i,
      reason: 'sale',
      reference: null,
      balance_after: i * 2,
      occurred_at: '2026-01-05T08:00:00.000Z',
    };
}

/** Orders, for the column types a ledger row lacks: jsonb, and text with quotes and newlines. */
function* orders() {
  for (let i = 0; i < total; i++)
    yield {
      program_id: 'prg_insert',
      order_id: `ord_${String(i).padStart(5, '0')}`,
      member_id: `mem_${i % 7}`,
      reward_id: 'rwd_1',
      reward_name: `Mug "${i}", blue\nlarge`,
      kind: 'physical',
      points_spent: i,
      status: i % 2 === 0 ? 'shipped' : 'redeemed',
      carrier: i % 2 === 0 ? 'DHL' : null,
      tracking_number: null,
      history:
        i % 2 === 0
          ? [
              { status: 'redeemed', at: '2026-01-05T08:00:00.000Z' },
              { status: 'shipped', at: '2026-01-06T09:30:00.250Z' },
            ]
          : [{ status: 'redeemed', at: '2026-01-05T08:00:00.000Z' }],
      created_at: '2026-01-05T08:00:00.000Z',
      updated_at: i % 2 === 0 ? '2026-01-06T09:30:00.250Z' : '2026-01-05T08:00:00.000Z',
    };
}

const insertSuite = (name: string, open: () => Promise<DatabaseHandle>) => {
  describe(`replay inserts on ${name}`, () => {
    let handle: DatabaseHandle;
    before(async () => {
      handle = await open();
      await createReadModelSchema(handle.db, 'replay_insert', { indexes: false });
      const db = handle.db as Kysely<unknown>;
      await insertRows(db, 'replay_insert', 'rm_ledger', ledger());
      await insertRows(db, 'replay_insert', 'rm_orders', orders());
    });
    after(async () => {
      await handle?.close();
    });

    it('writes every row, over several statements, in the order given', async () => {
      const result = await sql<{ event_id: string }>`
        select event_id::text from replay_insert.rm_ledger order by seq`.execute(handle.db);
      assert.deepEqual(
        result.rows.map((row) => row.event_id),
        [...ledger()].map((row) => row.event_id),
      );
    });

    it('keeps every value as given: text with quotes and line breaks, nulls, jsonb, instants', async () => {
      const result = await sql<{
        order_id: string;
        reward_name: string;
        points_spent: number;
        carrier: string | null;
        tracking_number: string | null;
        history: unknown;
        created_ms: number;
        updated_ms: number;
      }>`
        select order_id, reward_name, points_spent, carrier, tracking_number, history,
          (extract(epoch from created_at) * 1000)::float8 as created_ms,
          (extract(epoch from updated_at) * 1000)::float8 as updated_ms
        from replay_insert.rm_orders order by order_id`.execute(handle.db);
      assert.deepEqual(
        result.rows,
        [...orders()].map((row) => ({
          order_id: row.order_id,
          reward_name: row.reward_name,
          points_spent: row.points_spent,
          carrier: row.carrier,
          tracking_number: row.tracking_number,
          history: row.history,
          created_ms: Date.parse(row.created_at),
          updated_ms: Date.parse(row.updated_at),
        })),
      );
    });
  });
};

describe('replay inserts', () => {
  describe('on PostgreSQL', { skip: skipWithoutPostgres }, () => {
    let database: TestDatabase;
    insertSuite('PostgreSQL', async () => {
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
  insertSuite('PGlite', () => openDatabase({ kind: 'pglite', dataDir: null }));
});
