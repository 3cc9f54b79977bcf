/**
 * A reader of OTLP's protobuf encoding (ExportTraceServiceRequest), written for the tests from
 * opentelemetry-proto's trace, common and resource messages and the protobuf wire format, sharing
 * nothing with the SDK's serializer: what a collector would read from our export. It returns the
 * request in the shape of OTLP/JSON (ids as lowercase hex, times as decimal nanoseconds), so the
 * receiver handles both encodings alike. Only the fields the tests read are kept; the others are
 * skipped by their wire type.
 */

type Field = { number: number; wire: number; value: bigint | Buffer };

/** The fields of one message, in order; a length-delimited value is its bytes. */
const fieldsOf = (bytes: Buffer): Field[] => {
  const fields: Field[] = [];
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const byte = bytes[at++];
      if (byte === undefined) throw new Error('protobuf: truncated varint');
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
    }
  };
  const take = (length: number): Buffer => {
    if (at + length > bytes.length) throw new Error('protobuf: truncated field');
    const value = bytes.subarray(at, at + length);
    at += length;
    return value;
  };
  while (at < bytes.length) {
    const key = Number(varint());
    const number = key >>> 3;
    const wire = key & 7;
    if (wire === 0) fields.push({ number, wire, value: varint() });
    else if (wire === 1) fields.push({ number, wire, value: take(8) });
    else if (wire === 2) fields.push({ number, wire, value: take(Number(varint())) });
    else if (wire === 5) fields.push({ number, wire, value: take(4) });
    else throw new Error(`protobuf: wire type ${wire} (groups are not used by OTLP)`);
  }
  return fields;
};

const bytesOf = (field: Field): Buffer => {
  if (!Buffer.isBuffer(field.value)) throw new Error(`protobuf: field ${field.number} not bytes`);
  return field.value;
};
const all = (fields: Field[], number: number): Buffer[] =>
  fields.filter((f) => f.number === number).map(bytesOf);
const one = (fields: Field[], number: number): Buffer | undefined => all(fields, number).at(-1);
const text = (fields: Field[], number: number): string | undefined =>
  one(fields, number)?.toString('utf8');
const hex = (fields: Field[], number: number): string | undefined =>
  one(fields, number)?.toString('hex');
const varintOf = (fields: Field[], number: number): bigint | undefined => {
  const field = fields.filter((f) => f.number === number).at(-1);
  return typeof field?.value === 'bigint' ? field.value : undefined;
};
const fixed64 = (fields: Field[], number: number): string | undefined =>
  one(fields, number)?.readBigUInt64LE().toString();

type JsonAnyValue = {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
};

/** AnyValue: string 1, bool 2, int64 3, double 4 (arrays, maps and bytes are not used here). */
const anyValue = (bytes: Buffer): JsonAnyValue => {
  const fields = fieldsOf(bytes);
  const s = text(fields, 1);
  if (s !== undefined) return { stringValue: s };
  const b = varintOf(fields, 2);
  if (b !== undefined) return { boolValue: b !== 0n };
  const i = varintOf(fields, 3);
  if (i !== undefined) return { intValue: BigInt.asIntN(64, i).toString() };
  const d = one(fields, 4);
  if (d !== undefined) return { doubleValue: d.readDoubleLE() };
  return {};
};

/** KeyValue: key 1, value 2. */
const attributes = (list: Buffer[]) =>
  list.map((bytes) => {
    const fields = fieldsOf(bytes);
    const value = one(fields, 2);
    return { key: text(fields, 1) ?? '', value: value ? anyValue(value) : {} };
  });

/**
 * Span: trace_id 1, span_id 2, parent_span_id 4, name 5, kind 6, start 7 and end 8 (fixed64),
 * attributes 9, links 13 (Link: trace_id 1, span_id 2), status 15 (Status: code 3).
 */
const span = (bytes: Buffer) => {
  const fields = fieldsOf(bytes);
  const status = one(fields, 15);
  const code = status ? varintOf(fieldsOf(status), 3) : undefined;
  const parentSpanId = hex(fields, 4);
  return {
    traceId: hex(fields, 1) ?? '',
    spanId: hex(fields, 2) ?? '',
    ...(parentSpanId && { parentSpanId }),
    name: text(fields, 5) ?? '',
    kind: Number(varintOf(fields, 6) ?? 0n),
    startTimeUnixNano: fixed64(fields, 7) ?? '0',
    endTimeUnixNano: fixed64(fields, 8) ?? '0',
    attributes: attributes(all(fields, 9)),
    links: all(fields, 13).map((link) => {
      const linkFields = fieldsOf(link);
      return { traceId: hex(linkFields, 1) ?? '', spanId: hex(linkFields, 2) ?? '' };
    }),
    status: code === undefined ? {} : { code: Number(code) },
  };
};

/**
 * ExportTraceServiceRequest: resource_spans 1. ResourceSpans: resource 1 (Resource: attributes
 * 1), scope_spans 2. ScopeSpans: spans 2.
 */
export const decodeTraceRequest = (body: Buffer) => ({
  resourceSpans: all(fieldsOf(body), 1).map((resourceSpans) => {
    const fields = fieldsOf(resourceSpans);
    const resource = one(fields, 1);
    return {
      resource: { attributes: attributes(resource ? all(fieldsOf(resource), 1) : []) },
      scopeSpans: all(fields, 2).map((scope) => ({ spans: all(fieldsOf(scope), 2).map(span) })),
    };
  }),
});
