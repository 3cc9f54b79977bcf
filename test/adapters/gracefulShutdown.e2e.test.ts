import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { apiClient, createMember, createProgram, expectStatus, type Api } from '../support/api.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  waitFor,
  type TestDatabase,
} from '../support/postgres.ts';
import { headerOf, startReceiver, type Receiver } from '../support/receiver.ts';
import {
  connectionRefused,
  listeningUrl,
  logLines,
  startService,
  type Service,
} from '../support/service.ts';

type Running = { service: Service; port: number; api: Api; rootKey: string };

/** A promise and the function that resolves it: how a test holds a receiver's answer. */
const gate = (): { opened: Promise<void>; open: () => void } => {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
};

/** Fails with what the service said when it has not exited within `timeoutMs`. */
const exitOf = async (running: Running, timeoutMs: number) => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `the service did not exit within ${timeoutMs} ms; it said: ${running.service.output.join('').slice(-3000)}`,
          ),
        ),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([running.service.exit, timeout]);
  } finally {
    clearTimeout(timer);
  }
};

describe('graceful shutdown (SIGTERM)', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  let db: pg.Client;
  let dataDir: string;
  const secretKey = randomBytes(32).toString('base64');
  const services: Service[] = [];
  const receivers: Receiver[] = [];

  before(async () => {
    database = await createTestDatabase();
    db = new pg.Client({ connectionString: database.url });
    await db.connect();
    dataDir = mkdtempSync(join(tmpdir(), 'incentable-shutdown-'));
  });

  after(async () => {
    for (const service of services) {
      if (service.child.exitCode === null && service.child.signalCode === null) {
        service.child.kill('SIGKILL');
        await service.exit;
      }
    }
    for (const receiver of receivers) await receiver.close();
    await db?.end();
    await database?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const start = async (env: Record<string, string> = {}): Promise<Running> => {
    const rootKey = randomBytes(24).toString('base64url');
    const service = startService({
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      DATABASE_URL: database.url,
      PORT: '0',
      HOST: '127.0.0.1',
      ADMIN_API_KEY: rootKey,
      LOG_LEVEL: 'info',
      DATA_DIR: dataDir,
      WEBHOOK_SECRET_KEY: secretKey,
      // Longer than any shutdown here: a POST ends because the shutdown ends it, not the timeout.
      WEBHOOK_TIMEOUT_MS: '120000',
      ...env,
    });
    services.push(service);
    const url = await listeningUrl(service).catch((error: unknown) => {
      throw new Error(`service did not start: ${service.output.join('')}`, { cause: error });
    });
    const port = Number(new URL(url).port);
    await waitFor(
      'the service to answer /healthz',
      async () => (await fetch(`${url}/healthz`).catch(() => null))?.status === 200,
      // Starting compiles the app through tsx: slow on a machine busy with other test runs.
      120_000,
    ).catch((error: unknown) => {
      throw new Error(`service did not start: ${service.output.join('')}`, { cause: error });
    });
    return { service, port, api: apiClient(url, rootKey), rootKey };
  };

  const logged = (running: Running, message: string) =>
    waitFor(
      `the service to log "${message}"`,
      () => logLines(running.service).some((line) => line.msg?.startsWith(message)),
      30_000,
    );

  /** A program with one endpoint at `receiver` and one member. */
  const programWithEndpoint = async (api: Api, receiver: Receiver) => {
    const program = await createProgram(api);
    const endpoint = expectStatus(
      await api.post<{ id: string }>(`/v1/programs/${program.id}/webhook-endpoints`, {
        url: receiver.url,
        events: ['points.awarded'],
      }),
      201,
    ).body;
    const member = await createMember(api, program.id);
    return { programId: program.id, endpointId: endpoint.id, memberId: member.id };
  };

  const awardPath = (programId: string, memberId: string) =>
    `/v1/programs/${programId}/members/${memberId}/points/award`;

  const deliveries = async (endpointId: string) =>
    (
      await db.query<{
        delivery_id: string;
        status: string;
        attempts: number;
        lease_owner: string | null;
        due_now: boolean;
      }>(
        `select delivery_id, status, attempts, lease_owner, next_attempt_at <= now() as due_now
         from webhook_deliveries where endpoint_id = $1 order by seq`,
        [endpointId],
      )
    ).rows;

  it('lets an API request under way finish with its normal status, closes idle keep-alive connections at once, and exits 0', async () => {
    const running = await start();
    const program = await createProgram(running.api);
    const member = await createMember(running.api, program.id);

    // A keep-alive connection left idle by a finished request: it must not hold the shutdown.
    const idleAgent = new Agent({ keepAlive: true });
    const idleSocket = await new Promise<Socket>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: running.port, path: '/healthz', agent: idleAgent },
        (res) => {
          res.resume();
          res.once('end', () => resolve(req.socket!));
        },
      );
      req.once('error', reject);
      req.end();
    });
    const idleClosed = new Promise<void>((resolve) => idleSocket.once('close', () => resolve()));

    // A slow client: the headers are in and the server said 100 Continue; the body comes later.
    const body = JSON.stringify({ points: 25, reason: 'uploaded slowly' });
    const uploadAgent = new Agent({ keepAlive: true });
    const upload = request({
      host: '127.0.0.1',
      port: running.port,
      method: 'POST',
      path: awardPath(program.id, member.id),
      agent: uploadAgent,
      headers: {
        authorization: `Bearer ${running.rootKey}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        expect: '100-continue',
      },
    });
    const response = new Promise<{ res: IncomingMessage; text: string }>((resolve, reject) => {
      upload.once('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('end', () => resolve({ res, text: Buffer.concat(chunks).toString('utf8') }));
      });
      upload.once('error', reject);
    });
    await new Promise<void>((resolve) => upload.once('continue', () => resolve()));

    running.service.child.kill('SIGTERM');
    await idleClosed;
    upload.end(body);
    const { res, text } = await response;
    assert.equal(res.statusCode, 201, text);
    assert.equal(res.headers.connection, 'close', 'the connection ends with the response');
    const moved = JSON.parse(text) as { transaction_id: string };
    const { code, signal } = await exitOf(running, 60_000);
    assert.deepEqual({ code, signal }, { code: 0, signal: null });
    const events = await db.query(
      `select 1 from incentable_events where type = 'PointsAwarded' and data->>'transactionId' = $1`,
      [moved.transaction_id],
    );
    assert.equal(events.rowCount, 1, 'the award was applied');
    idleAgent.destroy();
    uploadAgent.destroy();
  });

  it('refuses new connections at once after SIGTERM, while a webhook POST is still under way', async () => {
    const held = gate();
    const receiver = await startReceiver(() => ({ status: 200, until: held.opened }));
    receivers.push(receiver);
    const running = await start();
    const { programId, memberId } = await programWithEndpoint(running.api, receiver);
    expectStatus(
      await running.api.post(awardPath(programId, memberId), { points: 5, reason: 'x' }),
      201,
    );
    await receiver.waitForCount(1, { timeoutMs: 30_000 });

    running.service.child.kill('SIGTERM');
    // The POST stays held until the gate opens: refused while it drains, not after.
    await waitFor('a new connection to be refused', () => connectionRefused(running.port));
    assert.equal(running.service.child.exitCode, null, 'still draining the POST it holds');
    held.open();
    const { code } = await exitOf(running, 60_000);
    assert.equal(code, 0);
  });

  it('finishes a webhook POST under way and records it delivered, gives the queued deliveries back, ignores a second signal, and exits 0', async () => {
    const held = gate();
    const receiver = await startReceiver((_, n) =>
      n === 1 ? { status: 200, until: held.opened } : { status: 200 },
    );
    receivers.push(receiver);
    // One POST at a time to the endpoint: the first is held, the next two wait in the queue.
    const running = await start({ WEBHOOK_PER_ENDPOINT_IN_FLIGHT: '1' });
    const { programId, endpointId, memberId } = await programWithEndpoint(running.api, receiver);
    for (const points of [1, 2, 3])
      expectStatus(
        await running.api.post(awardPath(programId, memberId), { points, reason: 'x' }),
        201,
      );
    await receiver.waitForCount(1, { timeoutMs: 30_000 });
    await waitFor(
      'all three deliveries leased to the worker',
      async () => (await deliveries(endpointId)).every((d) => d.status === 'delivering'),
      30_000,
    );

    running.service.child.kill('SIGTERM');
    await logged(running, 'shutting down');
    // Under `npm start` one Ctrl-C reaches the process more than once.
    running.service.child.kill('SIGINT');
    await logged(running, 'already shutting down');
    held.open();
    const { code, signal } = await exitOf(running, 60_000);
    assert.deepEqual({ code, signal }, { code: 0, signal: null });

    const rows = await deliveries(endpointId);
    const sentId = headerOf(receiver.received[0]!, 'x-incentable-delivery');
    const sent = rows.find((d) => d.delivery_id === sentId);
    assert.deepEqual(
      sent && { status: sent.status, attempts: sent.attempts },
      { status: 'delivered', attempts: 1 },
      'the POST under way was recorded',
    );
    const queued = rows.filter((d) => d.delivery_id !== sentId);
    assert.deepEqual(
      queued.map((d) => ({ ...d, delivery_id: '' })),
      [1, 2].map(() => ({
        delivery_id: '',
        status: 'pending',
        attempts: 0,
        lease_owner: null,
        due_now: true,
      })),
      'the queued deliveries are pending again, due now',
    );
    assert.equal(receiver.received.length, 1, 'nothing new was sent during the shutdown');

    // Another worker takes them at once, not when the lease (245 s here) would have ended.
    const next = await start();
    await receiver.waitForCount(3, { timeoutMs: 60_000 });
    next.service.child.kill('SIGTERM');
    assert.equal((await exitOf(next, 60_000)).code, 0);
  });

  it('cuts a webhook POST that outlives SHUTDOWN_TIMEOUT_MS, exits within about that time, and leaves the delivery pending for retry', async () => {
    const receiver = await startReceiver((_, n) => (n === 1 ? 'hang' : { status: 200 }));
    receivers.push(receiver);
    const shutdownTimeoutMs = 1_000;
    const running = await start({ SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs) });
    const { programId, endpointId, memberId } = await programWithEndpoint(running.api, receiver);
    expectStatus(
      await running.api.post(awardPath(programId, memberId), { points: 7, reason: 'x' }),
      201,
    );
    await receiver.waitForCount(1, { timeoutMs: 30_000 });

    const signalledAt = Date.now();
    running.service.child.kill('SIGTERM');
    const { code } = await exitOf(running, 60_000);
    const tookMs = Date.now() - signalledAt;
    assert.equal(code, 0);
    assert.ok(tookMs >= shutdownTimeoutMs - 50, `waited for the deadline (${tookMs} ms)`);
    // Without the cut the hung POST holds the process for WEBHOOK_TIMEOUT_MS (120 s here).
    assert.ok(tookMs < shutdownTimeoutMs + 10_000, `exited soon after it (${tookMs} ms)`);

    const [row, ...others] = await deliveries(endpointId);
    assert.equal(others.length, 0);
    assert.deepEqual(
      { ...row!, delivery_id: '' },
      { delivery_id: '', status: 'pending', attempts: 0, lease_owner: null, due_now: true },
      'pending again, due now, the cut attempt not counted',
    );
    const cut = logLines(running.service).find((line) => line.msg?.includes('cut'));
    assert.deepEqual(cut?.cutDeliveries, [row!.delivery_id], 'the log names the cut delivery');

    // The next process sends it again, same id and bytes, without waiting for the lease (245 s).
    const next = await start();
    await receiver.waitForCount(2, { timeoutMs: 60_000 });
    const [first, again] = receiver.received;
    assert.equal(headerOf(again!, 'webhook-id'), headerOf(first!, 'webhook-id'));
    assert.ok(again!.raw.equals(first!.raw), 'identical bytes');
    await waitFor('the retry to be recorded', async () =>
      (await deliveries(endpointId)).every((d) => d.status === 'delivered' && d.attempts === 1),
    );
    next.service.child.kill('SIGTERM');
    assert.equal((await exitOf(next, 60_000)).code, 0);
  });
});
