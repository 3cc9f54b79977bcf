import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { createProgram, startTestApp, type TestApp } from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';

/**
 * While the pool does not keep up (a query has waited past DATABASE_QUEUE_TIMEOUT_MS), requests
 * are refused at once with 503 `overloaded` instead of queueing for the pool's 5 s connect
 * timeout: queued requests would hold the projectors and /readyz behind them (seen in the
 * reliability soak: a restart met by 500 retried awards was not ready within a minute).
 */
describe('load shedding', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let admin: pg.Client;
  const lockKey = 424_242;

  before(async () => {
    app = await startTestApp({
      env: { DATABASE_POOL_SIZE: '2', DATABASE_QUEUE_TIMEOUT_MS: '200' },
    });
    admin = new pg.Client({ connectionString: app.database.url });
    await admin.connect();
  });
  after(async () => {
    await admin?.end();
    await app?.stop();
  });

  it('answers 503 overloaded with Retry-After while a query has waited too long for the pool, then serves again', async () => {
    const program = await createProgram(app.api);
    await admin.query('select pg_advisory_lock($1)', [lockKey]);
    // Each blocks on the admin's lock while holding a pooled connection, or waits for one.
    const blocked = Array.from({ length: 6 }, () =>
      sql`select pg_advisory_lock_shared(${lockKey}), pg_advisory_unlock_shared(${lockKey})`
        .execute(app.runtime.database.db)
        .then(
          () => null,
          (error: unknown) => error,
        ),
    );
    // Both pooled connections wait on the lock; the other four queries wait for a connection.
    await waitFor(
      'the pool to be held',
      async () =>
        (
          await admin.query<{ n: number }>(
            `select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted`,
          )
        ).rows[0]!.n === 2,
    );

    // The four queued queries have waited past DATABASE_QUEUE_TIMEOUT_MS.
    await waitFor('the queue to be old', () => app.runtime.database.queueDelayMs() > 250);
    const shed = await app.api.get(`/v1/programs/${program.id}`);
    assert.equal(shed.status, 503, shed.text);
    assert.equal(shed.body.error?.code, 'overloaded');
    assert.equal(shed.headers.get('retry-after'), '1');
    // Liveness needs no database.
    assert.equal((await fetch(`${app.url}/healthz`)).status, 200);

    await admin.query('select pg_advisory_unlock($1)', [lockKey]);
    assert.deepEqual(await Promise.all(blocked), Array(6).fill(null));
    await waitFor(
      'the API to serve again',
      async () => (await app.api.get(`/v1/programs/${program.id}`)).status === 200,
    );
  });
});
