import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  createMember,
  createProgram,
  expectStatus,
  startTestApp,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';
import { startReceiver, type Answer, type Receiver } from '../../support/receiver.ts';
import { dashboardClient } from '../dashboard/dashboardClient.ts';

type Attempt = { attempt: number; http_status: number | null; retry_after_s: number | null };
type Delivery = {
  id: string;
  status: string;
  attempts: number;
  next_attempt_at: string | null;
};
type Detail = Delivery & { endpoint_id: string; attempts: Attempt[] };

/**
 * Backpressure: a 429 or 503 with Retry-After pushes the next attempt back to at least that long,
 * clamped to [the schedule's delay, 24 h]. The clock is injected and frozen, so every due time is
 * exact; it moves only when the test moves it.
 */
describe('Retry-After from the receiver', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let programId: string;
  const receivers: Receiver[] = [];
  const start = new Date('2026-03-02T09:00:00.000Z');
  const p = (path: string) => `/v1/programs/${programId}${path}`;

  before(async () => {
    app = await startTestApp({
      now: start,
      env: { WEBHOOK_RETRY_SCHEDULE: '0s,1s,1s', WEBHOOK_TIMEOUT_MS: '2000' },
    });
    programId = (await createProgram(app.api)).id;
  });
  after(async () => {
    await app?.stop();
    for (const r of receivers) await r.close();
  });

  /** An endpoint whose first answer is `first`, then 200; the first delivery once attempted. */
  const firstAttempt = async (first: Answer): Promise<{ detail: Detail; receiver: Receiver }> => {
    const receiver = await startReceiver((_request, n) => (n === 1 ? first : { status: 200 }));
    receivers.push(receiver);
    const endpoint = expectStatus(
      await app.api.post<{ id: string }>(p('/webhook-endpoints'), {
        url: receiver.url,
        events: ['member.created'],
      }),
      201,
    ).body;
    await createMember(app.api, programId);
    let detail: Detail | undefined;
    await waitFor('the first attempt recorded', async () => {
      const list = expectStatus(
        await app.api.get<{ data: Delivery[] }>(
          p(`/webhook-deliveries?endpoint_id=${endpoint.id}`),
        ),
        200,
      ).body.data;
      if (list[0]?.attempts !== 1) return false;
      detail = expectStatus(
        await app.api.get<Detail>(p(`/webhook-deliveries/${list[0].id}`)),
        200,
      ).body;
      return true;
    });
    return { detail: detail!, receiver };
  };

  const secondsAfter = (iso: string | null, from: Date) =>
    iso === null ? null : (new Date(iso).getTime() - from.getTime()) / 1000;

  it('waits as many seconds as a 503 asks, logs it, then delivers', async () => {
    const now = app.clock.now();
    const { detail, receiver } = await firstAttempt({
      status: 503,
      headers: { 'Retry-After': '120' },
    });
    assert.equal(detail.status, 'pending');
    assert.equal(secondsAfter(detail.next_attempt_at, now), 120);
    assert.equal(detail.attempts[0]!.retry_after_s, 120);
    assert.equal(detail.attempts[0]!.http_status, 503);
    // The dashboard's delivery page shows it beside the attempt's status (one program: the
    // root key's session opens on it).
    const dashboard = dashboardClient(app.url);
    assert.equal((await dashboard.signIn(app.rootKey)).status, 303);
    const page = await dashboard.get(
      `/dashboard/settings/webhooks/${detail.endpoint_id}/deliveries/${detail.id}`,
    );
    assert.equal(page.status, 200);
    assert.match(page.text, /data-retry-after="120">Retry-After 120 s/);
    // Due once the clock reaches the 120 s (the schedule alone said 1 s).
    app.clock.advance(120_000);
    await receiver.waitForCount(2);
  });

  it('reads an HTTP date on a 429', async () => {
    const now = app.clock.now();
    const at = new Date(now.getTime() + 90_000).toUTCString();
    const { detail } = await firstAttempt({ status: 429, headers: { 'Retry-After': at } });
    assert.equal(secondsAfter(detail.next_attempt_at, now), 90);
    assert.equal(detail.attempts[0]!.retry_after_s, 90);
  });

  it('clamps to 24 hours, and to no less than the schedule', async () => {
    const now = app.clock.now();
    const long = await firstAttempt({ status: 503, headers: { 'Retry-After': '31536000' } });
    assert.equal(secondsAfter(long.detail.next_attempt_at, now), 86_400);
    const short = await firstAttempt({ status: 503, headers: { 'Retry-After': '0' } });
    assert.equal(secondsAfter(short.detail.next_attempt_at, now), 1);
  });

  it('ignores Retry-After on other statuses, and values it cannot read', async () => {
    const now = app.clock.now();
    const on500 = await firstAttempt({ status: 500, headers: { 'Retry-After': '600' } });
    assert.equal(secondsAfter(on500.detail.next_attempt_at, now), 1);
    assert.equal(on500.detail.attempts[0]!.retry_after_s, null);
    const garbled = await firstAttempt({ status: 503, headers: { 'Retry-After': 'later' } });
    assert.equal(secondsAfter(garbled.detail.next_attempt_at, now), 1);
    assert.equal(garbled.detail.attempts[0]!.retry_after_s, null);
  });
});
