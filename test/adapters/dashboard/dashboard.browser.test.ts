import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { Webhook } from 'standardwebhooks';
import { webhookEventTypes } from '../../../delivery/catalogue.ts';
import {
  award,
  createMember,
  createProgram,
  createReward,
  expectStatus,
  settle,
  startTestApp,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';

/** Debian's chromium, which test/ensureChromium.sh installs; CHROMIUM_PATH points elsewhere. */
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const chromiumFlags = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
// The test command installs Chromium or stops first (test/ensureChromium.sh): a missing browser
// here is a failure, never a skip.
const skip = skipWithoutPostgres;

const screenshotDir = join(
  new URL('../../..', import.meta.url).pathname,
  'test-results',
  'dashboard',
);
const widths = [1280, 390] as const;

/** The docs' verifier, verbatim in spirit: hex HMAC-SHA256 of the raw body with the secret. */
const verifyWebhook = (payload: string, signature: string, secret: string): boolean => {
  const expected = createHmac('sha256', secret).update(payload).digest('hex');
  return (
    signature.length === expected.length &&
    timingSafeEqual(Buffer.from(signature), Buffer.from(expected))
  );
};

type Received = { headers: IncomingMessage['headers']; body: string };

/** A loopback receiver that answers 200, or 500 while `failing` is set. */
const startReceiver = async () => {
  const received: Received[] = [];
  const state = { failing: false };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (state.failing)
        res.writeHead(500, { 'content-type': 'text/plain' }).end('receiver is down');
      else res.writeHead(200, { 'content-type': 'text/plain' }).end('thanks');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks/incentable`,
    received,
    state,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};

const header = (r: Received, name: string): string => {
  const value = r.headers[name];
  assert.equal(typeof value, 'string', `header ${name}`);
  return value as string;
};

describe('admin dashboard in a browser', { skip }, () => {
  let app: TestApp;
  let context: BrowserContext;
  let page: Page;
  let userDataDir: string;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let programId: string;
  let memberId: string;

  /** Saves the page at both widths: test-results/dashboard/<name>-<width>.png. */
  const screenshot = async (name: string) => {
    for (const width of widths) {
      await page.setViewportSize({ width, height: 900 });
      await page.screenshot({ path: join(screenshotDir, `${name}-${width}.png`), fullPage: true });
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  };

  /** Reloads the endpoint page until `check` holds: delivery happens in the background. */
  const refreshUntil = async (what: string, check: () => Promise<boolean>) => {
    await waitFor(
      what,
      async () => {
        await page.getByRole('link', { name: 'Refresh' }).click();
        return check();
      },
      15_000,
    );
  };

  before(async () => {
    if (!existsSync(chromiumPath)) {
      throw new Error(
        `no Chromium at ${chromiumPath}: run bash test/ensureChromium.sh (it installs Debian's chromium, or says what to install)`,
      );
    }
    mkdirSync(screenshotDir, { recursive: true });
    app = await startTestApp();
    receiver = await startReceiver();
    programId = (await createProgram(app.api, { name: 'Acme Rewards' })).id;
    const jane = await createMember(app.api, programId, { name: 'Jane Doe' });
    memberId = jane.id;
    await award(app.api, programId, jane.id, 1200, 'Q2 Sales Target');
    await award(app.api, programId, jane.id, 300, 'Referral');
    const reward = await createReward(app.api, programId, {
      name: 'Amazon Gift Card $25',
      points_cost: 500,
      kind: 'digital',
    });
    expectStatus(
      await app.api.post(`/v1/programs/${programId}/members/${jane.id}/redemptions`, {
        reward_id: reward.id,
      }),
      201,
    );
    for (const name of ['Sam Lee', 'Ana Ruiz']) {
      const m = await createMember(app.api, programId, { name });
      await award(app.api, programId, m.id, 250);
    }
    await settle(app.runtime);

    userDataDir = mkdtempSync(join(tmpdir(), 'incentable-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      headless: true,
      args: chromiumFlags,
      viewport: { width: 1280, height: 900 },
    });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: app.url });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('dialog', (dialog) => {
      throw new Error(`unexpected dialog: ${dialog.message()}`);
    });
  });

  after(async () => {
    await context?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
    await receiver?.close();
    await app?.stop();
  });

  it('takes an admin from sign-in through an endpoint’s whole life', async () => {
    await page.goto(`${app.url}/dashboard/`);
    assert.match(page.url(), /\/dashboard\/sign-in$/);
    await screenshot('sign-in');

    await page.getByLabel('API key').fill(app.rootKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    assert.equal(await page.locator('[data-stat="members"]').textContent(), '3');
    assert.equal(await page.locator('[data-stat="awarded"]').textContent(), '2,000');
    assert.equal(await page.locator('[data-stat="redeemed"]').textContent(), '500');
    await screenshot('overview');

    await page.getByRole('link', { name: 'Members', exact: true }).click();
    await page.getByLabel('Search by name or e-mail').fill('jane');
    await page.getByRole('button', { name: 'Search' }).click();
    assert.equal(await page.locator('table.members tbody tr').count(), 1);
    await page.getByLabel('Search by name or e-mail').fill('');
    await page.getByRole('button', { name: 'Search' }).click();
    assert.equal(await page.locator('table.members tbody tr').count(), 3);
    await screenshot('members');
    await page.getByRole('link', { name: 'Jane Doe' }).click();
    assert.match(page.url(), new RegExp(`/dashboard/members/${memberId}$`));
    // Newest first: the redemption's deduction, then the two awards, with the balance after each.
    const balances = await page.locator('table.ledger tbody tr td:last-child').allTextContents();
    assert.deepEqual(
      balances.map((b) => b.trim()),
      ['1,000', '1,500', '1,200'],
    );
    await screenshot('member');

    // Settings -> Webhooks -> Add Endpoint, as the docs say.
    await page.getByRole('link', { name: 'Settings → Webhooks' }).click();
    await page.getByRole('link', { name: 'Add Endpoint' }).click();
    await page.getByLabel('Endpoint URL').fill(receiver.url);
    await page.getByLabel('Description').fill('Order sync');
    // "Select all" ticks every event; the form then narrows to two.
    await page.getByLabel('Select all events').check();
    assert.equal(
      await page.locator('input[name="events"]:checked').count(),
      webhookEventTypes.length,
    );
    await page.getByLabel('Select all events').uncheck();
    assert.equal(await page.locator('input[name="events"]:checked').count(), 0);
    await page.getByRole('group', { name: 'Points events' }).getByLabel('points.awarded').check();
    await page.getByRole('group', { name: 'Member events' }).getByLabel('member.created').check();
    await screenshot('endpoint-new');
    await page.getByRole('button', { name: 'Save endpoint' }).click();

    // Save and copy your webhook secret.
    await page.getByLabel('Your webhook secret').waitFor();
    await page.getByRole('button', { name: 'Copy' }).click();
    await page.getByText('Copied to the clipboard.').waitFor();
    const secret = await page.evaluate<string>('navigator.clipboard.readText()');
    assert.match(secret, /^whsec_[A-Za-z0-9+/]+=*$/);
    assert.equal(await page.getByLabel('Your webhook secret').inputValue(), secret);
    assert.equal(
      (await page.locator('[data-field="events"]').textContent())?.trim(),
      'points.awarded, member.created',
    );
    const endpointUrl = page.url();

    // Send Test Event: it reaches the receiver signed with the copied secret.
    await page.getByLabel('Event type').selectOption('points.awarded');
    await page.getByRole('button', { name: 'Send Test Event' }).click();
    await waitFor('the test event at the receiver', () => receiver.received.length === 1);
    const first = receiver.received[0]!;
    assert.equal(verifyWebhook(first.body, header(first, 'x-incentable-signature'), secret), true);
    assert.doesNotThrow(() =>
      new Webhook(secret).verify(first.body, first.headers as Record<string, string>),
    );
    assert.equal(header(first, 'x-incentable-test'), 'true');
    const firstEvent = JSON.parse(first.body) as { id: string; type: string };
    assert.equal(firstEvent.type, 'points.awarded');

    // The delivery log shows it, with its attempt.
    const firstCard = page.locator('li.delivery').filter({ hasText: firstEvent.id });
    await refreshUntil(
      'the delivered test in the log',
      async () => (await firstCard.getAttribute('data-status')) === 'delivered',
    );
    assert.equal(
      await firstCard.locator('[data-attempt="1"] [data-http-status]').textContent(),
      '200',
    );
    assert.match((await firstCard.locator('[data-attempt="1"]').textContent()) ?? '', /thanks/);
    await firstCard.getByText('Payload').click();
    assert.match(
      (await firstCard.locator('pre').textContent()) ?? '',
      /"reason": "Q2 Sales Target"/,
    );
    await screenshot('endpoint');

    // The receiver fails: the first attempt is logged with a retry time, then the retry appears.
    receiver.state.failing = true;
    await page.getByLabel('Event type').selectOption('member.created');
    await page.getByRole('button', { name: 'Send Test Event' }).click();
    await waitFor('the failing attempt', () => receiver.received.length === 2);
    const failingId = (JSON.parse(receiver.received[1]!.body) as { id: string }).id;
    const failingCard = page.locator('li.delivery').filter({ hasText: failingId });
    await refreshUntil(
      'the failed attempt with its retry time',
      async () => (await failingCard.getAttribute('data-attempts')) === '1',
    );
    assert.equal(await failingCard.getAttribute('data-status'), 'pending');
    assert.equal(
      await failingCard.locator('[data-attempt="1"] [data-http-status]').textContent(),
      '500',
    );
    assert.match((await failingCard.locator('[data-next-retry]').textContent()) ?? '', /UTC/);
    app.clock.advance(5 * 60 * 1000 + 1000);
    app.runtime.worker?.notify();
    await waitFor('the retry at the receiver', () => receiver.received.length === 3);
    await refreshUntil(
      'the retry in the log',
      async () => (await failingCard.locator('[data-attempt="2"]').count()) === 1,
    );
    await screenshot('endpoint-retry');

    // Resend the first delivery: same event id, same bytes, a new delivery in the log.
    receiver.state.failing = false;
    await firstCard.getByRole('button', { name: 'Resend' }).click();
    await waitFor('the resend at the receiver', () => receiver.received.length === 4);
    const resent = receiver.received[3]!;
    assert.equal(resent.body, first.body);
    assert.equal(header(resent, 'webhook-id'), header(first, 'webhook-id'));
    await refreshUntil(
      'the resend in the log',
      async () =>
        (await page.locator('li.delivery').filter({ hasText: firstEvent.id }).count()) === 2,
    );

    // Rotate: a new secret is shown and signs from now on.
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    await page.getByLabel('New webhook secret').waitFor();
    const rotated = await page.getByLabel('New webhook secret').inputValue();
    assert.notEqual(rotated, secret);
    await page.getByRole('button', { name: 'Send Test Event' }).click();
    await waitFor('the test signed with the new secret', () => receiver.received.length === 5);
    const afterRotation = receiver.received[4]!;
    assert.equal(
      verifyWebhook(afterRotation.body, header(afterRotation, 'x-incentable-signature'), rotated),
      true,
    );

    // Reveal shows the current secret again.
    await page.goto(endpointUrl);
    await page.getByRole('button', { name: 'Reveal secret' }).click();
    assert.equal(await page.getByLabel('Webhook secret').inputValue(), rotated);

    // Disable, then delete with confirmation.
    await page.getByRole('button', { name: 'Disable' }).click();
    await page.getByText('Endpoint disabled.').waitFor();
    assert.match((await page.locator('[data-field="state"]').textContent()) ?? '', /Disabled/);
    assert.equal((await app.runtime.webhooks.listEndpoints(programId))[0]?.enabled, false);

    await page.getByRole('link', { name: 'Settings → Webhooks' }).click();
    assert.match((await page.locator('li.card').first().textContent()) ?? '', /Disabled/);
    assert.match((await page.locator('.health').first().textContent()) ?? '', /%/);
    await screenshot('webhooks');

    await page.goto(endpointUrl);
    await page.getByRole('link', { name: 'Delete' }).click();
    await screenshot('endpoint-delete');
    await page.getByRole('button', { name: 'Delete endpoint' }).click();
    await page.getByText(`Endpoint ${receiver.url} deleted.`).waitFor();
    assert.equal((await app.runtime.webhooks.listEndpoints(programId)).length, 0);
    assert.equal(await page.locator('li.card').count(), 0);

    await page.getByRole('button', { name: 'Sign out' }).click();
    assert.match(page.url(), /\/dashboard\/sign-in$/);
    await page.goto(`${app.url}/dashboard/overview`);
    assert.match(page.url(), /\/dashboard\/sign-in\?next=%2Fdashboard%2Foverview$/);
  });

  it('renders a hostile endpoint description and member name as text', async () => {
    const hostile = `<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">`;
    const { endpoint } = await app.runtime.webhooks.createEndpoint({
      programId,
      url: receiver.url,
      events: ['points.awarded'],
      description: hostile,
    });
    const member = await createMember(app.api, programId, { name: hostile });
    await settle(app.runtime);

    await page.goto(`${app.url}/dashboard/sign-in`);
    await page.getByLabel('API key').fill(app.rootKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const pages = [
      '/dashboard/settings/webhooks',
      `/dashboard/settings/webhooks/${endpoint.endpointId}`,
      '/dashboard/members',
      `/dashboard/members/${member.id}`,
    ];
    for (const path of pages) {
      await page.goto(`${app.url}${path}`);
      assert.equal(await page.evaluate<unknown>('window.__xss'), undefined);
      assert.equal(await page.locator('main script, main img').count(), 0);
      assert.equal(await page.getByText(hostile).first().isVisible(), true, path);
    }
    await screenshot('xss');
  });
});
