import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Kysely } from 'kysely';
import { formatPosition } from '../../domain/recordedEvent.ts';
import type { Database } from '../db/schema.ts';
import { globalTextPages, positionOf, type AuditRow, type AuditTextRow } from './events.ts';

export type ExportFormat = 'jsonl' | 'csv';

export type ExportOptions = {
  format: ExportFormat;
  programId?: string;
  /** Inclusive bounds on the time the event was recorded (metadata.recordedAt). */
  since?: Date;
  until?: Date;
  pageSize?: number;
  onProgress?: (events: number) => void;
};

/** One exported event; `position` is the opaque cursor (`<commit>.<prepare>`) the API uses. */
export type ExportedEvent = {
  position: string;
  global_position: string;
  stream: string;
  revision: string;
  id: string;
  type: string;
  time: string;
  data: unknown;
  metadata: unknown;
  hash: string;
};

export const exportedEvent = (row: AuditRow): ExportedEvent => ({
  position: formatPosition(positionOf(row)),
  global_position: row.global_position,
  stream: row.stream_name,
  revision: row.stream_revision,
  id: row.event_id,
  type: row.type,
  time: row.metadata.recordedAt,
  data: row.data,
  metadata: row.metadata,
  hash: row.hash,
});

const csvColumns = [
  'position',
  'global_position',
  'stream',
  'revision',
  'id',
  'type',
  'time',
  'data',
  'metadata',
  'hash',
] as const;

/** RFC 4180: quote when needed, double the quotes. */
const csvField = (value: string): string =>
  /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;

/**
 * jsonb's text output with the blanks it puts after `:` and `,` taken out: the bytes
 * JSON.stringify gives for the same value, in jsonb's key order. Strings pass through whole
 * (their own blanks stay; jsonb escapes every control character inside them).
 */
export const compactJsonb = (text: string): string =>
  text.replace(/("(?:[^"\\]|\\.)*")|\s+/g, (_match, quoted: string | undefined) => quoted ?? '');

/**
 * One exported event as a JSON line, by concatenation: data and metadata are copied from the
 * database's text, never parsed into objects (at a million events that churn was most of the
 * export's memory). Same fields and order as `ExportedEvent`.
 */
const jsonLine = (row: AuditTextRow): string =>
  `{"position":"${row.transaction_id}.${row.global_position}","global_position":"${row.global_position}","stream":${JSON.stringify(row.stream_name)},"revision":"${row.stream_revision}","id":"${row.event_id}","type":${JSON.stringify(row.type)},"time":${JSON.stringify(row.recorded_at)},"data":${compactJsonb(row.data)},"metadata":${compactJsonb(row.metadata)},"hash":${JSON.stringify(row.hash)}}`;

const csvLine = (row: AuditTextRow): string =>
  [
    `${row.transaction_id}.${row.global_position}`,
    row.global_position,
    row.stream_name,
    row.stream_revision,
    row.event_id,
    row.type,
    row.recorded_at,
    compactJsonb(row.data),
    compactJsonb(row.metadata),
    row.hash,
  ]
    .map(csvField)
    .join(',');

/**
 * Streams the history in the global order to `out`, a page at a time, waiting for the stream to
 * drain before reading on: memory stays flat whatever the size of the log.
 */
export const exportEvents = async (
  db: Kysely<Database>,
  out: Writable,
  options: ExportOptions,
): Promise<{ events: number }> => {
  let events = 0;
  if (options.format === 'csv') await write(out, `${csvColumns.join(',')}\n`);
  const line = options.format === 'csv' ? csvLine : jsonLine;
  for await (const page of globalTextPages(db, {
    after: null,
    limit: options.pageSize ?? 1000,
    ...(options.programId !== undefined && { programId: options.programId }),
    ...(options.since !== undefined && { since: options.since }),
    ...(options.until !== undefined && { before: options.until }),
  })) {
    let chunk = '';
    for (const row of page) chunk += `${line(row)}\n`;
    await write(out, chunk);
    events += page.length;
    options.onProgress?.(events);
  }
  return { events };
};

const write = async (out: Writable, chunk: string): Promise<void> => {
  if (!out.write(chunk)) await once(out, 'drain');
};
