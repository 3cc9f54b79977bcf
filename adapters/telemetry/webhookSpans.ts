import { ROOT_CONTEXT, SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
} from '@opentelemetry/semantic-conventions';
import { isTraced, linkTo, tracer, type TraceContext } from '../../application/tracing.ts';
import type { AttemptResult } from '../../delivery/outcome.ts';
import type { HeldDelivery } from '../../delivery/ports.ts';

/** What an envelope's span names. */
type EnvelopeFacts = {
  envelope_id: string;
  program_id: string;
  type: string;
  source_event_id?: string | null;
};

/**
 * The envelope spans of one webhook projector batch, children of the batch's span, each linked
 * to the command whose event it was made from. They start when the envelope is made and end when
 * the batch's rows are written, with how many deliveries (subscribed endpoints) it got. Null when
 * the batch is not traced (`batch`: its context): then nothing is allocated per envelope.
 */
export const envelopeSpans = (batch: TraceContext | undefined) => {
  if (batch === undefined || !isTraced(batch)) return null;
  const spans = new Map<string, Span>();
  return {
    start(envelope: EnvelopeFacts, traceparent: string | undefined): void {
      const link = linkTo(traceparent);
      spans.set(
        envelope.envelope_id,
        tracer().startSpan(
          'webhook envelope',
          {
            kind: SpanKind.INTERNAL,
            ...(link && { links: [link] }),
            attributes: {
              'incentable.webhook.envelope_id': envelope.envelope_id,
              'incentable.program_id': envelope.program_id,
              'incentable.event.type': envelope.type,
              ...(envelope.source_event_id && {
                'incentable.event.id': envelope.source_event_id,
              }),
            },
          },
          batch,
        ),
      );
    },
    /** `deliveries`: the envelope ids of the delivery rows made, one entry per row. */
    end(deliveries: readonly { envelope_id: string }[], error?: unknown): void {
      const counts = new Map<string, number>();
      for (const { envelope_id } of deliveries)
        counts.set(envelope_id, (counts.get(envelope_id) ?? 0) + 1);
      for (const [envelopeId, span] of spans) {
        span.setAttribute('incentable.webhook.deliveries', counts.get(envelopeId) ?? 0);
        if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      }
      spans.clear();
    },
  };
};

/**
 * One delivery attempt, the root of a trace of its own (a worker sends it, perhaps in another
 * process, perhaps hours later on a retry), linked to the command behind the envelope. The span
 * starts when the POST starts; `finished` gives it the outcome. No trace header goes out with
 * the webhook: the receivers' header contract is the documented one (docs/webhooks.md).
 */
export const startAttemptSpan = (delivery: HeldDelivery, startedAt: Date): Span => {
  const link = linkTo(delivery.traceparent);
  return tracer().startSpan(
    'webhook attempt',
    {
      kind: SpanKind.CLIENT,
      root: true,
      startTime: startedAt,
      ...(link && { links: [link] }),
      attributes: {
        [ATTR_HTTP_REQUEST_METHOD]: 'POST',
        'incentable.webhook.endpoint_id': delivery.endpoint_id,
        'incentable.webhook.delivery_id': delivery.delivery_id,
        'incentable.webhook.envelope_id': delivery.envelope_id,
        'incentable.event.type': delivery.type,
        'incentable.program_id': delivery.program_id,
        'incentable.webhook.attempt': delivery.attempts + 1,
        'incentable.webhook.test': delivery.is_test,
      },
    },
    ROOT_CONTEXT,
  );
};

/** Ends an attempt's span with the POST's result and what was decided after it. */
export const finishAttemptSpan = (
  span: Span,
  attempt: { result: AttemptResult; outcome: string; status: string },
): void => {
  if (span.isRecording()) {
    const { result } = attempt;
    span.setAttributes({
      'incentable.webhook.outcome': attempt.outcome,
      'incentable.webhook.status': attempt.status,
      'incentable.webhook.duration_ms': result.durationMs,
    });
    if (result.kind === 'response') {
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, result.status);
      if (result.status >= 300) span.setAttribute(ATTR_ERROR_TYPE, String(result.status));
    } else if (result.kind === 'error') {
      span.setAttribute(ATTR_ERROR_TYPE, result.error);
    }
    if (attempt.outcome !== 'delivered') span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
};
