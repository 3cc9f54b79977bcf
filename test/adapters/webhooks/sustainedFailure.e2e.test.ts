import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { SMTPServer } from 'smtp-server';
import {
  createMember,
  createProgram,
  expectStatus,
  startTestApp,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';
import { startReceiver, type Receiver, type Responder } from '../../support/receiver.ts';

type Mail = { to: string; subject: string; text: string };
type EndpointView = {
  id: string;
  enabled: boolean;
  disabled_code: string | null;
  disabled_reason: string | null;
  failing_since: string | null;
};

/**
 * Sustained failure with shortened settings and an injected, frozen clock: disabled after 10
 * minutes of nothing but failures with at least 2 deliveries failed for good, warned at 5.
 * Attempts happen only when the test moves the clock (schedule 0s,1s: two attempts each).
 */
describe('auto-disable after sustained failure', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let smtp: SMTPServer;
  const mails: Mail[] = [];
  const receivers: Receiver[] = [];
  const start = new Date('2026-04-01T08:00:00.000Z');

  before(async () => {
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks)
            .toString('utf8')
            .replace(/=\r?\n/g, '')
            .replace(/=([0-9A-F]{2})/g, (_m, hex: string) =>
              String.fromCharCode(parseInt(hex, 16)),
            );
          const subject = /^Subject: (.*(?:\r?\n[ \t].*)*)/m
            .exec(raw)?.[1]
            ?.replace(/\r?\n[ \t]/g, ' ');
          mails.push({
            to: session.envelope.rcptTo.map((r) => r.address).join(','),
            subject: subject ?? '',
            text: raw,
          });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()));
    app = await startTestApp({
      now: start,
      env: {
        WEBHOOK_RETRY_SCHEDULE: '0s,1s',
        WEBHOOK_TIMEOUT_MS: '2000',
        WEBHOOK_DISABLE_AFTER: '10m',
        WEBHOOK_DISABLE_MIN_FAILED: '2',
        SMTP_URL: `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`,
        SMTP_FROM: 'Incentable <webhooks@example.com>',
      },
    });
  });
  after(async () => {
    await app?.stop();
    for (const r of receivers) await r.close();
    await new Promise<void>((resolve) => smtp?.close(() => resolve()));
  });

  /** A program of its own (its own address), an endpoint answering as told. */
  const scenario = async (responder: Responder) => {
    const email = `ops-${receivers.length}@example.com`;
    const program = await createProgram(app.api, { notification_email: email });
    const receiver = await startReceiver(responder);
    receivers.push(receiver);
    const p = (path: string) => `/v1/programs/${program.id}${path}`;
    const endpoint = expectStatus(
      await app.api.post<EndpointView>(p('/webhook-endpoints'), {
        url: receiver.url,
        events: ['member.created'],
      }),
      201,
    ).body;
    const view = async () =>
      expectStatus(await app.api.get<EndpointView>(p(`/webhook-endpoints/${endpoint.id}`)), 200)
        .body;
    /** Every delivery of the endpoint has reached a final state (or `status`). */
    const settled = (status = ['delivered', 'failed']) =>
      waitFor('the deliveries to settle', async () => {
        const rows = await sql<{ n: number }>`
          select count(*)::int as n from webhook_deliveries
          where endpoint_id = ${endpoint.id} and status <> all(${status}::text[])`.execute(
          app.runtime.database.db,
        );
        return rows.rows[0]!.n === 0;
      });
    /** One event, both attempts made: the first now, the retry once the clock moved 1 s. */
    const failOne = async () => {
      const before = receiver.received.length;
      await createMember(app.api, program.id);
      await receiver.waitForCount(before + 1);
      await waitFor('the first attempt recorded', async () => {
        const rows = await sql<{ n: number }>`
          select count(*)::int as n from webhook_deliveries
          where endpoint_id = ${endpoint.id} and status = 'delivering'`.execute(
          app.runtime.database.db,
        );
        return rows.rows[0]!.n === 0;
      });
      app.clock.advance(1_000);
      await settled();
    };
    return { email, endpoint, receiver, view, failOne, settled };
  };

  const mailsTo = (to: string) => mails.filter((m) => m.to === to);

  it('warns at half the time, then disables with code sustained_failure and says so', async () => {
    const s = await scenario(() => ({ status: 500 }));
    const failingFrom = app.clock.now();
    await s.failOne();
    assert.equal((await s.view()).failing_since, failingFrom.toISOString());
    await waitFor('the failed delivery email', () =>
      mailsTo(s.email).some((m) => m.subject.startsWith('Webhook delivery failed')),
    );

    // Half the time: the next failure brings the warning, once.
    app.clock.advance(5 * 60_000);
    await s.failOne();
    await waitFor('the warning', () =>
      mailsTo(s.email).some((m) => m.subject.startsWith('Webhook endpoint failing for')),
    );
    const warning = mailsTo(s.email).find((m) => m.subject.startsWith('Webhook endpoint failing'))!;
    assert.match(warning.text, /will be disabled \(reason: sustained_failure\)/);
    assert.equal((await s.view()).enabled, true);

    // The whole time, with two deliveries failed for good: the next failed attempt disables it
    // (that delivery stays pending, for when it is enabled again).
    app.clock.advance(5 * 60_000);
    await createMember(app.api, (await programOf(s.endpoint.id))!);
    await waitFor('the endpoint disabled', async () => !(await s.view()).enabled);
    const view = await s.view();
    assert.equal(view.disabled_code, 'sustained_failure');
    assert.match(view.disabled_reason ?? '', /Every delivery attempt failed from/);
    await waitFor('the disabling email', () =>
      mailsTo(s.email).some((m) => m.subject.startsWith('Webhook endpoint disabled after')),
    );
    assert.equal(
      mailsTo(s.email).filter((m) => m.subject.startsWith('Webhook endpoint failing')).length,
      1,
      'one warning per failing spell',
    );
    const stored = await sql<{ kind: string; delivery_id: string | null }>`
      select kind, delivery_id from webhook_notifications
      where endpoint_id = ${s.endpoint.id} and kind <> 'delivery_failed'
      order by created_at`.execute(app.runtime.database.db);
    assert.deepEqual(
      stored.rows.map((r) => [r.kind, r.delivery_id]),
      [
        ['endpoint_failing', null],
        ['endpoint_disabled', null],
      ],
    );

    // Re-enabled, its clock starts again: the next failure does not disable it at once.
    const programId = (
      await sql<{ program_id: string }>`
        select program_id from webhook_endpoints where endpoint_id = ${s.endpoint.id}`.execute(
        app.runtime.database.db,
      )
    ).rows[0]!.program_id;
    expectStatus(
      await app.api.patch(`/v1/programs/${programId}/webhook-endpoints/${s.endpoint.id}`, {
        enabled: true,
      }),
      200,
    );
    const reenabled = await s.view();
    assert.equal(reenabled.disabled_code, null);
    assert.equal(reenabled.failing_since, null);
    const clockAgain = app.clock.now();
    await s.failOne();
    const after = await s.view();
    assert.equal(after.enabled, true);
    assert.equal(after.failing_since, clockAgain.toISOString());
  });

  it('starts the clock again at any success', async () => {
    // Fails the first two requests (one delivery), then answers 200.
    const s = await scenario((_request, n) => ({ status: n <= 2 ? 500 : 200 }));
    await s.failOne();
    assert.notEqual((await s.view()).failing_since, null);
    app.clock.advance(11 * 60_000);
    await createMember(app.api, (await programOf(s.endpoint.id))!);
    await s.receiver.waitForCount(3);
    await s.settled();
    const view = await s.view();
    assert.equal(view.enabled, true, 'a success is not a sustained failure');
    assert.equal(view.failing_since, null);
  });

  it('is not disabled on time alone: fewer than the minimum of failed deliveries', async () => {
    const s = await scenario(() => ({ status: 503 }));
    await s.failOne();
    app.clock.advance(11 * 60_000);
    // The first attempt of a second delivery fails: 11 minutes of failure, one failed for good.
    const before = s.receiver.received.length;
    await createMember(app.api, (await programOf(s.endpoint.id))!);
    await s.receiver.waitForCount(before + 1);
    await s.settled(['delivered', 'failed', 'pending']);
    assert.equal((await s.view()).enabled, true);
  });

  const programOf = async (endpointId: string) =>
    (
      await sql<{ program_id: string }>`
        select program_id from webhook_endpoints where endpoint_id = ${endpointId}`.execute(
        app.runtime.database.db,
      )
    ).rows[0]?.program_id;
});
