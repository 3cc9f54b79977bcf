import {
  isSpanContextValid,
  ROOT_CONTEXT,
  trace,
  TraceFlags,
  type Context,
  type Link,
  type Span,
  type Tracer,
} from '@opentelemetry/api';

/**
 * Tracing as the inner layers see it: the OpenTelemetry API only, never the SDK. Without a
 * registered provider (tracing off, adapters/telemetry/tracing.ts) every span here is the API's
 * no-op span, `isRecording()` is false and nothing below writes a trace context anywhere.
 *
 * The context is passed by hand, never through the API's active context: no context manager is
 * registered, because the only one Node 20 has (AsyncLocalStorage) turns on promise hooks for the
 * whole process, which cost about 120-180 µs an award here whether or not anything was sampled
 * (BENCHMARKS.md, "Explicit context"). A span's parent is a `TraceContext` its caller hands it:
 * the request's in a command's CommandContext, a batch's in a subscription handler's third
 * argument, a command's in its events' metadata (`traceparent`).
 */

/** The trace a piece of work runs in (OpenTelemetry's Context), handed from caller to callee. */
export type TraceContext = Context;

/** The context of no trace: a span started under it is a root. */
export const noTrace: TraceContext = ROOT_CONTEXT;

/** The context with `span` as the parent of what starts under it. */
export const withSpan = (parent: TraceContext, span: Span): TraceContext =>
  trace.setSpan(parent, span);

/** Whether a span under `parent` could be recorded: false off, or when the parent was not sampled. */
export const isTraced = (parent: TraceContext | undefined): boolean =>
  parent !== undefined && trace.getSpan(parent)?.isRecording() === true;

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
 * The context of the span a `traceparent` names, as the parent of local work (the append of the
 * command whose traceparent its events carry); null for a missing or malformed one.
 */
export const traceFrom = (traceparent: unknown): TraceContext | null => {
  const link = linkTo(traceparent);
  return link && trace.setSpanContext(ROOT_CONTEXT, { ...link.context, isRemote: false });
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
