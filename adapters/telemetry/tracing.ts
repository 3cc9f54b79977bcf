import { context, propagation, trace } from '@opentelemetry/api';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { Config } from '../config.ts';

/** This process started a provider and has not shut it down. */
let running = false;

/** The running SDK: `shutdown` exports what is buffered and unregisters the global provider. */
export type Tracing = { shutdown: () => Promise<void> };

/**
 * Starts OpenTelemetry tracing when config.tracing is set (an OTLP endpoint was configured), and
 * returns null otherwise: nothing is registered then, so every span the code starts is the API's
 * no-op span and costs a function call.
 *
 * The SDK and exporter read the standard OTEL_* variables themselves (sampler, batch processor
 * limits, exporter headers, timeout and compression, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES);
 * only the endpoint and the protocol come through the config, which decides whether tracing is on
 * at all. Spans go out in batches from a BatchSpanProcessor, off the request path, as OTLP/HTTP
 * protobuf (the specification's default) or JSON.
 *
 * One provider per process: registering is global (the API's tracer provider and the W3C
 * trace-context propagator; no context manager, see application/tracing.ts). A second start
 * while one runs keeps the first.
 */
export const startTracing = (
  settings: Config['tracing'],
  options: { version: string; exporter?: SpanExporter },
): Tracing | null => {
  if (settings === null || running) return null;
  const Exporter = settings.protocol === 'http/json' ? JsonExporter : ProtobufExporter;
  const exporter = options.exporter ?? new Exporter({ url: settings.url });
  const provider = new NodeTracerProvider({
    // Ours first, then OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES over them.
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: 'incentable',
      [ATTR_SERVICE_VERSION]: options.version,
    }).merge(detectResources({ detectors: [envDetector] })),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  // No context manager: the code hands its trace contexts on itself (application/tracing.ts),
  // and AsyncLocalStorage's promise hooks would slow every await in the process.
  provider.register({ contextManager: null });
  running = true;
  let stopped: Promise<void> | null = null;
  return {
    shutdown: () =>
      (stopped ??= provider.shutdown().finally(() => {
        trace.disable();
        context.disable();
        propagation.disable();
        running = false;
      })),
  };
};
