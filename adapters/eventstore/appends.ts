import { sql, type Kysely } from 'kysely';
import {
  ConcurrencyError,
  type AppendResult,
  type ExpectedRevision,
  type NewEvent,
} from '../../application/ports.ts';
import type { Database } from '../db/schema.ts';
import { isDatabaseUnavailable } from '../db/unavailable.ts';

/**
 * The SQL of an append: one (`incentable_append`) or a batch of them in one transaction
 * (`incentable_append_batch`, migrations/015_appendBatch.ts), for group commit (groupCommit.ts).
 */

/** Group commit's defaults (PostgresEventStoreOptions.groupCommit). */
export const groupCommitDefaults = { maxBatch: 50, maxInFlight: 1, maxBytes: 4_000_000 };

/** One append, as group commit queues it: its events serialised once. */
export type AppendRequest = {
  stream: string;
  expected: ExpectedRevision;
  expectedCode: string;
  ids: string[];
  types: string[];
  data: string[];
  metadata: string[];
  /** Characters of data and metadata: what group commit's maxBytes counts. */
  size: number;
};

const expectedCode = (expected: ExpectedRevision): string => {
  if (expected === 'no_stream') return '-1';
  if (expected === 'any') return '-2';
  if (expected === 'exists') return '-3';
  if (expected < 0n) throw new RangeError(`expected revision must be >= 0, got ${expected}`);
  return expected.toString();
};

/** Throws a RangeError for an empty append or a negative expected revision. */
export const appendRequest = (
  stream: string,
  events: readonly NewEvent[],
  expected: ExpectedRevision,
): AppendRequest => {
  if (events.length === 0) throw new RangeError('append needs at least one event');
  const data = events.map((e) => JSON.stringify(e.data));
  const metadata = events.map((e) => JSON.stringify(e.metadata));
  let size = 0;
  for (const text of [...data, ...metadata]) size += text.length;
  return {
    stream,
    expected,
    expectedCode: expectedCode(expected),
    ids: events.map((e) => e.id),
    types: events.map((e) => e.type),
    data,
    metadata,
    size,
  };
};

type DriverError = { code?: unknown; detail?: unknown };

type AppendedRow = { next_revision: string; commit_position: string; prepare_position: string };

const appendResult = (row: AppendedRow): AppendResult => ({
  nextRevision: BigInt(row.next_revision),
  position: { commit: BigInt(row.commit_position), prepare: BigInt(row.prepare_position) },
});

/** The ConcurrencyError an append's SQLSTATE stands for, or null for any other failure. */
const concurrencyError = (
  request: AppendRequest,
  code: unknown,
  detail: unknown,
): ConcurrencyError | null => {
  if (code === 'IN409')
    return new ConcurrencyError(request.stream, request.expected, BigInt(String(detail)));
  // Two appenders racing to create a stream: the loser hits the unique key.
  if (code === '23505') return new ConcurrencyError(request.stream, request.expected, 0n);
  return null;
};

/**
 * True when PostgreSQL answered the statement with an error, so its transaction rolled back;
 * false for a connection lost or a server going away, after which it may have committed.
 */
const rolledBack = (error: unknown): boolean => {
  const code = (error as DriverError | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !isDatabaseUnavailable(error);
};

/** One append in its own transaction: `incentable_append` itself, without a subtransaction. */
export const appendOne = async (
  db: Kysely<Database>,
  request: AppendRequest,
): Promise<AppendResult> => {
  try {
    const result = await sql<AppendedRow>`
      select next_revision::text as next_revision, commit_position, prepare_position::text as prepare_position
      from incentable_append(
        ${request.stream}, ${request.expectedCode}::bigint,
        ${request.ids}::uuid[], ${request.types}::text[],
        ${request.data}::text[]::jsonb[], ${request.metadata}::text[]::jsonb[])`.execute(db);
    const row = result.rows[0];
    if (!row) throw new Error('incentable_append returned no row');
    return appendResult(row);
  } catch (error) {
    const driverError = error as DriverError;
    throw concurrencyError(request, driverError.code, driverError.detail) ?? error;
  }
};

type BatchRow = {
  ord: number;
  next_revision: string | null;
  commit_position: string | null;
  prepare_position: string | null;
  error_code: string | null;
  error_detail: string | null;
  error_message: string | null;
};

const byStream = (a: AppendRequest, b: AppendRequest): number =>
  a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0;

/**
 * Several appends in one statement, one transaction and one commit: each checked against its own
 * expected revision in its own subtransaction, so one that fails is rolled back alone and only
 * its caller gets the error. The batch goes in stream-name order (a stable sort: two appends to
 * one stream keep theirs), the one lock order every batch takes, so batches never deadlock.
 * Rejects only when the outcome is unknown (the connection was lost): then none is known to
 * have committed.
 */
export const appendBatch = async (
  db: Kysely<Database>,
  batch: readonly AppendRequest[],
): Promise<(AppendResult | Error)[]> => {
  const sorted = batch.map((request, index) => ({ request, index }));
  sorted.sort((a, b) => byStream(a.request, b.request));
  const requests = sorted.map((entry) => entry.request);
  let rows: BatchRow[];
  try {
    const result = await sql<BatchRow>`
      select ord, next_revision::text as next_revision, commit_position,
        prepare_position::text as prepare_position, error_code, error_detail, error_message
      from incentable_append_batch(
        ${requests.map((r) => r.stream)}::text[], ${requests.map((r) => r.expectedCode)}::bigint[],
        ${requests.map((r) => r.ids.length)}::int[], ${requests.flatMap((r) => r.ids)}::uuid[],
        ${requests.flatMap((r) => r.types)}::text[],
        ${requests.flatMap((r) => r.data)}::text[]::jsonb[],
        ${requests.flatMap((r) => r.metadata)}::text[]::jsonb[])`.execute(db);
    rows = result.rows;
  } catch (error) {
    if (!rolledBack(error)) throw error;
    // The statement failed as a whole (a value PostgreSQL refused at parse, a deadlock):
    // nothing of it committed, so each append is written again alone and only its own fault
    // reaches its caller.
    return Promise.all(
      batch.map((request) =>
        appendOne(db, request).catch((e: unknown) =>
          e instanceof Error ? e : new Error(String(e)),
        ),
      ),
    );
  }
  const answers = new Map<number, AppendResult | Error>();
  for (const row of rows) {
    const entry = sorted[row.ord - 1];
    if (!entry) throw new Error(`incentable_append_batch returned ord ${row.ord}`);
    const { next_revision, commit_position, prepare_position } = row;
    answers.set(
      entry.index,
      row.error_code === null && next_revision !== null && commit_position !== null
        ? appendResult({
            next_revision,
            commit_position,
            prepare_position: prepare_position ?? '0',
          })
        : (concurrencyError(entry.request, row.error_code, row.error_detail) ??
            Object.assign(new Error(row.error_message ?? `append failed (${row.error_code})`), {
              code: row.error_code,
              detail: row.error_detail,
            })),
    );
  }
  return batch.map(
    (_, index) =>
      answers.get(index) ?? new Error(`incentable_append_batch returned no row for ${index}`),
  );
};
