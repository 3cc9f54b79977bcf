import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { sql, type Kysely } from 'kysely';
import { formatPosition } from '../../domain/recordedEvent.ts';
import type { Database } from '../db/schema.ts';
import { globalLinePages, positionOf, type AuditRow } from './events.ts';
import { csvColumns, csvLineSql, jsonLineSql } from './exportLines.ts';

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
    line: sql.raw(options.format === 'csv' ? csvLineSql : jsonLineSql),
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
