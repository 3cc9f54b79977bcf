import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { trace } from '@opentelemetry/api';
import { linksTo, linkTo, traceparentOf, tracer } from '../../application/tracing.ts';

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const spanId = '00f067aa0ba902b7';

describe('trace context carriers', () => {
  it('links to the span a traceparent names, as a remote context', () => {
    assert.deepEqual(linkTo(`00-${traceId}-${spanId}-01`), {
      context: { traceId, spanId, traceFlags: 1, isRemote: true },
    });
  });

  it('refuses what is not a version-00 traceparent of a valid context', () => {
    for (const bad of [
      undefined,
      42,
      '',
      `01-${traceId}-${spanId}-01`,
      `00-${traceId.toUpperCase()}-${spanId}-01`,
      `00-${'0'.repeat(32)}-${spanId}-01`,
      `00-${traceId}-${'0'.repeat(16)}-01`,
      `00-${traceId}-${spanId}-01-extra`,
    ])
      assert.equal(linkTo(bad), null, String(bad));
  });

  it('links once per distinct context, at most the limit', () => {
    const parents = Array.from(
      { length: 5 },
      (_, i) => `00-${traceId}-${i.toString(16).padStart(16, '1')}-01`,
    );
    const links = linksTo([parents[0], undefined, parents[0], ...parents, 'junk'], 3);
    assert.deepEqual(
      links.map((link) => link.context.spanId),
      parents.slice(0, 3).map((p) => p.split('-')[2]),
    );
  });

  it('writes no traceparent for a span that is not recorded (tracing off)', () => {
    const span = tracer().startSpan('off');
    assert.equal(span.isRecording(), false);
    assert.equal(traceparentOf(span), undefined);
    span.end();
    assert.equal(
      traceparentOf(trace.wrapSpanContext({ traceId, spanId, traceFlags: 1 })),
      undefined,
    );
  });
});
