import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { parseRetrySchedule } from '../../../delivery/retryPolicy.ts';
import {
  award,
  createMember,
  createProgram,
  expectStatus,
  runningClock,
  startTestApp,
  type Api,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';
import { always, headerOf, startReceiver, type Receiver } from '../../support/receiver.ts';
import { dashboardClient } from '../dashboard/dashboardClient.ts';

const scheduleText = '0ms,300ms,600ms,900ms,1200ms';
const schedule = parseRetrySchedule(scheduleText);
if (!schedule.ok) throw new Error(schedule.message);
const delaysMs = schedule.delaysS.map((s) => Math.round(s * 1000));
/**
 * How late an attempt may be. The worker sleeps until the earliest retry it scheduled (or its
 * 250 ms poll), then claims and sends; recording the previous attempt adds a few ms. It is never
 * early: a gap below the scheduled delay fails the test.
 */
const lateToleranceMs = 400;

type Mail = { to: string; subject: string; text: string };

/** The text of a plain-text message as received: quoted-printable soft breaks undone. */
const decode = (raw: string): Mail => {
  const unfolded = raw
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  const subject = /^Subject: (.*(?:\r?\n[ \t].*)*)/m
    .exec(unfolded)?.[1]
    ?.replace(/\r?\n[ \t]/g, ' ');
  return { to: '', subject: subject ?? '', text: unfolded };
};

const tokenInUrl = 'q-token-7f3a91';

describe('webhook retries through the running service', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let api: Api;
  let smtp: SMTPServer;
  const mails: Mail[] = [];
  const receivers: Receiver[] = [];
  const publicUrl = 'https://incentives.example.com';

  before(async () => {
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const mail = decode(Buffer.concat(chunks).toString('utf8'));
          mail.to = session.envelope.rcptTo.map((r) => r.address).join(',');
          mails.push(mail);
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()));
    const smtpPort = (smtp.server.address() as AddressInfo).port;
    app = await startTestApp({
      clock: runningClock(),
      env: {
        WEBHOOK_SECRET_KEY: randomBytes(32).toString('base64'),
        WEBHOOK_RETRY_SCHEDULE: scheduleText,
        WEBHOOK_TIMEOUT_MS: '1000',
        SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
        SMTP_FROM: 'Incentable <webhooks@example.com>',
        PUBLIC_URL: publicUrl,
      },
    });
    api = app.api;
  });

  after(async () => {
    await app?.stop();
    for (const r of receivers) await r.close();
    await new Promise<void>((resolve) => (smtp ? smtp.close(() => resolve()) : resolve()));
  });

  /** A program with its own notification address, one endpoint, and one award sent to it. */
  const scenario = async (answer: Parameters<typeof startReceiver>[0]) => {
    const receiver = await startReceiver(answer);
    receivers.push(receiver);
    const notificationEmail = `ops-${randomBytes(4).toString('hex')}@example.com`;
    const program = await createProgram(api, { notification_email: notificationEmail });
    const endpoint = expectStatus(
      await api.post<{ id: string }>(`/v1/programs/${program.id}/webhook-endpoints`, {
        // A token in the query string, as some receivers take one: no email may show it.
        url: `${receiver.url}?token=${tokenInUrl}`,
        events: ['points.awarded'],
      }),
      201,
    ).body;
    const member = await createMember(api, program.id);
    await award(api, program.id, member.id, 50, 'retry test');
    const deliveries = async () =>
      expectStatus(
        await api.get<{
          data: {
            id: string;
            event_id: string;
            status: string;
            attempts: number;
            last_status: number | null;
          }[];
        }>(`/v1/programs/${program.id}/webhook-deliveries?endpoint_id=${endpoint.id}`),
        200,
      ).body.data;
    const endpointView = async () =>
      expectStatus(
        await api.get<{
          enabled: boolean;
          disabled_reason: string | null;
          disabled_code: string | null;
        }>(`/v1/programs/${program.id}/webhook-endpoints/${endpoint.id}`),
        200,
      ).body;
    return { receiver, program, endpoint, notificationEmail, deliveries, endpointView };
  };

  it('makes exactly five attempts to an always-500 endpoint, on schedule, then fails it and mails once', async () => {
    const s = await scenario(always(500));
    await waitFor(
      'the delivery to fail',
      async () => (await s.deliveries())[0]?.status === 'failed',
      15_000,
    );
    await waitFor('the failure email', () => mails.some((m) => m.to === s.notificationEmail));

    const [delivery] = await s.deliveries();
    assert.equal(delivery!.attempts, 5);
    assert.equal(delivery!.last_status, 500);
    assert.equal(s.receiver.received.length, 5, 'exactly five POSTs');
    const ids = new Set(s.receiver.received.map((r) => headerOf(r, 'webhook-id')));
    assert.deepEqual([...ids], [delivery!.event_id], 'every attempt is the same event');
    for (let k = 1; k < 5; k += 1) {
      const gap = s.receiver.received[k]!.at - s.receiver.received[k - 1]!.at;
      const delay = delaysMs[k]!;
      assert.ok(
        gap >= delay,
        `attempt ${k + 1} came ${gap} ms after the previous, not before ${delay}`,
      );
      assert.ok(
        gap <= delay + lateToleranceMs,
        `attempt ${k + 1} came ${gap} ms after the previous, at most ${delay + lateToleranceMs}`,
      );
    }

    const detail = expectStatus(
      await api.get<{ attempts: { attempt: number; http_status: number }[] }>(
        `/v1/programs/${s.program.id}/webhook-deliveries/${delivery!.id}`,
      ),
      200,
    ).body;
    assert.deepEqual(
      detail.attempts.map((a) => [a.attempt, a.http_status]),
      [1, 2, 3, 4, 5].map((n) => [n, 500]),
    );

    const ours = mails.filter((m) => m.to === s.notificationEmail);
    assert.equal(ours.length, 1, 'one email');
    const [mail] = ours;
    assert.match(mail!.subject, /Webhook delivery failed: points\.awarded/);
    const named = `Endpoint: ${s.endpoint.id} at ${new URL(s.receiver.url).host}`;
    assert.ok(mail!.text.includes(named), 'names the endpoint by id and host');
    assert.ok(!`${mail!.subject}\n${mail!.text}`.includes(tokenInUrl), 'shows the query string');
    assert.ok(mail!.text.includes('Event type: points.awarded'), 'names the event type');
    assert.ok(mail!.text.includes(`Event id: ${delivery!.event_id}`), 'names the event id');
    assert.ok(mail!.text.includes('Last status: 500'), 'names the last status');
    assert.ok(
      mail!.text.includes(
        `${publicUrl}/dashboard/webhooks/${s.endpoint.id}/deliveries/${delivery!.id}`,
      ),
      'links the delivery in the dashboard',
    );
    // The link opens that delivery's page for a signed-in user (it once named a path the
    // dashboard does not serve).
    const link = /^Details and redelivery: (\S+)$/m.exec(mail!.text)?.[1];
    assert.ok(link, 'the email has the link line');
    const dashboard = dashboardClient(app.url);
    assert.equal((await dashboard.signIn(app.rootKey)).status, 303);
    let page = await dashboard.get(new URL(link).pathname);
    if (page.status === 303 && page.location) page = await dashboard.get(page.location);
    assert.equal(page.status, 200, `GET ${new URL(link).pathname}`);
    assert.ok(page.text.includes(delivery!.id), 'the page is the delivery');
    // Nothing is left to send: the row is terminal, so no sixth POST and no second email can follow.
    assert.equal((await s.endpointView()).enabled, true, 'a 500 does not disable the endpoint');
  });

  it('makes three attempts to an endpoint that fails twice and then answers 200, and ends delivered', async () => {
    const s = await scenario((_req, n) => ({ status: n <= 2 ? 500 : 200 }));
    await waitFor(
      'the delivery to succeed',
      async () => (await s.deliveries())[0]?.status === 'delivered',
      10_000,
    );
    const [delivery] = await s.deliveries();
    assert.equal(delivery!.attempts, 3);
    assert.equal(delivery!.last_status, 200);
    assert.equal(s.receiver.received.length, 3);
    assert.equal(
      new Set(s.receiver.received.map((r) => r.body)).size,
      1,
      'the same bytes each time',
    );
    assert.equal(mails.filter((m) => m.to === s.notificationEmail).length, 0, 'no email');
  });

  it('disables an endpoint that answers 410 Gone, after one attempt, and the email says so', async () => {
    const s = await scenario(always(410));
    await waitFor(
      'the delivery to be gone',
      async () => (await s.deliveries())[0]?.status === 'gone',
      10_000,
    );
    await waitFor('the email', () => mails.some((m) => m.to === s.notificationEmail));
    const [delivery] = await s.deliveries();
    assert.equal(delivery!.attempts, 1);
    assert.equal(s.receiver.received.length, 1, 'a 410 is not retried');
    const view = await s.endpointView();
    assert.equal(view.enabled, false);
    assert.match(view.disabled_reason ?? '', /410 Gone/);
    assert.equal(view.disabled_code, 'gone');
    const ours = mails.filter((m) => m.to === s.notificationEmail);
    assert.equal(ours.length, 1);
    assert.match(ours[0]!.subject, /Webhook endpoint disabled \(410 Gone\)/);
    assert.match(ours[0]!.text, /answered 410 Gone, so it has been disabled/);
    assert.ok(
      ours[0]!.text.includes(`Endpoint: ${s.endpoint.id} at ${new URL(s.receiver.url).host}`),
    );
    assert.ok(!`${ours[0]!.subject}\n${ours[0]!.text}`.includes(tokenInUrl));
    assert.ok(ours[0]!.text.includes('Last status: 410'));

    // A disabled endpoint gets nothing new: the projector queues no delivery for it.
    const member = await createMember(api, s.program.id);
    await award(api, s.program.id, member.id, 5);
    await app.runtime.webhookProjection!.caughtUp();
    assert.equal((await s.deliveries()).length, 1);
  });
});
