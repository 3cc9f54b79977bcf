import { SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import { formatPosition, type RecordedEvent } from '../../domain/recordedEvent.ts';
import type { AppendResult } from '../../application/ports.ts';
import {
  linksTo,
  noTrace,
  traceFrom,
  tracer,
  withSpan,
  type TraceContext,
} from '../../application/tracing.ts';

/** Links per batch span at most: the first distinct commands of the batch. */
export const batchLinkLimit = 32;

const failed = (span: Span, error: unknown): void => {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR });
};

/**
 * The event store's append as a child of the command's span, which the events name in their
 * metadata (`traceparent`, written only when the command is recorded): the stream, how many
 * events, and where they landed. Group commit's wait for the batch before it is inside it. Events
 * without a traceparent (tracing off, the command not sampled, an append outside any command)
 * are appended with no span at all.
 */
export const tracedAppend = async (
  stream: string,
  events: readonly { metadata: { traceparent?: string } }[],
  append: () => Promise<AppendResult>,
): Promise<AppendResult> => {
  const parent = traceFrom(events[0]?.metadata.traceparent);
  if (parent === null) return append();
  const span = tracer().startSpan(
    'eventstore append',
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'db.system.name': 'postgresql',
        'db.operation.name': 'append',
        'incentable.stream': stream,
        'incentable.event_count': events.length,
      },
    },
    parent,
  );
  try {
    const result = await append();
    if (span.isRecording()) {
      span.setAttribute('incentable.position', formatPosition(result.position));
      span.setAttribute('incentable.next_revision', result.nextRevision.toString());
    }
    return result;
  } catch (error) {
    failed(span, error);
    throw error;
  } finally {
    span.end();
  }
};

/**
 * One subscription batch as the root of a trace of its own (it runs later, in its own loop,
 * perhaps in another process), linked to the command span of each event it holds (metadata's
 * traceparent; the first `batchLinkLimit` distinct ones). The handler gets its context, so what
 * it starts (envelope spans, a policy's commands) are its children. `lagMs`: from the oldest
 * event's recordedAt to the batch's start, the projector's delay behind the commands.
 */
export const tracedBatch = async <T>(
  subscription: string,
  events: readonly RecordedEvent[],
  handle: (trace: TraceContext) => Promise<T>,
): Promise<T> => {
  const span = tracer().startSpan(
    `subscription ${subscription} batch`,
    { kind: SpanKind.CONSUMER, root: true },
    noTrace,
  );
  if (span.isRecording()) {
    const first = events[0];
    const last = events.at(-1);
    span.setAttributes({
      'incentable.subscription': subscription,
      'incentable.event_count': events.length,
      ...(first && { 'incentable.position.first': formatPosition(first.position) }),
      ...(last && { 'incentable.position.last': formatPosition(last.position) }),
    });
    const oldest = first ? Date.parse(first.metadata.recordedAt) : Number.NaN;
    if (Number.isFinite(oldest)) span.setAttribute('incentable.batch.lag_ms', Date.now() - oldest);
    span.addLinks(
      linksTo(
        events.map((event) => event.metadata.traceparent),
        batchLinkLimit,
      ),
    );
  }
  try {
    return await handle(withSpan(noTrace, span));
  } catch (error) {
    failed(span, error);
    throw error;
  } finally {
    span.end();
  }
};
