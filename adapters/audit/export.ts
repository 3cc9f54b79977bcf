import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { sql, type Kysely, type RawBuilder } from 'kysely';
import { formatPosition } from '../../domain/recordedEvent.ts';
import type { Database } from '../db/schema.ts';
import { globalLinePages, positionOf, type AuditRow } from './events.ts';

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

/** A text expression as a JSON string (to_json escapes as JSON.stringify does). */
const jsonString = (text: RawBuilder<unknown>) => sql`to_json(${text})::text`;

/**
 * One exported event as a JSON line, written by PostgreSQL: same fields and order as
 * `ExportedEvent`. data and metadata are jsonb's own text, the bytes the hash chain covers (see
 * eventstore/canonical.ts), so an auditor can recompute every hash from the export alone.
 */
const jsonLine = sql<string>`'{"position":"' || e.transaction_id::text || '.'
  || e.global_position::text || '","global_position":"' || e.global_position::text
  || '","stream":' || ${jsonString(sql`e.stream_name`)} || ',"revision":"'
  || e.stream_revision::text || '","id":"' || e.event_id::text || '","type":'
  || ${jsonString(sql`e.type`)} || ',"time":'
  || coalesce(${jsonString(sql`e.metadata->>'recordedAt'`)}, 'null') || ',"data":'
  || e.data::text || ',"metadata":' || e.metadata::text || ',"hash":'
  || ${jsonString(sql`e.hash`)} || '}'`;

/** RFC 4180: quote when needed, double the quotes. */
const csvField = (text: RawBuilder<unknown>) =>
  sql`case when ${text} ~ '[",\r\n]' then '"' || replace(${text}, '"', '""') || '"'
    else ${text} end`;

const csvLine = sql<string>`concat_ws(',',
  e.transaction_id::text || '.' || e.global_position::text, e.global_position::text,
  ${csvField(sql`e.stream_name`)}, e.stream_revision::text, e.event_id::text,
  ${csvField(sql`e.type`)}, ${csvField(sql`coalesce(e.metadata->>'recordedAt', '')`)},
  ${csvField(sql`e.data::text`)}, ${csvField(sql`e.metadata::text`)}, ${csvField(sql`e.hash`)})`;

/**
 * Streams the history in the global order to `out`, a page at a time, waiting for the stream to
 * drain before reading on: memory stays flat whatever the size of the log. PostgreSQL writes the
 * lines; this process only pages and copies them (parsing and re-serialising every row was most
 * of the export's time and of its memory).
 */
export const exportEvents = async (
  db: Kysely<Database>,
  out: Writable,
  options: ExportOptions,
): Promise<{ events: number }> => {
  let events = 0;
  if (options.format === 'csv') await write(out, `${csvColumns.join(',')}\n`);
  for await (const page of globalLinePages(db, {
    line: options.format === 'csv' ? csvLine : jsonLine,
    after: null,
    limit: options.pageSize ?? 2000,
    ...(options.programId !== undefined && { programId: options.programId }),
    ...(options.since !== undefined && { since: options.since }),
    ...(options.until !== undefined && { before: options.until }),
  })) {
    let chunk = '';
    for (const row of page) chunk += `${row.line}\n`;
    await write(out, chunk);
    events += page.length;
    options.onProgress?.(events);
  }
  return { events };
};

const write = async (out: Writable, chunk: string): Promise<void> => {
  if (!out.write(chunk)) await once(out, 'drain');
};
