import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeTraceRequest } from './otlpProtobuf.ts';

/** One span as an OTLP/HTTP JSON export carried it, flattened for assertions. */
export type ReceivedSpan = {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Record<string, string | number | boolean>;
  links: { traceId: string; spanId: string }[];
  status: { code?: number };
  /** The resource's attributes (service.name and the like). */
  resource: Record<string, string | number | boolean>;
};

type AnyValue = {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
};
type KeyValue = { key: string; value: AnyValue };
type ExportRequest = {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: {
      spans?: (Omit<ReceivedSpan, 'attributes' | 'resource' | 'parentSpanId' | 'links'> & {
        parentSpanId?: string;
        attributes?: KeyValue[];
        links?: { traceId: string; spanId: string }[];
      })[];
    }[];
  }[];
};

const valueOf = (value: AnyValue): string | number | boolean =>
  value.stringValue ??
  (value.intValue !== undefined ? Number(value.intValue) : undefined) ??
  value.boolValue ??
  value.doubleValue ??
  '';

const attributesOf = (list: KeyValue[] | undefined): Record<string, string | number | boolean> =>
  Object.fromEntries((list ?? []).map(({ key, value }) => [key, valueOf(value)]));

export type OtlpReceiver = {
  /** `http://127.0.0.1:<port>`: what OTEL_EXPORTER_OTLP_ENDPOINT is set to. */
  origin: string;
  /** Every span received, in arrival order (empty when `discard` was asked for). */
  spans: ReceivedSpan[];
  /** Export requests received (POST /v1/traces). */
  requests: () => number;
  contentTypes: string[];
  close: () => Promise<void>;
};

/**
 * A loopback OTLP/HTTP receiver: accepts POST /v1/traces in either encoding (application/json,
 * or application/x-protobuf read by otlpProtobuf.ts) and keeps the spans, or with `discard` only
 * counts the requests (benchmarks). `contentTypes` are the requests' content types, in order.
 * Anything else gets 404; an unknown content type 415.
 */
export const startOtlpReceiver = async (
  options: { discard?: boolean } = {},
): Promise<OtlpReceiver> => {
  const spans: ReceivedSpan[] = [];
  let requests = 0;
  const contentTypes: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      requests++;
      const type = req.headers['content-type'] ?? '';
      contentTypes.push(type);
      const protobuf = type === 'application/x-protobuf';
      if (!protobuf && type !== 'application/json') {
        res.writeHead(415).end();
        return;
      }
      if (!options.discard) {
        const bytes = Buffer.concat(chunks);
        const body: ExportRequest = protobuf
          ? decodeTraceRequest(bytes)
          : (JSON.parse(bytes.toString('utf8')) as ExportRequest);
        for (const resourceSpans of body.resourceSpans ?? []) {
          const resource = attributesOf(resourceSpans.resource?.attributes);
          for (const scope of resourceSpans.scopeSpans ?? [])
            for (const span of scope.spans ?? [])
              spans.push({
                ...span,
                parentSpanId: span.parentSpanId ?? '',
                attributes: attributesOf(span.attributes),
                links: (span.links ?? []).map(({ traceId, spanId }) => ({ traceId, spanId })),
                resource,
              });
        }
      }
      // An empty ExportTraceServiceResponse: zero bytes in protobuf, {} in JSON.
      res.writeHead(200, { 'content-type': type }).end(protobuf ? '' : '{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    spans,
    requests: () => requests,
    contentTypes,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};
