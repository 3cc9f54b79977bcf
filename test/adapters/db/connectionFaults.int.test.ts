import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { openDatabase, type DatabaseHandle } from '../../../adapters/db/database.ts';
import { isDatabaseUnavailable } from '../../../adapters/db/unavailable.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  waitFor,
  type TestDatabase,
} from '../../support/postgres.ts';

/** What a restart or failover does to a connection: its backend is terminated. */
const terminate = (admin: pg.Client, pid: number) =>
  admin.query('select pg_terminate_backend($1)', [pid]);

describe('database connections under faults', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  let handle: DatabaseHandle;
  let admin: pg.Client;
  const reported: string[] = [];

  before(async () => {
    database = await createTestDatabase();
    handle = await openDatabase(
      { kind: 'postgres', url: database.url, poolSize: 4 },
      { onConnectionError: (_error, where) => reported.push(where) },
    );
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
  });

  after(async () => {
    await admin.end();
    await handle.close();
    await database.drop();
  });

  it('survives a checked-out connection cut between statements, and reports it', async () => {
    reported.length = 0;
    let failure: unknown = null;
    await handle.db
      .transaction()
      .execute(async (tx) => {
        const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(tx);
        // The client is checked out and idle: pg-pool has taken its own error listener off it.
        await terminate(admin, rows[0]!.pid);
        await waitFor('the cut connection to be reported', () =>
          reported.includes('pool connection'),
        );
        await sql`select 1`.execute(tx);
      })
      .catch((error: unknown) => {
        failure = error;
      });
    assert.ok(isDatabaseUnavailable(failure), `unexpected failure: ${String(failure)}`);
    const { rows } = await sql<{ one: number }>`select 1 as one`.execute(handle.db);
    assert.equal(rows[0]?.one, 1);
  });

  it('fails a running query whose backend is terminated as "unavailable"', async () => {
    // The handler is attached at once: the cut connection's error can arrive before the answer
    // to pg_terminate_backend does, and an unhandled rejection would fail the run.
    const running = sql`select pg_sleep(30)`.execute(handle.db).then(
      () => assert.fail('the query should have failed'),
      (error: unknown) => error,
    );
    let pid = 0;
    await waitFor('the query to run', async () => {
      const { rows } = await admin.query<{ pid: number }>(
        `select pid from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'`,
      );
      pid = rows[0]?.pid ?? 0;
      return pid !== 0;
    });
    await terminate(admin, pid);
    const error = await running;
    assert.equal(isDatabaseUnavailable(error), true, String(error));
  });

  it('listens again after its connection is terminated, and wakes its handler', async () => {
    const listener = handle.openListener();
    let wakes = 0;
    await listener.listen('incentable_fault_test', () => wakes++);
    assert.equal(listener.connected(), true);
    const listening = async () =>
      (
        await admin.query<{ pid: number }>(
          `select pid from pg_stat_activity where query like 'listen %incentable_fault_test%'`,
        )
      ).rows.map((row) => row.pid);
    const [pid] = await listening();
    assert.ok(pid, 'a LISTEN session exists');
    await terminate(admin, pid);
    await waitFor('the listener to reconnect', async () => {
      const pids = await listening();
      return listener.connected() && pids.length === 1 && pids[0] !== pid;
    });
    // Missed notifications are made up for with one wake-up per handler.
    await waitFor('the reconnect wake-up', () => wakes >= 1);
    const before = wakes;
    await admin.query(`notify incentable_fault_test`);
    await waitFor('a notification on the new connection', () => wakes > before);
    await listener.close();
  });
});
