/**
 * The CPU cost of the spans themselves, away from the database and the network, for a machine
 * too loaded for throughput figures to show a small difference (bench/telemetry/run.ts measures
 * the real thing). In one process, per simulated award: the request, command and append spans as
 * the product starts them (each under the context its caller hands it, the attributes, the
 * traceparent for the metadata), one batch span per 50 awards with links, and an envelope and an attempt span with a
 * link: first with no provider (tracing off: the API's no-op), then with the SDK registered as
 * adapters/telemetry/tracing.ts does it, exporting to an exporter that drops every batch (so
 * the figure includes the batch processor but not the JSON encoding, which the run.ts rounds
 * pay). Also what an AsyncLocalStorage context manager (the SDK's default, which the product
 * does not register) would add to a chain of awaits: every async function in the process would
 * pay it, traced or not. That is measured last, as AsyncLocalStorage's hooks stay on once used.
 *
 *   npx tsx bench/telemetry/spans.ts          (BENCH_QUICK=1: a tenth of the iterations)
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ROOT_CONTEXT, SpanKind } from '@opentelemetry/api';
import { linksTo, traceFrom, traceparentOf, tracer, withSpan } from '../../application/tracing.ts';
import { startTracing } from '../../adapters/telemetry/tracing.ts';

const quick = process.env.BENCH_QUICK === '1';
const awards = quick ? 20_000 : 200_000;

const dropping: SpanExporter = {
  // ExportResultCode.SUCCESS (0): @opentelemetry/core is not a dependency of ours to import.
  export: (_spans, done) => done({ code: 0 }),
  shutdown: () => Promise.resolve(),
};

/** One award's spans, as the request, the command handler, the append and delivery start them. */
const oneAward = async (i: number, traceparents: string[]): Promise<void> => {
  const server = tracer().startSpan('POST', {
    kind: SpanKind.SERVER,
    attributes: { 'http.request.method': 'POST', 'url.path': '/v1/programs/p/members/m/points' },
  });
  const command = tracer().startSpan(
    'command AwardPoints',
    { attributes: { 'incentable.command': 'AwardPoints', 'incentable.stream': 'points-p-m' } },
    withSpan(ROOT_CONTEXT, server),
  );
  const traceparent = traceparentOf(command);
  const parent = traceFrom(traceparent);
  if (traceparent) traceparents.push(traceparent);
  if (parent) {
    const append = tracer().startSpan('eventstore append', { kind: SpanKind.CLIENT }, parent);
    await Promise.resolve();
    append.setAttribute('incentable.position', `${i}.${i}`);
    append.end();
  } else await Promise.resolve();
  command.end();
  server.setAttribute('http.response.status_code', 201);
  server.end();
  if (traceparents.length >= 50) {
    const batch = tracer().startSpan('subscription webhooks batch', { root: true }, ROOT_CONTEXT);
    if (batch.isRecording()) batch.addLinks(linksTo(traceparents));
    batch.end();
    traceparents.length = 0;
  }
  const [link] = linksTo([traceparents[0]]);
  for (const name of ['webhook envelope', 'webhook attempt']) {
    const span = tracer().startSpan(name, { root: true, ...(link && { links: [link] }) });
    span.setAttribute('incentable.webhook.endpoint_id', 'we_x');
    span.end();
  }
};

const timeAwards = async (): Promise<number> => {
  const traceparents: string[] = [];
  for (let i = 0; i < awards / 10; i++) await oneAward(i, traceparents);
  const t0 = process.cpuUsage();
  for (let i = 0; i < awards; i++) await oneAward(i, traceparents);
  const used = process.cpuUsage(t0);
  return (used.user + used.system) / awards;
};

/** 10 awaits in a row, plain or inside `als.run` (what the context manager's `with` does). */
const timeAwaits = async (als?: AsyncLocalStorage<number>): Promise<number> => {
  const chain = async () => {
    for (let j = 0; j < 10; j++) await Promise.resolve(j);
  };
  const t0 = process.cpuUsage();
  for (let i = 0; i < awards; i++) await (als ? als.run(i, chain) : chain());
  const used = process.cpuUsage(t0);
  return (used.user + used.system) / awards;
};

const offAwards = await timeAwards();
const tracing = startTracing(
  { url: 'http://127.0.0.1:9/v1/traces', protocol: 'http/protobuf' },
  {
    version: 'bench',
    exporter: dropping,
  },
);
const onAwards = await timeAwards();
await tracing?.shutdown();
console.log(
  `spans per award (request, command, append, envelope, attempt, 1/50 batch), ${awards} awards:`,
);
console.log(`  tracing off: ${offAwards.toFixed(2)} us CPU per award`);
console.log(
  `  tracing on:  ${onAwards.toFixed(2)} us CPU per award (+${(onAwards - offAwards).toFixed(2)} us)`,
);

// The export's encoding (OTEL_EXPORTER_OTLP_PROTOCOL): the same awards' spans, kept this time,
// through the SDK's JSON and protobuf serializers in batches of 512 (the batch processor's
// default), twice each, alternating. The loop yields every 50 awards so the batch processor
// hands its batches over instead of dropping spans past its queue of 2,048.
const kept: ReadableSpan[] = [];
const keeping: SpanExporter = {
  export: (spans, done) => {
    kept.push(...spans);
    done({ code: 0 });
  },
  shutdown: () => Promise.resolve(),
};
const encodedAwards = awards / 20;
const collecting = startTracing(
  { url: 'http://127.0.0.1:9/v1/traces', protocol: 'http/protobuf' },
  { version: 'bench', exporter: keeping },
);
const traceparents: string[] = [];
for (let i = 0; i < encodedAwards; i++) {
  await oneAward(i, traceparents);
  if (i % 50 === 49) await yieldToLoop();
}
await collecting?.shutdown();
const batches: ReadableSpan[][] = [];
for (let i = 0; i < kept.length; i += 512) batches.push(kept.slice(i, i + 512));
const encodings = { json: JsonTraceSerializer, protobuf: ProtobufTraceSerializer };
const encoded: Record<string, { us: number[]; bytes: number }> = {
  json: { us: [], bytes: 0 },
  protobuf: { us: [], bytes: 0 },
};
for (const name of ['json', 'protobuf', 'json', 'protobuf'] as const) {
  let bytes = 0;
  const t0 = process.cpuUsage();
  for (const batch of batches) bytes += encodings[name].serializeRequest(batch)?.length ?? 0;
  const used = process.cpuUsage(t0);
  encoded[name]!.us.push((used.user + used.system) / encodedAwards);
  encoded[name]!.bytes = bytes / encodedAwards;
}
console.log(
  `the export's encoding, ${encodedAwards} awards' spans (${kept.length}), per award, two runs each:`,
);
for (const [name, { us, bytes }] of Object.entries(encoded))
  console.log(
    `  ${name}: ${us.map((v) => v.toFixed(2)).join(', ')} us CPU, ${bytes.toFixed(0)} bytes`,
  );
const plainAwaits = await timeAwaits();
const alsAwaits = await timeAwaits(new AsyncLocalStorage<number>());
console.log(`10 awaits, ${awards} times:`);
console.log(
  `  no context manager (the product): ${plainAwaits.toFixed(2)} us; in AsyncLocalStorage.run (the SDK's default manager): ${alsAwaits.toFixed(2)} us`,
);
