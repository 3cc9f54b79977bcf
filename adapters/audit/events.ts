import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Position } from '../../domain/recordedEvent.ts';
import type { Database } from '../db/schema.ts';
import { readGuard, toRecorded, type EventRow } from '../eventstore/postgresEventStore.ts';

/** An event row as the auditors read it: the event store's own row shape and mapping. */
export type AuditRow = EventRow;
export { toRecorded };

export const positionOf = (
  row: Pick<AuditRow, 'transaction_id' | 'global_position'>,
): Position => ({
  commit: BigInt(row.transaction_id),
  prepare: BigInt(row.global_position),
});

export type GlobalPageOptions = {
  /** Strictly after this position (null: from the start). */
  after: Position | null;
  /** Up to and including this position (null: everything committed). */
  until?: Position | null;
  limit: number;
  programId?: string;
  /** Only these types. */
  types?: readonly string[];
  stream?: string;
  /** Inclusive bounds on metadata.recordedAt. */
  since?: Date;
  before?: Date;
};

/** The WHERE clause of a global-order page, shared by the parsed and the text readers. */
const globalFilter = (options: GlobalPageOptions) => {
  const after = options.after ?? { commit: 0n, prepare: 0n };
  const until = options.until
    ? sql`and (e.transaction_id, e.global_position) <= (${options.until.commit.toString()}::xid8, ${options.until.prepare.toString()}::bigint)`
    : sql``;
  const program =
    options.programId === undefined
      ? sql``
      : sql`and e.metadata->>'programId' = ${options.programId}`;
  const types =
    options.types === undefined || options.types.length === 0
      ? sql``
      : sql`and e.type = any(${[...options.types]}::text[])`;
  const stream = options.stream === undefined ? sql`` : sql`and e.stream_name = ${options.stream}`;
  const since =
    options.since === undefined
      ? sql``
      : sql`and (e.metadata->>'recordedAt')::timestamptz >= ${options.since.toISOString()}::timestamptz`;
  const before =
    options.before === undefined
      ? sql``
      : sql`and (e.metadata->>'recordedAt')::timestamptz <= ${options.before.toISOString()}::timestamptz`;
  return sql`(e.transaction_id, e.global_position) > (${after.commit.toString()}::xid8, ${after.prepare.toString()}::bigint)
      and e.transaction_id < ${readGuard}
      ${until} ${program} ${types} ${stream} ${since} ${before}`;
};

/**
 * A page's rows in an array of their own, pg's emptied. pg's result of a finished query stays
 * reachable until V8's next full collection, and while it holds the rows every page outlives the
 * young-generation collections and is copied into the old generation, which then grows to ~3.5
 * times its live size before each full collection (BENCHMARKS.md, "Replay memory"). A page now
 * dies young once handled.
 */
const detached = <Row>(rows: Row[]): Row[] => rows.splice(0);

/**
 * One page of events in the global order (transaction_id, global_position), read below the
 * oldest running transaction like the event store's own reader, so a late commit is never
 * skipped. ORDER BY names the table's columns: the text aliases would sort "10" before "2".
 */
export const readGlobalPage = async (
  db: Kysely<Database>,
  options: GlobalPageOptions,
): Promise<AuditRow[]> => {
  const result = await sql<AuditRow>`
    select e.global_position::text as global_position, e.transaction_id::text as transaction_id,
      e.event_id::text as event_id, e.stream_name, e.stream_revision::text as stream_revision,
      e.type, e.data, e.metadata, e.hash
    from incentable_events e
    where ${globalFilter(options)}
    order by e.transaction_id, e.global_position
    limit ${options.limit}`.execute(db);
  return detached(result.rows);
};

/** An event row as a replay reads it: of the metadata only the program id. */
export type ReplayRow = Pick<
  AuditRow,
  'transaction_id' | 'global_position' | 'event_id' | 'stream_revision' | 'type' | 'data'
> & { program_id: string | null };

/** `readGlobalPage` without the metadata (a third of each row to read and parse) but its program. */
export const readReplayPage = async (
  db: Kysely<Database>,
  options: GlobalPageOptions,
): Promise<ReplayRow[]> => {
  const result = await sql<ReplayRow>`
    select e.global_position::text as global_position, e.transaction_id::text as transaction_id,
      e.event_id::text as event_id, e.stream_revision::text as stream_revision, e.type, e.data,
      e.metadata->>'programId' as program_id
    from incentable_events e
    where ${globalFilter(options)}
    order by e.transaction_id, e.global_position
    limit ${options.limit}`.execute(db);
  return detached(result.rows);
};

/** One event as a line of text built by PostgreSQL, with the position to page on. */
export type LineRow = Pick<AuditRow, 'transaction_id' | 'global_position'> & { line: string };

/**
 * A page of the global order with each event already written out by PostgreSQL as `line` (an
 * expression over the alias `e`): the reader only copies text, it never parses a row.
 */
export const readGlobalLinePage = async (
  db: Kysely<Database>,
  options: GlobalPageOptions & { line: RawBuilder<string> },
): Promise<LineRow[]> => {
  const result = await sql<LineRow>`
    select e.transaction_id::text as transaction_id, e.global_position::text as global_position,
      ${options.line} as line
    from incentable_events e
    where ${globalFilter(options)}
    order by e.transaction_id, e.global_position
    limit ${options.limit}`.execute(db);
  return detached(result.rows);
};

/**
 * Every page of the global order, one after another, the next one already being read while the
 * caller handles the current one (the read and the caller's work overlap on two cores).
 */
export async function* globalPages(
  db: Kysely<Database>,
  options: GlobalPageOptions,
): AsyncGenerator<AuditRow[]> {
  yield* prefetchedPages(db, options, readGlobalPage);
}

/** `globalPages` of `readReplayPage` rows. */
export async function* replayPages(
  db: Kysely<Database>,
  options: GlobalPageOptions,
): AsyncGenerator<ReplayRow[]> {
  yield* prefetchedPages(db, options, readReplayPage);
}

/** `globalPages` with each event written out as a line of text (`readGlobalLinePage`). */
export async function* globalLinePages(
  db: Kysely<Database>,
  options: GlobalPageOptions & { line: RawBuilder<string> },
): AsyncGenerator<LineRow[]> {
  yield* prefetchedPages(db, options, readGlobalLinePage);
}

async function* prefetchedPages<
  Row extends Pick<AuditRow, 'transaction_id' | 'global_position'>,
  Options extends GlobalPageOptions,
>(
  db: Kysely<Database>,
  options: Options,
  read: (db: Kysely<Database>, options: Options) => Promise<Row[]>,
): AsyncGenerator<Row[]> {
  let next: Promise<Row[]> | null = read(db, options);
  while (next) {
    const page: Row[] = await next;
    const last = page[page.length - 1];
    next =
      page.length === options.limit && last
        ? read(db, { ...options, after: positionOf(last) })
        : null;
    // A consumer that stops early leaves the read in flight: its failure is nobody's to handle.
    next?.catch(() => {});
    if (page.length > 0) yield page;
  }
}

/** Rows in the log (optionally one program's): the progress bars' totals. */
export const countEvents = async (db: Kysely<Database>, programId?: string): Promise<number> => {
  const where =
    programId === undefined ? sql`` : sql`where split_part(stream_name, '-', 2) = ${programId}`;
  const result = await sql<{
    n: string;
  }>`select count(*)::text as n from incentable_events ${where}`.execute(db);
  return Number(result.rows[0]?.n ?? 0);
};
