import * as crypto from 'node:crypto';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  catalogueEntryOf,
  webhookEventTypes,
  type WebhookEventType,
} from '../../../delivery/catalogue.ts';
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
import {
  always,
  headerOf,
  startReceiver,
  stringHeaders,
  type Receiver,
  type ReceivedWebhook,
} from '../../support/receiver.ts';
import { docsSnippetAccepts, standardWebhooksAccepts } from '../../support/docsSnippet.ts';

const docsAccept = (got: ReceivedWebhook, secret: string): boolean =>
  docsSnippetAccepts(got.body, headerOf(got, 'x-incentable-signature'), secret);
const standardAccepts = (got: ReceivedWebhook, secret: string): boolean =>
  standardWebhooksAccepts(secret, got.body, stringHeaders(got));

type Endpoint = {
  id: string;
  url: string;
  events: string[];
  description: string;
  enabled: boolean;
  disabled_reason: string | null;
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
};
type Delivery = {
  id: string;
  endpoint_id: string;
  event_id: string;
  type: string;
  test: boolean;
  series: number;
  status: string;
  attempts: number;
  last_status: number | null;
};
type DeliveryDetail = Delivery & {
  payload: string;
  attempts: {
    attempt: number;
    duration_ms: number;
    http_status: number | null;
    response_body: string | null;
    error_kind: string | null;
  }[];
};
type DeliveryPage = { data: Delivery[]; next_cursor: string | null };

const secretKey = () => ({ WEBHOOK_SECRET_KEY: crypto.randomBytes(32).toString('base64') });
const whsec = /^whsec_[A-Za-z0-9+/]{43}=$/;
const missingEndpoint = 'we_aaaaaaaaaaaaaaaaaaaa';

/** The docs' "Available Events" tables, as published. */
const docsTables = [
  {
    name: 'Points events',
    types: [
      ['points.awarded', "Points were added to a member's balance"],
      ['points.deducted', "Points were removed from a member's balance"],
      ['points.expired', 'Points expired due to inactivity'],
    ],
  },
  {
    name: 'Member events',
    types: [
      ['member.created', 'A new member was added'],
      ['member.updated', 'Member details were changed'],
      ['member.tier_changed', 'Member moved to a different tier'],
      ['member.deactivated', 'A member was deactivated'],
      ['member.reactivated', 'A deactivated member was reactivated'],
    ],
  },
  {
    name: 'Reward events',
    types: [
      ['reward.redeemed', 'A member redeemed a reward'],
      ['order.shipped', 'A physical reward was shipped'],
      ['order.delivered', 'A reward was delivered'],
      ['order.cancelled', 'An order was cancelled and its points refunded'],
    ],
  },
  {
    name: 'Leaderboard events',
    types: [
      ['leaderboard.position_changed', "A member's ranking changed"],
      ['leaderboard.period_ended', 'A competition period ended'],
    ],
  },
];

describe('the webhook API', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let api: Api;
  let programId: string;
  let receiver: Receiver;
  let failing: Receiver;
  const base = () => `/v1/programs/${programId}/webhook-endpoints`;
  const create = (body: Record<string, unknown>) =>
    api.post<Endpoint & { secret: string }>(base(), body);

  before(async () => {
    receiver = await startReceiver();
    failing = await startReceiver(always(500));
    app = await startTestApp({ clock: runningClock(), env: secretKey() });
    api = app.api;
    programId = (await createProgram(api)).id;
  });

  after(async () => {
    await app?.stop();
    await receiver?.close();
    await failing?.close();
  });

  describe('endpoints', () => {
    it('are created (201, with a whsec_ secret), listed, read, changed and deleted', async () => {
      const created = expectStatus(
        await create({
          url: `${receiver.origin}/crud`,
          events: ['points.awarded', 'points.awarded', 'member.created'],
          description: 'CRM sync',
        }),
        201,
      ).body;
      assert.match(created.secret, whsec);
      assert.match(created.id, /^we_/);
      assert.deepEqual(created.events, ['points.awarded', 'member.created'], 'deduplicated');
      assert.equal(created.enabled, true);
      assert.equal(created.description, 'CRM sync');

      const listed = expectStatus(await api.get<{ data: Endpoint[] }>(base()), 200).body;
      const found = listed.data.find((e) => e.id === created.id);
      assert.ok(found);
      assert.equal('secret' in found, false, 'a list never shows the secret');

      const read = expectStatus(await api.get<Endpoint>(`${base()}/${created.id}`), 200).body;
      assert.equal(read.url, `${receiver.origin}/crud`);
      assert.equal('secret' in read, false);

      const secret = expectStatus(
        await api.get<{ secret: string }>(`${base()}/${created.id}/secret`),
        200,
      );
      assert.equal(secret.body.secret, created.secret, 'GET secret returns the same secret');
      assert.equal(secret.headers.get('cache-control'), 'no-store');

      const patched = expectStatus(
        await api.patch<Endpoint>(`${base()}/${created.id}`, {
          events: ['*'],
          description: 'all of it',
          enabled: false,
        }),
        200,
      ).body;
      assert.deepEqual(patched.events, ['*']);
      assert.equal(patched.description, 'all of it');
      assert.equal(patched.enabled, false);

      expectStatus(await api.request('DELETE', `${base()}/${created.id}`), 204);
      for (const response of [
        await api.get(`${base()}/${created.id}`),
        await api.patch(`${base()}/${created.id}`, { enabled: true }),
        await api.request('DELETE', `${base()}/${created.id}`),
        await api.get(`${base()}/${missingEndpoint}/secret`),
        await api.post(`${base()}/${missingEndpoint}/rotate-secret`, {}),
        await api.post(`${base()}/${missingEndpoint}/test`, { type: 'points.awarded' }),
      ]) {
        assert.equal(response.status, 404, response.text);
        assert.equal(response.body.error?.code, 'not_found');
      }
    });

    const refusals: [string, Record<string, unknown>, string][] = [
      ['an ftp:// url', { url: 'ftp://example.com/hook', events: ['*'] }, 'url'],
      ['credentials in the url', { url: 'https://user:pw@example.com/hook', events: ['*'] }, 'url'],
      [
        'a url of 2049 characters',
        { url: `https://example.com/${'a'.repeat(2049 - 20)}`, events: ['*'] },
        'url',
      ],
      [
        'an unknown event type',
        { url: 'https://example.com/h', events: ['points.gifted'] },
        'events',
      ],
      [
        '"*" with other types',
        { url: 'https://example.com/h', events: ['*', 'points.awarded'] },
        'events',
      ],
      ['no events', { url: 'https://example.com/h', events: [] }, 'events'],
      ['an unknown field', { url: 'https://example.com/h', events: ['*'], secret: 'x' }, 'secret'],
    ];
    for (const [what, body, field] of refusals) {
      it(`refuses ${what} with a 400 naming ${field}`, async () => {
        if (typeof body.url === 'string' && body.url.length > 2048)
          assert.equal(body.url.length, 2049);
        const response = await create(body);
        assert.equal(response.status, 400, response.text);
        assert.equal(response.body.error?.code, 'validation_error');
        assert.equal(response.body.error?.field, field);
        if (field === 'secret') assert.match(response.body.error?.message ?? '', /secret/);
      });
    }

    it('accepts a 2048-character url', async () => {
      const url = `https://example.com/${'a'.repeat(2048 - 20)}`;
      assert.equal(url.length, 2048);
      expectStatus(await create({ url, events: ['*'] }), 201);
    });
  });

  describe('address rules (SSRF)', () => {
    const privateUrls = [
      'http://127.0.0.1:9/hook',
      'http://localhost:8080/hook',
      'http://[::1]/hook',
      'http://10.1.2.3/hook',
      'http://172.16.0.1/hook',
      'http://192.168.1.10/hook',
      'http://2130706433/hook',
    ];
    const neverUrls = ['http://169.254.169.254/latest/meta-data/', 'http://[fd00:ec2::254]/'];

    it('with private networks allowed (the default outside production) accepts loopback, never metadata', async () => {
      for (const url of privateUrls)
        expectStatus(await create({ url, events: ['points.awarded'] }), 201);
      for (const url of neverUrls) {
        const response = await create({ url, events: ['*'] });
        assert.equal(response.status, 400, `${url}: ${response.text}`);
        assert.equal(response.body.error?.field, 'url');
      }
    });

    it('with WEBHOOK_ALLOW_PRIVATE_NETWORKS=false refuses loopback, private and metadata urls', async () => {
      const strict = await startTestApp({
        clock: runningClock(),
        env: { ...secretKey(), WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false' },
      });
      try {
        const program = await createProgram(strict.api);
        const path = `/v1/programs/${program.id}/webhook-endpoints`;
        for (const url of [...privateUrls, ...neverUrls]) {
          const response = await strict.api.post(path, { url, events: ['*'] });
          assert.equal(response.status, 400, `${url}: ${response.text}`);
          assert.equal(response.body.error?.field, 'url');
          assert.match(response.body.error?.message ?? '', /not allowed/);
        }
        const ok = expectStatus(
          await strict.api.post<Endpoint>(path, { url: 'https://example.com/h', events: ['*'] }),
          201,
        ).body;
        const moved = await strict.api.patch(`${path}/${ok.id}`, { url: 'http://127.0.0.1/' });
        assert.equal(moved.status, 400, 'a PATCH cannot point an endpoint inward either');
        assert.equal(moved.body.error?.field, 'url');
      } finally {
        await strict.stop();
      }
    });
  });

  describe('test events, rotation, the catalogue', () => {
    let endpoint: Endpoint & { secret: string };
    before(async () => {
      endpoint = expectStatus(
        await create({ url: `${receiver.origin}/tests`, events: ['member.created'] }),
        201,
      ).body;
    });

    it('POST test sends the catalogue sample of any type, signed, with X-Incentable-Test: true', async () => {
      const queued: { type: WebhookEventType; event_id: string; delivery_id: string }[] = [];
      for (const type of webhookEventTypes) {
        const response = expectStatus(
          await api.post<{ delivery_id: string; event_id: string }>(
            `${base()}/${endpoint.id}/test`,
            { type },
          ),
          202,
        );
        queued.push({ type, ...response.body });
      }
      await receiver.waitForCount(queued.length, { path: '/tests' });
      for (const { type, event_id } of queued) {
        const got = receiver.at('/tests').find((r) => headerOf(r, 'webhook-id') === event_id);
        assert.ok(got, `${type} arrived`);
        assert.equal(headerOf(got, 'x-incentable-test'), 'true');
        const envelope = JSON.parse(got.body) as { id: string; type: string; data: unknown };
        assert.equal(envelope.id, event_id);
        assert.equal(envelope.type, type);
        assert.deepEqual(envelope.data, catalogueEntryOf(type).sample);
        assert.ok(docsAccept(got, endpoint.secret), `${type}: docs snippet`);
        assert.ok(standardAccepts(got, endpoint.secret), `${type}: standardwebhooks`);
      }
      const unknown = await api.post(`${base()}/${endpoint.id}/test`, { type: 'points.gifted' });
      assert.equal(unknown.status, 400);
      assert.equal(unknown.body.error?.field, 'type');
    });

    it('rotate-secret: the next delivery carries two v1 signatures; new verifies both schemes, old verifies Standard', async () => {
      const old = endpoint.secret;
      const rotated = expectStatus(
        await api.post<{ secret: string; previous_secret_expires_at: string }>(
          `${base()}/${endpoint.id}/rotate-secret`,
          {},
        ),
        200,
      ).body;
      assert.match(rotated.secret, whsec);
      assert.notEqual(rotated.secret, old);
      assert.ok(Date.parse(rotated.previous_secret_expires_at) > Date.now());
      const revealed = expectStatus(
        await api.get<{ secret: string }>(`${base()}/${endpoint.id}/secret`),
        200,
      ).body;
      assert.equal(revealed.secret, rotated.secret);

      const before = receiver.at('/tests').length;
      const { event_id } = expectStatus(
        await api.post<{ event_id: string }>(`${base()}/${endpoint.id}/test`, {
          type: 'member.created',
        }),
        202,
      ).body;
      await receiver.waitForCount(before + 1, { path: '/tests' });
      const got = receiver.at('/tests').find((r) => headerOf(r, 'webhook-id') === event_id)!;
      const signatures = headerOf(got, 'webhook-signature').split(' ');
      assert.equal(signatures.length, 2);
      for (const s of signatures) assert.match(s, /^v1,[A-Za-z0-9+/]{43}=$/);
      assert.ok(docsAccept(got, rotated.secret), 'new secret, docs snippet');
      assert.ok(standardAccepts(got, rotated.secret), 'new secret, standardwebhooks');
      assert.ok(standardAccepts(got, old), 'old secret, standardwebhooks');
      assert.equal(docsAccept(got, old), false, 'X-Incentable-Signature is the new secret only');
      endpoint.secret = rotated.secret;
    });

    it('GET /v1/webhook-event-types has the docs four groups, descriptions, schemas and samples', async () => {
      const body = expectStatus(
        await api.get<{
          groups: {
            name: string;
            types: {
              type: string;
              description: string;
              schema: Record<string, unknown>;
              sample: unknown;
            }[];
          }[];
        }>('/v1/webhook-event-types'),
        200,
      ).body;
      assert.deepEqual(
        body.groups.map((g) => ({
          name: g.name,
          types: g.types.map((t) => [t.type, t.description]),
        })),
        docsTables,
      );
      for (const t of body.groups.flatMap((g) => g.types)) {
        assert.equal(t.schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
        assert.equal(t.schema.type, 'object');
        assert.ok(t.sample && typeof t.sample === 'object', `${t.type} has a sample`);
      }
      const sampleOf = (type: string) =>
        body.groups.flatMap((g) => g.types).find((t) => t.type === type)?.sample;
      // The docs' three examples, their data verbatim (points events: then kind and reference).
      assert.deepEqual(sampleOf('points.awarded'), {
        transaction_id: 'txn_def456',
        member_id: 'mem_abc123',
        points: 500,
        reason: 'Q2 Sales Target',
        new_balance: 5500,
        kind: 'award',
        reference: null,
      });
      assert.deepEqual(sampleOf('member.tier_changed'), {
        member_id: 'mem_abc123',
        previous_tier: 'Silver',
        new_tier: 'Gold',
        reason: 'Points threshold reached',
      });
      assert.deepEqual(sampleOf('reward.redeemed'), {
        order_id: 'ord_789xyz',
        member_id: 'mem_abc123',
        reward_id: 'rwd_001',
        reward_name: 'Amazon Gift Card $25',
        points_spent: 2500,
      });
    });
  });

  describe('the delivery log, redelivery and replay', () => {
    let ok: Endpoint & { secret: string };
    let bad: Endpoint & { secret: string };
    let since: string;
    const list = async (query: string) =>
      expectStatus(
        await api.get<DeliveryPage>(`/v1/programs/${programId}/webhook-deliveries?${query}`),
        200,
      ).body;

    before(async () => {
      since = new Date(Date.now() - 1000).toISOString();
      ok = expectStatus(
        await create({ url: `${receiver.origin}/log`, events: ['points.awarded'] }),
        201,
      ).body;
      bad = expectStatus(await create({ url: `${failing.origin}/log`, events: ['*'] }), 201).body;
      const member = await createMember(api, programId);
      for (const points of [10, 20, 30]) await award(api, programId, member.id, points);
      await receiver.waitForCount(3, { path: '/log' });
      await failing.waitForCount(4, { path: '/log' });
      // Recorded: the first attempt failed, the next is five minutes away (the default schedule).
      await waitFor('the failed first attempts to be recorded', async () => {
        const page = await list(`endpoint_id=${bad.id}`);
        return page.data.length === 4 && page.data.every((d) => d.attempts === 1);
      });
      await waitFor('the deliveries to be recorded', async () => {
        const page = await list(`endpoint_id=${ok.id}&status=delivered`);
        return page.data.length === 3;
      });
    });

    it('filters by endpoint_id, status and type', async () => {
      const good = await list(`endpoint_id=${ok.id}`);
      assert.equal(good.data.length, 3);
      assert.ok(good.data.every((d) => d.status === 'delivered' && d.type === 'points.awarded'));
      assert.ok(good.data.every((d) => d.last_status === 200 && d.test === false));
      const pending = await list(`endpoint_id=${bad.id}&status=pending`);
      assert.equal(pending.data.length, 4);
      assert.ok(pending.data.every((d) => d.last_status === 500 && d.attempts === 1));
      assert.deepEqual(
        (await list(`endpoint_id=${bad.id}&type=member.created`)).data.map((d) => d.type),
        ['member.created'],
      );
      assert.equal((await list(`endpoint_id=${ok.id}&status=failed`)).data.length, 0);
      const refused = await api.get(`/v1/programs/${programId}/webhook-deliveries?status=lost`);
      assert.equal(refused.status, 400);
      assert.equal(refused.body.error?.field, 'status');
    });

    it('pages with a cursor, newest first, without gaps or repeats', async () => {
      const all = await list('limit=500');
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: DeliveryPage = await list(`limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        assert.ok(page.data.length <= 2);
        seen.push(...page.data.map((d) => d.id));
        cursor = page.next_cursor;
        pages += 1;
      } while (cursor !== null && pages < 100);
      assert.deepEqual(
        seen,
        all.data.map((d) => d.id),
      );
      assert.equal(pages, Math.ceil(all.data.length / 2));
    });

    it('GET one shows the attempts (status, duration, response body) and the payload', async () => {
      const [failed] = (await list(`endpoint_id=${bad.id}&type=member.created`)).data;
      const detail = expectStatus(
        await api.get<DeliveryDetail>(`/v1/programs/${programId}/webhook-deliveries/${failed!.id}`),
        200,
      ).body;
      assert.equal(detail.attempts.length, 1);
      const [attempt] = detail.attempts;
      assert.equal(attempt!.attempt, 1);
      assert.equal(attempt!.http_status, 500);
      assert.equal(attempt!.response_body, 'answered 500');
      assert.equal(attempt!.error_kind, 'non_2xx');
      assert.ok(Number.isInteger(attempt!.duration_ms) && attempt!.duration_ms >= 0);
      const sent = failing.at('/log').find((r) => headerOf(r, 'webhook-id') === detail.event_id);
      assert.equal(detail.payload, sent?.body, 'the payload is the bytes that were sent');
      const missing = await api.get(
        `/v1/programs/${programId}/webhook-deliveries/wdl_aaaaaaaaaaaaaaaaaaaa`,
      );
      assert.equal(missing.status, 404);
    });

    it('redeliver and replay send the same envelope id and identical bytes', async () => {
      const originals = new Map(
        receiver.at('/log').map((r) => [headerOf(r, 'webhook-id'), r] as const),
      );
      assert.equal(originals.size, 3);
      const [first] = (await list(`endpoint_id=${ok.id}`)).data;
      const again = expectStatus(
        await api.post<{ delivery_id: string }>(
          `/v1/programs/${programId}/webhook-deliveries/${first!.id}/redeliver`,
          {},
        ),
        202,
      ).body;
      assert.notEqual(again.delivery_id, first!.id);
      await receiver.waitForCount(4, { path: '/log' });
      const redelivered = receiver.at('/log')[3]!;
      assert.equal(headerOf(redelivered, 'webhook-id'), first!.event_id);
      assert.equal(redelivered.body, originals.get(first!.event_id)!.body);
      assert.equal(headerOf(redelivered, 'x-incentable-delivery'), again.delivery_id);

      const replay = expectStatus(
        await api.post<{ queued: number }>(`${base()}/${ok.id}/replay`, { since }),
        202,
      ).body;
      assert.equal(replay.queued, 3, 'the three awards it subscribes to');
      await receiver.waitForCount(7, { path: '/log' });
      for (const got of receiver.at('/log').slice(4)) {
        const original = originals.get(headerOf(got, 'webhook-id'));
        assert.ok(original, 'a replay presents an id the endpoint has seen');
        assert.ok(got.raw.equals(original.raw), 'byte for byte');
        assert.ok(standardAccepts(got, ok.secret) && docsAccept(got, ok.secret));
      }
      const series = (await list(`endpoint_id=${ok.id}&limit=500`)).data
        .filter((d) => d.event_id === first!.event_id)
        .map((d) => d.series)
        .sort();
      assert.deepEqual(series, [0, 1, 2]);
    });

    it('GET webhook-events lists the envelopes with their payloads', async () => {
      const events = expectStatus(
        await api.get<{
          data: { id: string; type: string; test: boolean; created_at: string; payload: unknown }[];
          next_cursor: string | null;
        }>(`/v1/programs/${programId}/webhook-events?limit=500`),
        200,
      ).body;
      for (const got of receiver.at('/log').slice(0, 3)) {
        const listed = events.data.find((e) => e.id === headerOf(got, 'webhook-id'));
        assert.ok(listed);
        assert.equal(listed.test, false);
        assert.equal(listed.type, 'points.awarded');
        assert.deepEqual(listed.payload, JSON.parse(got.body));
      }
      assert.ok(events.data.some((e) => e.type === 'member.created' && !e.test));
      assert.ok(events.data.filter((e) => e.test).length >= webhookEventTypes.length);
      const typed = expectStatus(
        await api.get<{ data: { type: string }[] }>(
          `/v1/programs/${programId}/webhook-events?type=member.created`,
        ),
        200,
      ).body;
      assert.ok(typed.data.length > 0 && typed.data.every((e) => e.type === 'member.created'));
    });

    it('/metrics counts attempts by result and gauges the due queue', async () => {
      // A test event to a disabled endpoint stays due and unclaimed: the queue gauges see it.
      const parked = expectStatus(
        await create({ url: `${receiver.origin}/parked`, events: ['*'] }),
        201,
      ).body;
      expectStatus(await api.patch(`${base()}/${parked.id}`, { enabled: false }), 200);
      expectStatus(await api.post(`${base()}/${parked.id}/test`, { type: 'points.awarded' }), 202);
      const response = await fetch(`${app.url}/metrics`);
      assert.equal(response.status, 200);
      const text = await response.text();
      const value = (line: RegExp) => {
        const match = line.exec(text);
        assert.ok(match, `metrics has ${String(line)}`);
        return Number(match[1]);
      };
      assert.ok(value(/^incentable_webhook_deliveries_total\{result="delivered"\} (\d+)$/m) >= 7);
      assert.ok(value(/^incentable_webhook_deliveries_total\{result="pending"\} (\d+)$/m) >= 4);
      assert.ok(value(/^incentable_webhook_due_deliveries (\d+)$/m) >= 1);
      assert.ok(value(/^incentable_webhook_oldest_due_seconds ([\d.e+-]+)$/m) >= 0);
      assert.match(text, /^incentable_webhook_attempt_duration_seconds_count \d+$/m);
      assert.equal(receiver.at('/parked').length, 0);
    });
  });

  describe('program keys', () => {
    it("cannot see or touch another program's endpoints (403)", async () => {
      const other = await createProgram(api, { name: 'Other' });
      const theirs = expectStatus(
        await api.post<Endpoint>(`/v1/programs/${other.id}/webhook-endpoints`, {
          url: 'https://example.com/other',
          events: ['*'],
        }),
        201,
      ).body;
      const key = expectStatus(
        await api.post<{ key: string }>(`/v1/programs/${programId}/api-keys`, { label: 'ours' }),
        201,
      ).body.key;
      const asOurs = { key };
      const otherBase = `/v1/programs/${other.id}/webhook-endpoints`;
      for (const response of [
        await api.get(otherBase, asOurs),
        await api.get(`${otherBase}/${theirs.id}`, asOurs),
        await api.get(`${otherBase}/${theirs.id}/secret`, asOurs),
        await api.request('DELETE', `${otherBase}/${theirs.id}`, asOurs),
        await api.get(`/v1/programs/${other.id}/webhook-deliveries`, asOurs),
      ]) {
        assert.equal(response.status, 403, response.text);
      }
      // Through its own program's path the id does not resolve either.
      const sideways = await api.get(`${base()}/${theirs.id}`, asOurs);
      assert.equal(sideways.status, 404);
      assert.equal((await api.get(base(), asOurs)).status, 200, 'its own program it can see');
    });
  });
});
