import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Kysely, Migrator, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { migrations } from '../../../adapters/db/migrations.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  type TestDatabase,
} from '../../support/postgres.ts';

/** Migration 011 on a database that already has orders: they keep the order they were placed in. */
describe('migration 011_orders_listing', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  let db: Kysely<unknown>;
  const migrator = (upTo: string) =>
    new Migrator({
      db,
      provider: {
        getMigrations: () =>
          Promise.resolve(
            Object.fromEntries(Object.entries(migrations).filter(([n]) => n <= upTo)),
          ),
      },
      migrationTableName: 'incentable_migrations',
      migrationLockTableName: 'incentable_migrations_lock',
    });
  const order = (id: string, createdAt: string) =>
    sql`insert into rm_orders (program_id, order_id, member_id, reward_id, reward_name, kind,
      points_spent, status, carrier, tracking_number, history, created_at, updated_at)
      values ('prg_1', ${id}, 'mem_1', 'rwd_1', 'Mug', 'physical', 100, 'redeemed', null, null,
      '[]'::jsonb, ${createdAt}::timestamptz, ${createdAt}::timestamptz)`.execute(db);

  before(async () => {
    database = await createTestDatabase();
    db = new Kysely<unknown>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: database.url }) }),
    });
  });

  after(async () => {
    await db?.destroy();
    await database?.drop();
  });

  it('numbers existing orders by when they were placed, and new ones after them', async () => {
    const before011 = await migrator('010_leaderboard_read_models').migrateToLatest();
    assert.equal(before011.error, undefined);
    // Inserted out of placement order, two in one millisecond (ordered by id then).
    await order('ord_c', '2026-01-03T00:00:00Z');
    await order('ord_a', '2026-01-01T00:00:00Z');
    await order('ord_bb', '2026-01-02T00:00:00Z');
    await order('ord_ba', '2026-01-02T00:00:00Z');
    const latest = await migrator('999').migrateToLatest();
    assert.equal(latest.error, undefined);
    await order('ord_d', '2025-12-31T00:00:00Z');
    const rows = await sql<{ order_id: string; seq: string }>`
      select order_id, seq::text from rm_orders order by seq`.execute(db);
    assert.deepEqual(
      rows.rows.map((r) => [r.order_id, r.seq]),
      [
        ['ord_a', '1'],
        ['ord_ba', '2'],
        ['ord_bb', '3'],
        ['ord_c', '4'],
        ['ord_d', '5'],
      ],
    );
  });
});
