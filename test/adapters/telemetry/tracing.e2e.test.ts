import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { context, createContextKey, trace, type ProxyTracerProvider } from '@opentelemetry/api';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { sql } from 'kysely';
import { verifyChains } from '../../../adapters/audit/verify.ts';
import { streams } from '../../../application/incentives.ts';
import {
  award,
  createMember,
  createProgram,
  expectStatus,
  runningClock,
  startTestApp,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';
import { startReceiver, type Receiver } from '../../support/receiver.ts';
import {
  startOtlpReceiver,
  type OtlpReceiver,
  type ReceivedSpan,
} from '../../support/otlpReceiver.ts';

/** One program, an endpoint subscribed to points.awarded, a member, one award of 50 points. */
const awardWithWebhook = async (app: TestApp, webhooks: Receiver) => {
  const program = await createProgram(app.api);
  const endpoint = expectStatus(
    await app.api.post<{ id: string }>(`/v1/programs/${program.id}/webhook-endpoints`, {
      url: webhooks.url,
      events: ['points.awarded'],
    }),
    201,
  ).body;
  const member = await createMember(app.api, program.id);
  const movement = await award(app.api, program.id, member.id, 50, 'traced');
  await webhooks.waitForCount(1);
  return { program, endpoint, member, movement };
};

/** The exporter's batch processor waits 5 s by default: tests export within 50 ms. */
const scheduleDelay = process.env.OTEL_BSP_SCHEDULE_DELAY;
before(() => {
  process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
});
after(() => {
  if (scheduleDelay === undefined) delete process.env.OTEL_BSP_SCHEDULE_DELAY;
  else process.env.OTEL_BSP_SCHEDULE_DELAY = scheduleDelay;
});

const sdkRegistered = (): boolean =>
  (trace.getTracerProvider() as ProxyTracerProvider).getDelegate() instanceof BasicTracerProvider;

const linksTo = (span: ReceivedSpan, target: ReceivedSpan): boolean =>
  span.links.some((link) => link.traceId === target.traceId && link.spanId === target.spanId);

describe('tracing', { skip: skipWithoutPostgres }, () => {
  describe('with no OTLP endpoint configured', () => {
    let app: TestApp;
    let webhooks: Receiver;
    let otlp: OtlpReceiver;
    before(async () => {
      otlp = await startOtlpReceiver();
      webhooks = await startReceiver();
      // Turned off by the standard switch, with an endpoint that would otherwise receive spans.
      app = await startTestApp({
        clock: runningClock(),
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.origin, OTEL_SDK_DISABLED: 'true' },
      });
    });
    after(async () => {
      await webhooks.close();
      await otlp.close();
    });

    it('registers no tracer provider, records no trace context and sends nothing', async () => {
      assert.equal(sdkRegistered(), false);
      await awardWithWebhook(app, webhooks);
      const carried = await sql<{ n: number }>`
        select (select count(*) from incentable_events where metadata ? 'traceparent')::int
          + (select count(*) from webhook_envelopes where traceparent is not null)::int as n`.execute(
        app.runtime.database.db,
      );
      assert.equal(carried.rows[0]?.n, 0);
      // A provider would flush on stop: none ran, so the receiver stays untouched.
      await app.stop();
      assert.equal(otlp.requests(), 0);
      assert.equal(sdkRegistered(), false);
    });
  });

  // Both OTLP/HTTP encodings, each read by the receiver: protobuf (the default, decoded by the
  // tests' own reader) and JSON.
  const protocols: { name: string; env: Record<string, string>; contentType: string }[] = [
    { name: 'http/protobuf, the default', env: {}, contentType: 'application/x-protobuf' },
    {
      name: 'http/json',
      env: { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
      contentType: 'application/json',
    },
  ];
  for (const protocol of protocols)
    describe(`with OTEL_EXPORTER_OTLP_ENDPOINT on a loopback receiver (${protocol.name})`, () => {
      let app: TestApp;
      let webhooks: Receiver;
      let otlp: OtlpReceiver;
      let programId = '';
      before(async () => {
        otlp = await startOtlpReceiver();
        webhooks = await startReceiver();
        app = await startTestApp({
          clock: runningClock(),
          env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.origin, ...protocol.env },
        });
      });
      after(async () => {
        await app.stop();
        await webhooks.close();
        await otlp.close();
        assert.equal(sdkRegistered(), false, 'stop unregisters the provider');
      });

      it('links the batch, the envelope and the delivery attempt to the command of one award', async () => {
        assert.equal(sdkRegistered(), true);
        const { endpoint, program } = await awardWithWebhook(app, webhooks);
        programId = program.id;
        const named = (name: string) => otlp.spans.filter((span) => span.name === name);
        // Spans end in several loops (the read-models batch may end after the attempt) and exports
        // may overlap: wait until every span of the award is in, whatever their order.
        const awardRoute = '/v1/programs/:programId/members/:memberId/points/award';
        await waitFor('every span of the award to be exported', () => {
          const request = otlp.spans.find((span) => span.attributes['http.route'] === awardRoute);
          const cause = request && otlp.spans.find((span) => span.parentSpanId === request.spanId);
          if (!cause) return false;
          const linked = (name: string) => named(name).some((span) => linksTo(span, cause));
          return (
            named('eventstore append').some((span) => span.parentSpanId === cause.spanId) &&
            linked('subscription webhooks batch') &&
            linked('subscription read-models batch') &&
            linked('webhook envelope') &&
            linked('webhook attempt')
          );
        });

        assert.ok(otlp.contentTypes.length > 0);
        assert.deepEqual(new Set(otlp.contentTypes), new Set([protocol.contentType]));

        const [server, ...moreServers] = otlp.spans.filter(
          (span) =>
            span.attributes['http.route'] ===
            '/v1/programs/:programId/members/:memberId/points/award',
        );
        assert.ok(server, 'the award request has a server span with its route');
        assert.equal(moreServers.length, 0);
        assert.equal(server.parentSpanId, '', 'the request span is the root of its trace');
        assert.equal(server.kind, 2, 'SERVER');
        assert.equal(server.name, 'POST /v1/programs/:programId/members/:memberId/points/award');
        assert.equal(server.attributes['http.request.method'], 'POST');
        assert.equal(server.attributes['http.response.status_code'], 201);
        assert.equal(server.resource['service.name'], 'incentable');

        const command = otlp.spans.find((span) => span.parentSpanId === server.spanId);
        assert.ok(command, 'the command is a child of the request');
        assert.match(command.name, /^command /);
        assert.equal(command.traceId, server.traceId);
        assert.equal(command.attributes['incentable.command.outcome'], 'appended');
        const carried = await sql<{ event: string | null; envelope: string | null }>`
        select e.metadata->>'traceparent' as event, v.traceparent as envelope
        from incentable_events e join webhook_envelopes v on v.source_event_id = e.event_id
        where e.type = 'PointsAwarded'`.execute(app.runtime.database.db);
        const expected = `00-${command.traceId}-${command.spanId}-01`;
        assert.deepEqual(carried.rows, [{ event: expected, envelope: expected }]);

        const append = named('eventstore append').find(
          (span) => span.parentSpanId === command.spanId,
        );
        assert.ok(append, 'the append is a child of the command');
        assert.equal(append.traceId, server.traceId);
        assert.match(String(append.attributes['incentable.stream']), /^points-/);
        assert.equal(append.attributes['incentable.event_count'], 1);
        assert.match(String(append.attributes['incentable.position']), /^\d+\.\d+$/);

        // The subscriptions' batches: roots of their own traces, each linked to the command.
        for (const subscription of ['webhooks', 'read-models']) {
          const batches: ReceivedSpan[] = named(`subscription ${subscription} batch`).filter(
            (span) => linksTo(span, command),
          );
          assert.equal(batches.length, 1, `one ${subscription} batch links to the command`);
          assert.equal(batches[0]?.parentSpanId, '');
          assert.notEqual(batches[0]?.traceId, command.traceId);
        }
        const webhookBatch = named('subscription webhooks batch').find((s) => linksTo(s, command))!;

        // Every webhook-worthy event gets an envelope (member.created too); this is the award's.
        const [envelope, ...moreEnvelopes] = named('webhook envelope').filter((s) =>
          linksTo(s, command),
        );
        assert.ok(envelope);
        assert.deepEqual(moreEnvelopes, []);
        assert.equal(envelope.parentSpanId, webhookBatch.spanId, 'made in the webhooks batch');
        assert.ok(linksTo(envelope, command), 'the envelope links to the command');
        assert.equal(envelope.attributes['incentable.event.type'], 'points.awarded');
        assert.equal(envelope.attributes['incentable.webhook.deliveries'], 1);

        const [attempt, ...moreAttempts] = named('webhook attempt');
        assert.ok(attempt);
        assert.deepEqual(moreAttempts, []);
        assert.equal(attempt.parentSpanId, '');
        assert.ok(linksTo(attempt, command), 'the attempt links to the command');
        assert.equal(attempt.attributes['incentable.webhook.endpoint_id'], endpoint.id);
        assert.equal(attempt.attributes['incentable.event.type'], 'points.awarded');
        assert.equal(attempt.attributes['incentable.webhook.attempt'], 1);
        assert.equal(attempt.attributes['incentable.webhook.outcome'], 'delivered');
        assert.equal(attempt.attributes['http.response.status_code'], 200);
        assert.equal(
          attempt.attributes['incentable.webhook.envelope_id'],
          envelope.attributes['incentable.webhook.envelope_id'],
        );
        // No trace header joins the documented webhook headers.
        assert.equal(webhooks.received[0]?.headers.traceparent, undefined);
      });

      it('keeps the hash chain whole with the traceparent in the metadata', async () => {
        const traced = await sql<{ traceparent: string }>`
        select metadata->>'traceparent' as traceparent from incentable_events
        where type = 'PointsAwarded'`.execute(app.runtime.database.db);
        assert.equal(traced.rows.length, 1);
        assert.match(traced.rows[0]!.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
        const report = await verifyChains(app.runtime.database.db);
        assert.equal(report.ok, true);
        assert.ok(report.events > 1);
      });

      it("runs a policy's command in the policies batch that reacted to the award", async () => {
        // 600 points move a new member from Bronze to Silver: the policies batch issues the
        // tier command, under the batch's context, handed to the handler (no context manager).
        const member = await createMember(app.api, programId);
        await award(app.api, programId, member.id, 600, 'to Silver');
        const awardCommand = () =>
          otlp.spans.find(
            (span) =>
              span.name.startsWith('command ') &&
              span.attributes['incentable.stream'] === streams.points(programId, member.id),
          );
        const batchOf = (command: ReceivedSpan) =>
          otlp.spans.find(
            (span) => span.name === 'subscription policies batch' && linksTo(span, command),
          );
        const policyCommand = (batch: ReceivedSpan) =>
          otlp.spans.find(
            (span) => span.parentSpanId === batch.spanId && span.name.startsWith('command '),
          );
        await waitFor('the policy command under its batch', () => {
          const command = awardCommand();
          const batch = command && batchOf(command);
          return batch !== undefined && policyCommand(batch) !== undefined;
        });
        const batch = batchOf(awardCommand()!)!;
        const tierCommand = policyCommand(batch)!;
        assert.equal(tierCommand.traceId, batch.traceId, "in the batch's trace");
        assert.equal(
          tierCommand.attributes['incentable.stream'],
          streams.member(programId, member.id),
        );
        await waitFor('its append', () =>
          otlp.spans.some(
            (span) => span.name === 'eventstore append' && span.parentSpanId === tierCommand.spanId,
          ),
        );
      });

      it('registers no context manager: contexts are handed on, not kept across awaits', async () => {
        // AsyncLocalStorage, the only context manager Node 20 has, turns on promise hooks for the
        // whole process (BENCHMARKS.md, "Explicit context").
        const key = createContextKey('probe');
        const active = await context.with(context.active().setValue(key, 1), async () => {
          await Promise.resolve();
          return context.active().getValue(key);
        });
        assert.equal(active, undefined);
      });

      it("continues a caller's trace from its traceparent header", async () => {
        const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
        const parentId = '00f067aa0ba902b7';
        expectStatus(
          await app.api.get(`/v1/programs/${programId}`, {
            headers: { traceparent: `00-${traceId}-${parentId}-01` },
          }),
          200,
        );
        await waitFor('the request span', () =>
          otlp.spans.some((span) => span.traceId === traceId && span.kind === 2),
        );
        const server = otlp.spans.find((span) => span.traceId === traceId && span.kind === 2)!;
        assert.equal(server.parentSpanId, parentId);
        assert.equal(server.attributes['http.route'], '/v1/programs/:programId');
      });
    });
});
