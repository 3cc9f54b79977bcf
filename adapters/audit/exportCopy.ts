import type { Writable } from 'node:stream';
import pg from 'pg';
import { readGuardSql } from '../eventstore/readGuard.ts';
import type { ExportOptions } from './export.ts';
import { csvColumns, csvLineSql, jsonLineSql } from './exportLines.ts';

/** What a COPY reader needs of pg's connection: its socket, to pause while `out` drains. */
type Connection = {
  query: (text: string) => void;
  stream: { pause: () => void; resume: () => void };
};

const signature = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const bufferBytes = 1 << 16;

/**
 * `COPY (…) TO STDOUT (FORMAT binary)` of one text column, written to `out` as lines: each row's
 * bytes then a newline. Binary, because the text and CSV formats escape or quote what they carry.
 * A pg "submittable": the client hands it the connection and the protocol messages. Rows are
 * copied into a buffer of our own (pg's chunks are views of a buffer it reuses), and the socket
 * is paused while `out` drains, so memory stays flat however slow the reader on the other end.
 *
 * Binary COPY (PostgreSQL's docs, "Binary Format"): an 11-byte signature, int32 flags, int32
 * header-extension length and the extension; then per row int16 field count, and per field int32
 * length (-1 for null) and the bytes; a field count of -1 ends the data. All big-endian.
 */
class CopyLines {
  readonly text: string;
  readonly #out: Writable;
  readonly #onRows: (rows: number) => void;
  #pending: Buffer = Buffer.alloc(0);
  #headerDone = false;
  #output = Buffer.allocUnsafe(bufferBytes);
  #used = 0;
  #rows = 0;
  #error: Error | null = null;
  #settle: { resolve: (rows: number) => void; reject: (error: Error) => void } | null = null;
  readonly done: Promise<number>;

  constructor(text: string, out: Writable, onRows: (rows: number) => void) {
    this.text = text;
    this.#out = out;
    this.#onRows = onRows;
    this.done = new Promise((resolve, reject) => (this.#settle = { resolve, reject }));
  }

  submit(connection: Connection): void {
    connection.query(this.text);
  }

  handleCopyData(message: { chunk: Buffer }, connection: Connection): void {
    this.#pending =
      this.#pending.length === 0 ? message.chunk : Buffer.concat([this.#pending, message.chunk]);
    let at = 0;
    const data = this.#pending;
    if (!this.#headerDone) {
      if (data.length < 19) return this.#keep(data, at);
      if (!data.subarray(0, 11).equals(signature)) return this.#fail('not a binary COPY stream');
      const extension = data.readUInt32BE(15);
      if (data.length < 19 + extension) return this.#keep(data, at);
      at = 19 + extension;
      this.#headerDone = true;
    }
    while (data.length - at >= 2) {
      const fields = data.readInt16BE(at);
      if (fields === -1) {
        at += 2;
        continue;
      }
      if (fields !== 1) return this.#fail(`expected one column, got ${fields}`);
      if (data.length - at < 6) break;
      const length = data.readInt32BE(at + 2);
      if (length < 0) return this.#fail('a line is null');
      if (data.length - at < 6 + length) break;
      this.#append(data.subarray(at + 6, at + 6 + length), connection);
      at += 6 + length;
      this.#rows++;
      if (this.#rows % 10_000 === 0) this.#onRows(this.#rows);
    }
    this.#keep(data, at);
  }

  handleError(error: Error): void {
    this.#error ??= error;
  }

  handleReadyForQuery(connection: Connection): void {
    this.#flush(connection);
    if (this.#error) this.#settle?.reject(this.#error);
    else this.#settle?.resolve(this.#rows);
  }

  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {
    this.#fail('COPY FROM is not what was asked');
  }

  #keep(data: Buffer, at: number): void {
    // A copy, not a view: pg reuses the buffer the chunk points into.
    this.#pending = at >= data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(at));
  }

  #fail(reason: string): void {
    this.#error ??= new Error(`export: ${reason}`);
  }

  #append(line: Buffer, connection: Connection): void {
    if (this.#used + line.length + 1 > this.#output.length) this.#flush(connection);
    if (line.length + 1 > this.#output.length) {
      this.#write(Buffer.concat([line, Buffer.from('\n')]), connection);
      return;
    }
    line.copy(this.#output, this.#used);
    this.#output[this.#used + line.length] = 0x0a;
    this.#used += line.length + 1;
  }

  #flush(connection: Connection): void {
    if (this.#used === 0) return;
    const chunk = this.#output.subarray(0, this.#used);
    this.#output = Buffer.allocUnsafe(bufferBytes);
    this.#used = 0;
    this.#write(chunk, connection);
  }

  #write(chunk: Buffer, connection: Connection): void {
    if (!this.#out.write(chunk)) {
      connection.stream.pause();
      this.#out.once('drain', () => connection.stream.resume());
    }
  }
}

/** A string literal for SQL text that cannot take parameters (COPY). */
const literal = (value: string): string => pg.escapeLiteral(value);

/**
 * The export (export.ts) on PostgreSQL: one `COPY … TO STDOUT` in one snapshot, below the read
 * guard like every reader of the log, straight from the socket to `out`. It needs only pg: no
 * kysely, no migrations, and no string or object per row, so its memory is the process's own.
 */
export const exportByCopy = async (
  url: string,
  out: Writable,
  options: Omit<ExportOptions, 'pageSize'> & { onTotal?: (events: number) => void },
): Promise<{ events: number }> => {
  const where = [
    `e.transaction_id < ${readGuardSql}`,
    ...(options.programId === undefined
      ? []
      : [`e.metadata->>'programId' = ${literal(options.programId)}`]),
    ...(options.since === undefined
      ? []
      : [
          `(e.metadata->>'recordedAt')::timestamptz >= ${literal(options.since.toISOString())}::timestamptz`,
        ]),
    ...(options.until === undefined
      ? []
      : [
          `(e.metadata->>'recordedAt')::timestamptz <= ${literal(options.until.toISOString())}::timestamptz`,
        ]),
  ].join(' and ');
  const line = options.format === 'csv' ? csvLineSql : jsonLineSql;
  const client = new pg.Client({ connectionString: url });
  // A lost connection ends the COPY with no ReadyForQuery: this is what settles it then.
  const lost = new Promise<never>((_resolve, reject) => {
    client.on('error', reject);
    client.on('end', () => reject(new Error('export: the database connection ended')));
  });
  lost.catch(() => {});
  await client.connect();
  try {
    if (options.onTotal) {
      const counted = await client.query<{ n: string }>(
        `select count(*)::text as n from incentable_events e where ${where}`,
      );
      options.onTotal(Number(counted.rows[0]?.n ?? 0));
    }
    if (options.format === 'csv') out.write(`${csvColumns.join(',')}\n`);
    const copy = new CopyLines(
      `copy (select ${line} from incentable_events e where ${where}
        order by e.transaction_id, e.global_position) to stdout (format binary)`,
      out,
      (rows) => options.onProgress?.(rows),
    );
    client.query(copy as unknown as pg.Submittable);
    const events = await Promise.race([copy.done, lost]);
    options.onProgress?.(events);
    return { events };
  } finally {
    await client.end();
  }
};
