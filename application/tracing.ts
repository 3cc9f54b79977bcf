import {
  isSpanContextValid,
  trace,
  TraceFlags,
  type Link,
  type Span,
  type Tracer,
} from '@opentelemetry/api';

/**
 * Tracing as the inner layers see it: the OpenTelemetry API only, never the SDK. Without a
 * registered provider (tracing off, adapters/telemetry/tracing.ts) every span here is the API's
 * no-op span, `isRecording()` is false and nothing below writes a trace context anywhere.
 */

/** The product's tracer, looked up per use so a provider registered later (or removed) counts. */
export const tracer = (): Tracer => trace.getTracer('incentable');

/**
 * The W3C `traceparent` of a span being recorded, to carry its context past an asynchronous
 * boundary (an event's metadata, an envelope row); undefined for a no-op or unsampled span,
 * which nothing later could usefully link to.
 */
export const traceparentOf = (span: Span): string | undefined => {
  if (!span.isRecording()) return undefined;
  const { traceId, spanId, traceFlags } = span.spanContext();
  const flags = (traceFlags & 0xff).toString(16).padStart(2, '0');
  return `00-${traceId}-${spanId}-${flags}`;
};

const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** A link to the span a `traceparent` names; null for a missing or malformed one. */
export const linkTo = (traceparent: unknown): Link | null => {
  if (typeof traceparent !== 'string') return null;
  const match = traceparentPattern.exec(traceparent);
  if (!match) return null;
  const [, traceId = '', spanId = '', flags = '00'] = match;
  const spanContext = {
    traceId,
    spanId,
    traceFlags: Number.parseInt(flags, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  return isSpanContextValid(spanContext) ? { context: spanContext } : null;
};

/**
 * Links to the distinct contexts among `traceparents`, at most `max` (a span with thousands of
 * links helps no viewer, and OTEL_SPAN_LINK_COUNT_LIMIT would cut them anyway).
 */
export const linksTo = (traceparents: Iterable<unknown>, max = 32): Link[] => {
  const seen = new Set<string>();
  const links: Link[] = [];
  for (const traceparent of traceparents) {
    if (links.length >= max) break;
    if (typeof traceparent !== 'string' || seen.has(traceparent)) continue;
    seen.add(traceparent);
    const link = linkTo(traceparent);
    if (link) links.push(link);
  }
  return links;
};
