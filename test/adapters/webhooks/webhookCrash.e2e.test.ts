import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { verifyWebhook } from '../../../delivery/receiver.ts';
import { apiClient, createProgram, expectStatus, type Api } from '../../support/api.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  waitFor,
  type TestDatabase,
} from '../../support/postgres.ts';
import { headerOf, startReceiver, type Receiver } from '../../support/receiver.ts';
import { listeningUrl, startService, type Service } from '../../support/service.ts';

const endpointCount = 10;
const memberCount = 50;
const awardsPerMember = 10;
const expectedDeliveries = endpointCount * memberCount * awardsPerMember; // 5,000
/**
 * The default lease is 2 x WEBHOOK_TIMEOUT_MS + 5 s. With the timeout at 1 s the rows the killed
 * process held are taken over ~7 s after their lease began: the restarted worker must wait that
 * out, which bounds how long this test runs.
 */
const timeoutMs = 1000;

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', () => resolve()));

describe('webhook delivery across kill -9', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  let db: pg.Client;
  /**
   * One receiver (origin) per endpoint: endpoints sharing an origin share its connection pool,
   * which is a separate finding (webhookSharedOrigin.e2e.test.ts), not what this test is about.
   */
  const receivers: Receiver[] = [];
  let dataDir: string;
  let service: Service | null = null;

  before(async () => {
    database = await createTestDatabase();
    db = new pg.Client({ connectionString: database.url });
    await db.connect();
    dataDir = mkdtempSync(join(tmpdir(), 'incentable-crash-'));
    // A customer's endpoint: 200 after 20-60 ms, so deliveries are still flowing when we kill.
    for (let i = 0; i < endpointCount; i += 1)
      receivers.push(
        await startReceiver(() => ({ status: 200, delayMs: 20 + Math.random() * 40 })),
      );
  });

  after(async () => {
    if (service) {
      service.child.kill('SIGKILL');
      await exited(service.child);
    }
    for (const r of receivers) await r.close();
    await db?.end();
    await database?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('delivers every one of 5,000 deliveries at least once, same id and bytes, after a kill -9 mid-flight', async (t) => {
    const rootKey = randomBytes(24).toString('base64url');
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      DATABASE_URL: database.url,
      PORT: '0',
      HOST: '127.0.0.1',
      ADMIN_API_KEY: rootKey,
      LOG_LEVEL: 'warn',
      DATA_DIR: dataDir,
      WEBHOOK_SECRET_KEY: randomBytes(32).toString('base64'),
      WEBHOOK_TIMEOUT_MS: String(timeoutMs),
      // An attempt that times out on a loaded machine is retried within seconds, not 5 minutes:
      // this test is about the crash, not the schedule.
      WEBHOOK_RETRY_SCHEDULE: '0s,1s,1s,1s,1s',
      // Two in flight per endpoint: ~500 deliveries/s against this receiver, so the kill lands
      // while thousands are still queued or leased.
      WEBHOOK_PER_ENDPOINT_IN_FLIGHT: '2',
    };
    /** Waits for a start to listen and answer /healthz; returns its URL (a new port each start). */
    const up = async (): Promise<string> => {
      const url = await listeningUrl(service!, 60_000);
      await waitFor(
        'the service to answer /healthz',
        async () => (await fetch(`${url}/healthz`).catch(() => null))?.status === 200,
        30_000,
      ).catch((error: unknown) => {
        throw new Error(`service did not start: ${service!.output.join('')}`, { cause: error });
      });
      return url;
    };

    service = startService(env);
    const api: Api = apiClient(await up(), rootKey);

    const program = await createProgram(api);
    const secrets = new Map<string, string>();
    for (let i = 0; i < endpointCount; i += 1) {
      const endpoint = expectStatus(
        await api.post<{ secret: string }>(`/v1/programs/${program.id}/webhook-endpoints`, {
          url: `${receivers[i]!.origin}/hook/${i}`,
          events: ['points.awarded'],
        }),
        201,
      ).body;
      secrets.set(`/hook/${i}`, endpoint.secret);
    }

    // 50 members in parallel, each with 10 sequential awards: 500 events, 5,000 deliveries.
    const transactionIds = new Set<string>();
    await Promise.all(
      Array.from({ length: memberCount }, async (_, m) => {
        const member = expectStatus(
          await api.post<{ id: string }>(`/v1/programs/${program.id}/members`, {
            email: `crash${m}@example.com`,
            name: `Crash ${m}`,
          }),
          201,
        ).body;
        for (let a = 0; a < awardsPerMember; a += 1) {
          const moved = expectStatus(
            await api.post<{ transaction_id: string }>(
              `/v1/programs/${program.id}/members/${member.id}/points/award`,
              { points: 1 + a, reason: `award ${a}` },
            ),
            201,
          ).body;
          transactionIds.add(moved.transaction_id);
        }
      }),
    );
    assert.equal(transactionIds.size, memberCount * awardsPerMember);

    const received = () => receivers.flatMap((r) => r.received);
    const pairs = () => new Set(received().map((r) => `${r.path} ${headerOf(r, 'webhook-id')}`));
    await waitFor('deliveries to be flowing', () => pairs().size >= 1000, 30_000).catch(
      async (error: unknown) => {
        const rows = await db.query(
          `select status, count(*)::int as n from webhook_deliveries group by 1`,
        );
        throw new Error(
          `${received().length} received; rows ${JSON.stringify(rows.rows)}; service said: ${service!.output.join('').slice(-3000)}`,
          { cause: error },
        );
      },
    );
    service.child.kill('SIGKILL');
    await exited(service.child);
    const seenAtKill = pairs().size;
    t.diagnostic(`killed after ${seenAtKill} of ${expectedDeliveries} distinct deliveries arrived`);
    assert.ok(seenAtKill < expectedDeliveries, 'the kill landed while deliveries were in flight');
    const atKill = await db.query<{ status: string; n: number }>(
      `select status, count(*)::int as n from webhook_deliveries group by status order by status`,
    );
    t.diagnostic(`delivery rows at kill: ${JSON.stringify(atKill.rows)}`);
    const unfinished = atKill.rows
      .filter((r) => r.status !== 'delivered')
      .reduce((n, r) => n + r.n, 0);
    const rowsAtKill = atKill.rows.reduce((n, r) => n + r.n, 0);
    assert.ok(
      unfinished > 0 || rowsAtKill < expectedDeliveries,
      'work was left over for the restarted process',
    );

    service = startService(env);
    await up();
    const restartedAt = Date.now();

    await waitFor(
      'every delivery to arrive at least once',
      () => pairs().size >= expectedDeliveries,
      80_000,
    ).catch(async (error: unknown) => {
      const rows = await db.query(
        `select status, count(*)::int as n, min(lease_expires_at) as lease, min(next_attempt_at) as due, max(attempts) as attempts, max(last_error) as err from webhook_deliveries group by 1`,
      );
      const subs = await db.query(`select * from incentable_subscriptions`);
      throw new Error(
        `${pairs().size} distinct of ${received().length} received; rows ${JSON.stringify(rows.rows)}; subs ${JSON.stringify(subs.rows)} service said: ${service!.output.join('').slice(-3000)}`,
        { cause: error },
      );
    });
    await waitFor(
      'every delivery row to be delivered',
      async () => {
        const rows = await db.query<{ n: number }>(
          `select count(*)::int as n from webhook_deliveries where status = 'delivered'`,
        );
        return rows.rows[0]!.n === expectedDeliveries;
      },
      // The rows the killed process had leased are retried only once their lease (~7 s) ends.
      60_000,
    ).catch(async (error: unknown) => {
      const rows = await db.query(
        `select status, count(*)::int as n, min(lease_expires_at) as lease, max(lease_expires_at) as last_lease, min(next_attempt_at) as due, max(attempts) as attempts, max(last_error) as err from webhook_deliveries group by 1`,
      );
      throw new Error(
        `rows ${JSON.stringify(rows.rows)} at ${new Date().toISOString()}; service said: ${service!.output.join('').slice(-3000)}`,
        { cause: error },
      );
    });
    t.diagnostic(`restarted process finished in ${Date.now() - restartedAt} ms`);

    // The log holds exactly the 500 awards the API acknowledged, each once.
    const envelopes = await db.query<{ envelope_id: string; body: string }>(
      `select envelope_id, body from webhook_envelopes where program_id = $1 and type = 'points.awarded'`,
      [program.id],
    );
    assert.equal(envelopes.rows.length, memberCount * awardsPerMember);
    const bodies = new Map(envelopes.rows.map((r) => [r.envelope_id, r.body]));
    assert.deepEqual(
      new Set(
        envelopes.rows.map(
          (r) => (JSON.parse(r.body) as { data: { transaction_id: string } }).data.transaction_id,
        ),
      ),
      transactionIds,
    );

    const rows = await db.query<{ status: string; series: number; n: number }>(
      `select status, series, count(*)::int as n from webhook_deliveries group by 1, 2`,
    );
    assert.deepEqual(rows.rows, [{ status: 'delivered', series: 0, n: expectedDeliveries }]);

    // Every (endpoint, envelope) pair arrived; duplicates carry the same id and identical bytes.
    const expectedPairs = new Set(
      [...secrets.keys()].flatMap((path) => [...bodies.keys()].map((id) => `${path} ${id}`)),
    );
    assert.deepEqual(pairs(), expectedPairs, 'none lost, none invented');
    let duplicates = 0;
    const firstSeen = new Map<string, Buffer>();
    for (const got of received()) {
      const id = headerOf(got, 'webhook-id');
      const key = `${got.path} ${id}`;
      assert.equal(got.body, bodies.get(id), 'the stored envelope bytes, unchanged');
      const first = firstSeen.get(key);
      if (first) {
        duplicates += 1;
        assert.ok(first.equals(got.raw), `duplicate ${key} has identical bytes`);
      } else firstSeen.set(key, got.raw);
      const verified = verifyWebhook(got.raw, got.headers, secrets.get(got.path)!, {
        toleranceSeconds: 600,
      });
      assert.ok(verified.ok, `${key} verifies`);
    }
    t.diagnostic(`${received().length} POSTs, ${duplicates} duplicates after the crash`);
  });
});
