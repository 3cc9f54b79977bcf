import assert from 'node:assert/strict';
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { SMTPServer } from 'smtp-server';
import { createSmtpMailer, type SmtpMailer } from '../../../adapters/mail/smtpMailer.ts';
import { openDatabase, type DatabaseHandle } from '../../../adapters/db/database.ts';
import type { Subscription } from '../../../application/ports.ts';
import { PostgresEventStore } from '../../../adapters/eventstore/postgresEventStore.ts';
import { DeliveryWorker } from '../../../adapters/webhooks/deliveryWorker.ts';
import { UndiciTransport } from '../../../adapters/webhooks/undiciTransport.ts';
import { projectWebhooks } from '../../../adapters/webhooks/webhookProjector.ts';
import { createWebhookStore, type WebhookStore } from '../../../adapters/webhooks/webhookStore.ts';
import { catalogueEntryOf } from '../../../delivery/catalogue.ts';
import { envelopeIdFor } from '../../../delivery/envelope.ts';
import { parseRetrySchedule } from '../../../delivery/retryPolicy.ts';
import type { DomainEvent } from '../../../domain/events.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  waitFor,
  type TestDatabase,
} from '../../support/postgres.ts';

type Received = { at: number; headers: IncomingMessage['headers']; body: string };

/** The docs' verification snippet, unchanged but for types. */
function verifyWebhook(payload: string, signature: string, secret: string): boolean {
  const expected = createHmac('sha256', secret).update(payload).digest('hex');
  return timingSafeEqual(Buffer.from(signature), Buffer.from(expected));
}

const servers: Server[] = [];
/** A real receiver on 127.0.0.1; `respond` returns a status, or null to never answer. */
const startReceiver = async (respond: (n: number) => number | null) => {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        at: Date.now(),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      const status = respond(received.length);
      if (status !== null) res.writeHead(status).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received };
};

const headerOf = (r: Received, name: string): string => {
  const value = r.headers[name];
  assert.equal(typeof value, 'string', `header ${name}`);
  return value as string;
};

const schedule = parseRetrySchedule('0ms,200ms,400ms,600ms,800ms');
if (!schedule.ok) throw new Error(schedule.message);
const delaysMs = schedule.delaysS.map((s) => Math.round(s * 1000));
/** Claims are woken by a timer at the due time or the 250 ms poll; recording adds a little. */
const gapToleranceMs = 500;

describe('webhook delivery, end to end on PostgreSQL', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  let handle: DatabaseHandle;
  let eventStore: PostgresEventStore;
  let subscription: Subscription;
  let store: WebhookStore;
  let worker: DeliveryWorker;
  let transport: UndiciTransport;
  let smtp: SMTPServer;
  let mailer: SmtpMailer;
  const mails: { to: string; raw: string }[] = [];
  const secretKey = new Uint8Array(randomBytes(32));

  before(async () => {
    database = await createTestDatabase();
    handle = await openDatabase({ kind: 'postgres', url: database.url });
    eventStore = new PostgresEventStore(handle, { pollIntervalMs: 50 });
    store = createWebhookStore({ db: handle.db, secretKey });
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const to = session.envelope.rcptTo.map((r) => r.address).join(',');
          mails.push({ to, raw: Buffer.concat(chunks).toString('utf8') });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()));
    const smtpPort = (smtp.server.address() as AddressInfo).port;
    mailer = createSmtpMailer({
      url: `smtp://127.0.0.1:${smtpPort}`,
      from: 'Incentable <webhooks@example.com>',
    });
    transport = new UndiciTransport({
      allowPrivateNetworks: true,
      connectionsPerOrigin: 16,
      userAgent: 'test',
    });
    worker = new DeliveryWorker({
      db: handle.db,
      transport,
      secretKey,
      publicUrl: 'https://incentives.example.com',
      version: '0.1.0',
      mailer,
      notificationAddressOf: (programId) => Promise.resolve(`${programId}@example.com`),
      delaysS: schedule.delaysS,
      timeoutMs: 300,
      concurrency: 64,
      perEndpointInFlight: 8,
      logger: { info: () => {}, error: (fields, message) => console.error(message, fields) },
    });
    worker.start();
    subscription = await eventStore.subscribe({ name: 'webhooks', handle: projectWebhooks });
  });

  after(async () => {
    await subscription?.stop();
    await worker?.stop();
    await transport?.close();
    mailer?.close();
    for (const server of servers) server.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    await new Promise<void>((resolve) => (smtp ? smtp.close(() => resolve()) : resolve()));
    await eventStore?.close();
    await handle?.close();
    await database?.drop();
  });

  const append = async (programId: string, events: DomainEvent[]): Promise<string[]> => {
    const ids = events.map(() => randomUUID());
    await eventStore.append(
      `points-${programId}-mem_${randomUUID().slice(0, 8)}`,
      events.map((e, i) => ({
        id: ids[i]!,
        type: e.type,
        data: e.data,
        metadata: {
          programId,
          correlationId: randomUUID(),
          causationId: null,
          actor: 'test',
          recordedAt: new Date().toISOString(),
        },
      })),
      'any',
    );
    await subscription.caughtUp();
    worker.notify();
    return ids;
  };

  const awarded = (n = 1): DomainEvent => ({
    type: 'PointsAwarded',
    data: {
      transactionId: `txn_${n}`,
      memberId: 'mem_abc123',
      points: 500,
      reason: 'Q2 Sales Target',
      reference: null,
      newBalance: 5000 + 500 * n,
      lifetimePoints: 5000 + 500 * n,
      at: '2024-06-15T14:30:00.000Z',
    },
  });

  const deliveriesOf = (endpointId: string) =>
    handle.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('endpoint_id', '=', endpointId)
      .execute();

  it('sends the documented payload, signed both ways, to subscribed enabled endpoints only', async () => {
    const programId = 'prg_e2e1';
    const subscribed = await startReceiver(() => 200);
    const unsubscribed = await startReceiver(() => 200);
    const disabled = await startReceiver(() => 200);
    const a = await store.createEndpoint({
      programId,
      url: subscribed.url,
      events: ['points.awarded'],
    });
    const b = await store.createEndpoint({
      programId,
      url: unsubscribed.url,
      events: ['member.created'],
    });
    const c = await store.createEndpoint({ programId, url: disabled.url, events: ['*'] });
    await store.updateEndpoint(programId, c.endpoint.endpointId, { enabled: false });

    const [eventId] = await append(programId, [awarded()]);
    await waitFor('the subscribed endpoint to receive', () => subscribed.received.length === 1);
    const got = subscribed.received[0]!;
    assert.deepEqual(JSON.parse(got.body), {
      id: envelopeIdFor(eventId!),
      type: 'points.awarded',
      created_at: '2024-06-15T14:30:00Z',
      data: {
        transaction_id: 'txn_1',
        member_id: 'mem_abc123',
        points: 500,
        reason: 'Q2 Sales Target',
        new_balance: 5500,
        kind: 'award',
        reference: null,
      },
    });
    assert.equal(got.body.indexOf('{"id":"evt_'), 0, 'keys in the docs order');
    assert.ok(verifyWebhook(got.body, headerOf(got, 'x-incentable-signature'), a.secret));
    new Webhook(a.secret).verify(got.body, got.headers as Record<string, string>);
    assert.equal(headerOf(got, 'webhook-id'), envelopeIdFor(eventId!));
    assert.equal(headerOf(got, 'x-incentable-event'), 'points.awarded');
    assert.equal(headerOf(got, 'content-type'), 'application/json');
    assert.equal(headerOf(got, 'user-agent'), 'Incentable-Webhooks/0.1.0');
    assert.equal(got.headers['x-incentable-test'], undefined);
    await waitFor(
      'the delivery to be recorded',
      async () => (await deliveriesOf(a.endpoint.endpointId))[0]?.status === 'delivered',
    );
    const [delivery] = await deliveriesOf(a.endpoint.endpointId);
    assert.equal(headerOf(got, 'x-incentable-delivery'), delivery!.delivery_id);

    // The projector created no delivery for the others in the same transaction: nothing can follow.
    assert.equal((await deliveriesOf(b.endpoint.endpointId)).length, 0);
    assert.equal((await deliveriesOf(c.endpoint.endpointId)).length, 0);
    assert.equal(unsubscribed.received.length + disabled.received.length, 0);

    // Replaying the batch (a projector restart from an older checkpoint) adds no delivery.
    const recorded = await eventStore.readAll({ after: null, limit: 1000, programId });
    await handle.db.transaction().execute((tx) => projectWebhooks(recorded, tx));
    assert.equal((await deliveriesOf(a.endpoint.endpointId)).length, 1);
  });

  it('retries an always-500 endpoint five times on schedule, then fails it and mails once', async () => {
    const programId = 'prg_e2e2';
    const failing = await startReceiver(() => 500);
    const flaky = await startReceiver((n) => (n <= 2 ? 503 : 200));
    const f = await store.createEndpoint({ programId, url: failing.url, events: ['*'] });
    const g = await store.createEndpoint({ programId, url: flaky.url, events: ['points.awarded'] });
    const [eventId] = await append(programId, [awarded()]);

    await waitFor(
      'the failing delivery to fail',
      async () => (await deliveriesOf(f.endpoint.endpointId))[0]?.status === 'failed',
    );
    await waitFor(
      'the flaky delivery to succeed',
      async () => (await deliveriesOf(g.endpoint.endpointId))[0]?.status === 'delivered',
    );
    assert.equal(failing.received.length, 5);
    assert.equal(flaky.received.length, 3);
    for (let k = 1; k < failing.received.length; k += 1) {
      const gap = failing.received[k]!.at - failing.received[k - 1]!.at;
      const delay = delaysMs[k]!;
      assert.ok(gap >= delay, `gap before attempt ${k + 1} is ${gap} ms, at least ${delay} ms`);
      assert.ok(
        gap <= delay + gapToleranceMs,
        `gap before attempt ${k + 1} is ${gap} ms, at most ${delay + gapToleranceMs} ms`,
      );
    }
    const [failed] = await deliveriesOf(f.endpoint.endpointId);
    assert.equal(failed!.attempts, 5);
    assert.equal(failed!.last_status, 500);
    const attempts = await handle.db
      .selectFrom('webhook_attempts')
      .selectAll()
      .where('delivery_id', '=', failed!.delivery_id)
      .orderBy('attempt_number')
      .execute();
    assert.deepEqual(
      attempts.map((a) => [a.attempt_number, a.http_status, a.error_kind]),
      [1, 2, 3, 4, 5].map((n) => [n, 500, 'non_2xx']),
    );

    const to = `${programId}@example.com`;
    await waitFor('the failure email', () => mails.some((m) => m.to === to));
    await waitFor('the notification to be marked sent', async () => {
      const rows = await handle.db
        .selectFrom('webhook_notifications')
        .selectAll()
        .where('program_id', '=', programId)
        .execute();
      return rows.length === 1 && rows[0]!.sent_at !== null;
    });
    const ours = mails.filter((m) => m.to === to);
    assert.equal(ours.length, 1);
    const text = ours[0]!.raw.replace(/=\r?\n/g, '');
    assert.ok(
      text.includes(`${f.endpoint.endpointId} at ${new URL(failing.url).host}`),
      'names the endpoint by id and host',
    );
    assert.ok(text.includes('points.awarded'), 'names the type');
    assert.ok(text.includes(envelopeIdFor(eventId!)), 'names the event id');
    assert.ok(
      text.includes(
        `/dashboard/webhooks/${f.endpoint.endpointId}/deliveries/${failed!.delivery_id}`,
      ),
      'links the delivery',
    );
  });

  it('disables an endpoint that answers 410 Gone and says so by email', async () => {
    const programId = 'prg_e2e3';
    const gone = await startReceiver(() => 410);
    const e = await store.createEndpoint({ programId, url: gone.url, events: ['*'] });
    await append(programId, [awarded()]);
    await waitFor(
      'the delivery to be gone',
      async () => (await deliveriesOf(e.endpoint.endpointId))[0]?.status === 'gone',
    );
    assert.equal(gone.received.length, 1);
    const endpoint = await store.getEndpoint(programId, e.endpoint.endpointId);
    assert.equal(endpoint?.enabled, false);
    assert.match(endpoint?.disabledReason ?? '', /410 Gone/);
    const to = `${programId}@example.com`;
    await waitFor('the email', () => mails.some((m) => m.to === to));
    assert.match(mails.find((m) => m.to === to)!.raw, /disabled/);

    await append(programId, [awarded(2)]);
    assert.equal(
      (await deliveriesOf(e.endpoint.endpointId)).length,
      1,
      'a disabled endpoint gets no new deliveries',
    );
  });

  it('keeps delivering to a fast endpoint while another hangs', async () => {
    const programId = 'prg_e2e4';
    const hanging = await startReceiver(() => null);
    const fast = await startReceiver(() => 204);
    const h = await store.createEndpoint({ programId, url: hanging.url, events: ['*'] });
    const q = await store.createEndpoint({ programId, url: fast.url, events: ['*'] });
    await append(
      programId,
      Array.from({ length: 200 }, (_, i) => awarded(i + 1)),
    );

    const delivered = async (endpointId: string) =>
      Number(
        (
          await handle.db
            .selectFrom('webhook_deliveries')
            .select((eb) => eb.fn.countAll().as('n'))
            .where('endpoint_id', '=', endpointId)
            .where('status', '=', 'delivered')
            .executeTakeFirstOrThrow()
        ).n,
      );
    await waitFor(
      'the fast endpoint to get all 200',
      async () => (await delivered(q.endpoint.endpointId)) === 200,
      15_000,
    );
    const unfinished = Number(
      (
        await handle.db
          .selectFrom('webhook_deliveries')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('endpoint_id', '=', h.endpoint.endpointId)
          .where('status', 'in', ['pending', 'delivering'])
          .executeTakeFirstOrThrow()
      ).n,
    );
    assert.ok(unfinished > 0, `the hanging endpoint still has ${unfinished} deliveries to go`);
    assert.equal(new Set(fast.received.map((r) => headerOf(r, 'webhook-id'))).size, 200);
    await store.updateEndpoint(programId, h.endpoint.endpointId, { enabled: false });
  });

  it('redelivers and replays the same envelope id and the same bytes', async () => {
    const programId = 'prg_e2e5';
    const receiver = await startReceiver(() => 200);
    const e = await store.createEndpoint({
      programId,
      url: receiver.url,
      events: ['points.awarded'],
    });
    const since = new Date('2024-01-01T00:00:00Z');
    await append(programId, [awarded()]);
    await waitFor('the first delivery', () => receiver.received.length === 1);
    const [first] = await deliveriesOf(e.endpoint.endpointId);

    const again = await store.redeliver(programId, first!.delivery_id);
    assert.ok(again);
    worker.notify();
    await waitFor('the redelivery', () => receiver.received.length === 2);

    const replayed = await store.replay(programId, e.endpoint.endpointId, { since });
    assert.deepEqual(replayed, { queued: 1 });
    worker.notify();
    await waitFor('the replay', () => receiver.received.length === 3);

    const [one, two, three] = receiver.received;
    assert.equal(two!.body, one!.body);
    assert.equal(three!.body, one!.body);
    assert.equal(headerOf(two!, 'webhook-id'), headerOf(one!, 'webhook-id'));
    assert.equal(headerOf(three!, 'webhook-id'), headerOf(one!, 'webhook-id'));
    assert.equal(
      new Set([one, two, three].map((r) => headerOf(r!, 'x-incentable-delivery'))).size,
      3,
    );
    const series = (await deliveriesOf(e.endpoint.endpointId)).map((d) => d.series).sort();
    assert.deepEqual(series, [0, 1, 2]);
    assert.equal(
      await store.redeliver('prg_other', first!.delivery_id),
      null,
      'scoped to the program',
    );
  });

  it('sends a signed test event marked X-Incentable-Test, and signs with both keys while rotating', async () => {
    const programId = 'prg_e2e6';
    const receiver = await startReceiver(() => 200);
    const e = await store.createEndpoint({
      programId,
      url: receiver.url,
      events: ['member.created'],
    });
    const queued = await store.enqueueTest(programId, e.endpoint.endpointId, 'points.awarded');
    assert.ok(queued);
    worker.notify();
    await waitFor('the test event', () => receiver.received.length === 1);
    const got = receiver.received[0]!;
    assert.equal(headerOf(got, 'x-incentable-test'), 'true');
    const body = JSON.parse(got.body) as { id: string; type: string; data: unknown };
    assert.equal(body.id, queued.envelopeId);
    assert.equal(body.type, 'points.awarded');
    assert.deepEqual(body.data, catalogueEntryOf('points.awarded').sample);
    assert.ok(verifyWebhook(got.body, headerOf(got, 'x-incentable-signature'), e.secret));
    new Webhook(e.secret).verify(got.body, got.headers as Record<string, string>);

    const rotated = await store.rotateSecret(programId, e.endpoint.endpointId);
    assert.ok(rotated);
    assert.equal(await store.revealSecret(programId, e.endpoint.endpointId), rotated.secret);
    await store.enqueueTest(programId, e.endpoint.endpointId, 'member.created');
    worker.notify();
    await waitFor('the second test event', () => receiver.received.length === 2);
    const next = receiver.received[1]!;
    assert.ok(verifyWebhook(next.body, headerOf(next, 'x-incentable-signature'), rotated.secret));
    new Webhook(rotated.secret).verify(next.body, next.headers as Record<string, string>);
    new Webhook(e.secret).verify(next.body, next.headers as Record<string, string>);
  });
});
