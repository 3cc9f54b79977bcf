import assert from 'node:assert/strict';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { spawn } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { sql } from 'kysely';
import { Webhook } from 'standardwebhooks';
import {
  award,
  createMember,
  createProgram,
  expectStatus,
  runningClock,
  settle,
  startTestApp,
  type ErrorBody,
  type TestApp,
} from '../../support/api.ts';
import { startFaultProxy } from '../../support/faultProxy.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';

/** The docs' verification snippet, unchanged but for types. */
function verifyWebhook(payload: string, signature: string, secret: string): boolean {
  const expected = createHmac('sha256', secret).update(payload).digest('hex');
  return timingSafeEqual(Buffer.from(signature), Buffer.from(expected));
}

const reachable = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

// CI starts both brokers (.ci/run): there a missing broker fails the test rather than skipping it.
const brokersUp = (await reachable(5672)) && (await reachable(4222));
const skip =
  skipWithoutPostgres ||
  (!brokersUp && process.env.CI !== 'true' && 'RabbitMQ or NATS is not running on 127.0.0.1');

type Endpoint = { id: string; url: string; secret: string };
type Attempt = {
  response_body: string | null;
  error_kind: string | null;
  error_message: string | null;
};
type DeliveryDetail = { status: string; attempts: Attempt[] };
type DeliveryRow = { id: string; status: string; type: string; attempts: number };

const suffix = () => randomBytes(4).toString('hex');

describe('broker destinations', { skip }, () => {
  let app: TestApp;
  let programId: string;
  let rabbit: ChannelModel;
  let channel: Channel;
  let nats: NatsConnection;
  let jsm: JetStreamManager;
  const streams: string[] = [];
  const exchanges: string[] = [];
  const p = (path: string) => `/v1/programs/${programId}${path}`;

  before(async () => {
    app = await startTestApp({
      clock: runningClock(),
      env: { WEBHOOK_RETRY_SCHEDULE: '0s,1s,1s,1s,1s,1s', WEBHOOK_TIMEOUT_MS: '3000' },
    });
    programId = (await createProgram(app.api)).id;
    rabbit = await amqp.connect('amqp://guest:guest@127.0.0.1:5672');
    channel = await rabbit.createChannel();
    nats = await natsConnect({ servers: '127.0.0.1:4222' });
    jsm = await jetstreamManager(nats);
  });
  after(async () => {
    await app?.stop();
    for (const exchange of exchanges) await channel?.deleteExchange(exchange).catch(() => {});
    await rabbit?.close();
    for (const stream of streams) await jsm?.streams.delete(stream).catch(() => {});
    await nats?.close();
  });

  const createEndpoint = async (url: string, events = ['*']): Promise<Endpoint> =>
    expectStatus(await app.api.post<Endpoint>(p('/webhook-endpoints'), { url, events }), 201).body;

  const deliveriesOf = async (endpointId: string): Promise<DeliveryRow[]> =>
    expectStatus(
      await app.api.get<{ data: DeliveryRow[] }>(
        p(`/webhook-deliveries?endpoint_id=${endpointId}&limit=500`),
      ),
      200,
    ).body.data;

  const detailOf = async (deliveryId: string): Promise<DeliveryDetail> =>
    expectStatus(await app.api.get<DeliveryDetail>(p(`/webhook-deliveries/${deliveryId}`)), 200)
      .body;

  /** A topic exchange with a queue bound for `pattern`; the messages that reach the queue. */
  const rabbitQueue = async (pattern: string | null) => {
    const exchange = `incentable-test-${suffix()}`;
    exchanges.push(exchange);
    await channel.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
    const { queue } = await channel.assertQueue('', { exclusive: true });
    const received: ConsumeMessage[] = [];
    await channel.consume(queue, (message) => message && received.push(message), { noAck: true });
    const bind = () => channel.bindQueue(queue, exchange, pattern ?? '#');
    if (pattern !== null) await bind();
    return { exchange, received, bind };
  };

  const headersOf = (message: ConsumeMessage): Record<string, string> =>
    Object.fromEntries(
      Object.entries(message.properties.headers ?? {}).map(([k, v]) => [k, String(v)]),
    );

  it('publishes each event to the RabbitMQ exchange, signed, persistent and confirmed', async () => {
    const { exchange, received } = await rabbitQueue('points.*');
    const endpoint = await createEndpoint(
      `amqp://guest:guest@127.0.0.1:5672/?exchange=${exchange}`,
      ['points.awarded'],
    );
    // The password is kept apart, encrypted: neither the API nor the url column shows it.
    assert.equal(endpoint.url, `amqp://guest@127.0.0.1:5672/?exchange=${exchange}`);
    const stored = await sql<{ url: string; url_userinfo_encrypted: string | null }>`
      select url, url_userinfo_encrypted from webhook_endpoints
      where endpoint_id = ${endpoint.id}`.execute(app.runtime.database.db);
    assert.equal(stored.rows[0]!.url.includes('guest:guest'), false);
    assert.ok(stored.rows[0]!.url_userinfo_encrypted);
    assert.equal(stored.rows[0]!.url_userinfo_encrypted.includes('guest'), false);

    const member = await createMember(app.api, programId);
    await award(app.api, programId, member.id, 25);
    await waitFor('the message in the queue', () => received.length === 1);
    const message = received[0]!;
    const headers = headersOf(message);
    const body = message.content.toString('utf8');
    assert.equal(message.fields.routingKey, 'points.awarded');
    assert.equal(message.properties.deliveryMode, 2, 'persistent');
    assert.equal(message.properties.contentType, 'application/json');
    assert.equal(message.properties.messageId, headers['webhook-id']);
    assert.equal(headers['x-incentable-event'], 'points.awarded');
    assert.ok(verifyWebhook(body, headers['x-incentable-signature']!, endpoint.secret));
    new Webhook(endpoint.secret).verify(body, headers);
    const envelope = JSON.parse(body) as { type: string; data: { points: number } };
    assert.equal(envelope.type, 'points.awarded');
    assert.equal(envelope.data.points, 25);

    await waitFor('the delivery recorded', async () => {
      const [row] = await deliveriesOf(endpoint.id);
      return row?.status === 'delivered';
    });
    const [row] = await deliveriesOf(endpoint.id);
    const detail = await detailOf(row!.id);
    assert.match(detail.attempts[0]!.response_body ?? '', /confirmed by RabbitMQ/);

    // Test events and redelivery take the same path.
    expectStatus(
      await app.api.post(p(`/webhook-endpoints/${endpoint.id}/test`), { type: 'points.awarded' }),
      202,
    );
    expectStatus(await app.api.post(p(`/webhook-deliveries/${row!.id}/redeliver`), {}), 202);
    await waitFor('the test event and the redelivery', () => received.length === 3);
    const test = received.find((m) => headersOf(m)['x-incentable-test'] === 'true');
    assert.ok(test, 'the test event carries X-Incentable-Test');
    const again = received.filter((m) => m.content.toString('utf8') === body);
    assert.equal(again.length, 2, 'the redelivery carries the same bytes');
  });

  it('retries a message no queue takes, and delivers it once a queue is bound', async () => {
    const { exchange, received, bind } = await rabbitQueue(null);
    const endpoint = await createEndpoint(
      `amqp://guest:guest@127.0.0.1:5672/?exchange=${exchange}`,
    );
    const member = await createMember(app.api, programId);
    await settle(app.runtime);
    await waitFor('a failed attempt', async () => {
      const rows = await deliveriesOf(endpoint.id);
      return rows.length > 0 && rows.every((r) => r.attempts >= 1);
    });
    const [first] = await deliveriesOf(endpoint.id);
    const failed = await detailOf(first!.id);
    assert.equal(failed.attempts[0]!.error_kind, 'broker_rejected');
    assert.match(failed.attempts[0]!.error_message ?? '', /unroutable/);
    assert.notEqual(failed.status, 'delivered');
    await bind();
    await waitFor(
      'the retry delivered',
      async () => (await deliveriesOf(endpoint.id)).every((r) => r.status === 'delivered'),
      15_000,
    );
    assert.ok(received.some((m) => m.content.toString('utf8').includes(member.id)));
  });

  it('names a missing exchange in the delivery log, and other endpoints keep flowing', async () => {
    const missing = `incentable-missing-${suffix()}`;
    const { exchange, received } = await rabbitQueue('#');
    const broken = await createEndpoint(`amqp://guest:guest@127.0.0.1:5672/?exchange=${missing}`);
    const working = await createEndpoint(`amqp://guest:guest@127.0.0.1:5672/?exchange=${exchange}`);
    const member = await createMember(app.api, programId);
    await waitFor('the working endpoint delivered', () =>
      received.some((m) => m.content.toString('utf8').includes(member.id)),
    );
    await waitFor('a failed attempt', async () =>
      (await deliveriesOf(broken.id)).some((r) => r.attempts >= 1),
    );
    const [row] = await deliveriesOf(broken.id);
    const detail = await detailOf(row!.id);
    assert.equal(detail.attempts[0]!.error_kind, 'broker_rejected');
    assert.match(detail.attempts[0]!.error_message ?? '', /NOT_FOUND/);
    assert.ok((await deliveriesOf(working.id)).length > 0);
  });

  it('publishes to NATS JetStream under <subject>.<event type>, acknowledged by the stream', async () => {
    const prefix = `incentable_test_${suffix()}`;
    const stream = `INCENTABLE_TEST_${suffix()}`;
    streams.push(stream);
    await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`] });
    const endpoint = await createEndpoint(`nats://127.0.0.1:4222?subject=${prefix}`, [
      'points.awarded',
    ]);
    const member = await createMember(app.api, programId);
    await award(app.api, programId, member.id, 7);
    await waitFor('the message in the stream', async () => {
      const info = await jsm.streams.info(stream);
      return info.state.messages === 1;
    });
    const message = await jsm.streams.getMessage(stream, { seq: 1 });
    assert.ok(message);
    assert.equal(message.subject, `${prefix}.points.awarded`);
    const body = message.string();
    const headers: Record<string, string> = {};
    for (const name of message.header.keys()) headers[name] = message.header.get(name);
    assert.ok(verifyWebhook(body, headers['x-incentable-signature']!, endpoint.secret));
    new Webhook(endpoint.secret).verify(body, headers);
    assert.equal((JSON.parse(body) as { data: { points: number } }).data.points, 7);
    await waitFor('the delivery recorded', async () => {
      const [row] = await deliveriesOf(endpoint.id);
      return row?.status === 'delivered';
    });
    const [row] = await deliveriesOf(endpoint.id);
    assert.match((await detailOf(row!.id)).attempts[0]!.response_body ?? '', new RegExp(stream));

    // A redelivery is a new delivery: a new message id, so the stream keeps both.
    expectStatus(await app.api.post(p(`/webhook-deliveries/${row!.id}/redeliver`), {}), 202);
    await waitFor('the redelivery in the stream', async () => {
      const info = await jsm.streams.info(stream);
      return info.state.messages === 2;
    });
  });

  it('retries a subject no stream captures, and says so', async () => {
    const prefix = `incentable_nostream_${suffix()}`;
    const endpoint = await createEndpoint(`nats://127.0.0.1:4222?subject=${prefix}`);
    await createMember(app.api, programId);
    await waitFor('a failed attempt', async () =>
      (await deliveriesOf(endpoint.id)).some((r) => r.attempts >= 1),
    );
    const [row] = await deliveriesOf(endpoint.id);
    const detail = await detailOf(row!.id);
    assert.equal(detail.attempts[0]!.error_kind, 'broker_rejected');
    assert.match(detail.attempts[0]!.error_message ?? '', /no JetStream stream captures/);
    // Stop retrying it: later tests count only their own endpoints' rows.
    expectStatus(await app.api.request('DELETE', p(`/webhook-endpoints/${endpoint.id}`)), 204);
  });

  it('survives a broker connection cut or refused: the attempts fail, the next ones reconnect', async () => {
    const { exchange, received } = await rabbitQueue('#');
    const rabbitProxy = await startFaultProxy('amqp://127.0.0.1:5672');
    const natsProxy = await startFaultProxy('nats://127.0.0.1:4222');
    const prefix = `incentable_cut_${suffix()}`;
    const stream = `INCENTABLE_CUT_${suffix()}`;
    streams.push(stream);
    await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`] });
    try {
      const amqpPort = new URL(rabbitProxy.url).port;
      const natsPort = new URL(natsProxy.url).port;
      const viaAmqp = await createEndpoint(
        `amqp://guest:guest@127.0.0.1:${amqpPort}/?exchange=${exchange}`,
        ['member.created'],
      );
      const viaNats = await createEndpoint(`nats://127.0.0.1:${natsPort}?subject=${prefix}`, [
        'member.created',
      ]);
      const inStream = async () => (await jsm.streams.info(stream)).state.messages;
      await createMember(app.api, programId);
      await waitFor(
        'both delivered',
        async () => received.length === 1 && (await inStream()) === 1,
      );

      // A cut connection (a broker restart, a failover): the next events reconnect.
      rabbitProxy.cut();
      natsProxy.cut();
      await createMember(app.api, programId);
      await waitFor(
        'both delivered after the cut',
        async () => received.length === 2 && (await inStream()) === 2,
        15_000,
      );

      // The broker refuses connections for a while: attempts fail and are retried, no crash.
      rabbitProxy.down();
      rabbitProxy.cut();
      await createMember(app.api, programId);
      await waitFor('a failed attempt while the broker is down', async () =>
        (await deliveriesOf(viaAmqp.id)).some((r) => r.status !== 'delivered' && r.attempts >= 1),
      );
      rabbitProxy.up();
      await waitFor(
        'delivered once the broker is back',
        async () => (await deliveriesOf(viaAmqp.id)).every((r) => r.status === 'delivered'),
        15_000,
      );
      assert.equal(received.length, 3);
      assert.ok((await deliveriesOf(viaNats.id)).length === 3);
    } finally {
      await rabbitProxy.close();
      await natsProxy.close();
    }
  });

  /** Runs a docs example as a child process: resolves with its output once it exits. */
  const runExample = (file: string, args: string[], onReady: () => Promise<void>) =>
    new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [`examples/${file}`, ...args], {
        cwd: new URL('../../../', import.meta.url),
      });
      let out = '';
      let ready = false;
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (!ready && out.includes('ready:')) {
          ready = true;
          onReady().catch(reject);
        }
      });
      child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.on('error', reject);
      child.on('exit', (code) => resolve({ code, out }));
    });

  it("runs the docs' RabbitMQ and NATS consumers against real deliveries", async () => {
    const exchange = `incentable-example-${suffix()}`;
    exchanges.push(exchange);
    const rabbitEndpoint = await createEndpoint(
      `amqp://guest:guest@127.0.0.1:5672/?exchange=${exchange}`,
      ['points.awarded'],
    );
    const member = await createMember(app.api, programId);
    try {
      const rabbit = await runExample(
        'rabbitmq-consumer.mjs',
        ['amqp://guest:guest@127.0.0.1:5672', exchange, rabbitEndpoint.secret, '1'],
        () => award(app.api, programId, member.id, 3).then(() => undefined),
      );
      assert.equal(rabbit.code, 0, rabbit.out);
      assert.match(rabbit.out, /^points\.awarded evt_\S+ signature ok$/m);
    } finally {
      await channel.deleteQueue(`${exchange}.consumer`).catch(() => {});
    }

    const prefix = `incentable_example_${suffix()}`;
    const stream = `${prefix.toUpperCase()}_WEBHOOKS`;
    streams.push(stream);
    const natsEndpoint = await createEndpoint(`nats://127.0.0.1:4222?subject=${prefix}`, [
      'points.awarded',
    ]);
    const nats = await runExample(
      'nats-consumer.mjs',
      ['127.0.0.1:4222', prefix, natsEndpoint.secret, '1'],
      () => award(app.api, programId, member.id, 4).then(() => undefined),
    );
    assert.equal(nats.code, 0, nats.out);
    assert.match(nats.out, new RegExp(`^${prefix}\\.points\\.awarded evt_\\S+ signature ok$`, 'm'));
  });

  it('refuses broker URLs it cannot deliver to, naming the field', async () => {
    const bad = [
      'amqp://guest:guest@127.0.0.1:5672/',
      'amqp://127.0.0.1:5672/?exchange=a&other=b',
      'amqp://127.0.0.1:5672/a/b?exchange=x',
      'nats://127.0.0.1:4222?subject=orders.*',
      'nats://127.0.0.1:4222?subject=orders..x',
      'nats://127.0.0.1:4222',
      'amqp://169.254.169.254/?exchange=x',
      'nats://[fe80::1]:4222?subject=x',
      'https://user:pass@example.com/hook',
      'mqtt://127.0.0.1:1883/?topic=x',
    ];
    for (const url of bad) {
      const response = await app.api.post<ErrorBody>(p('/webhook-endpoints'), {
        url,
        events: ['*'],
      });
      assert.equal(response.status, 400, url);
      assert.equal(response.body.error?.field, 'url', url);
    }
  });
});
