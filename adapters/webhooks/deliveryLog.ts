import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { DeliveryStatus } from '../db/webhookTables.ts';

export type WebhookDelivery = {
  deliveryId: string;
  programId: string;
  endpointId: string;
  envelopeId: string;
  type: string;
  isTest: boolean;
  series: number;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date | null;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
};

export type WebhookAttempt = {
  attemptNumber: number;
  startedAt: Date;
  durationMs: number;
  httpStatus: number | null;
  responseBody: string | null;
  errorKind: string | null;
  errorMessage: string | null;
  /** What a 429 or 503 asked for with Retry-After, in seconds; null: nothing. */
  retryAfterS: number | null;
};

export type WebhookEnvelope = {
  envelopeId: string;
  programId: string;
  type: string;
  /** The exact bytes that are signed and sent. */
  body: string;
  sourceEventId: string | null;
  isTest: boolean;
  createdAt: Date;
};

/** A page of a keyset-paginated list, newest first; `nextCursor` null on the last page. */
export type Page<T> = { items: T[]; nextCursor: string | null };

const defaultLimit = 50;
const maxLimit = 500;
const clampLimit = (limit: number | undefined): number =>
  Math.min(Math.max(Math.trunc(limit ?? defaultLimit), 1), maxLimit);

/** Cursors are the row's seq: opaque to callers, stable under inserts (keyset, newest first). */
const encodeCursor = (seq: number): string => Buffer.from(String(seq)).toString('base64url');
const decodeCursor = (cursor: string | null | undefined): number | null => {
  if (!cursor) return null;
  const seq = Number(Buffer.from(cursor, 'base64url').toString('utf8'));
  return Number.isSafeInteger(seq) && seq > 0 ? seq : null;
};

const pageOf = <R extends { seq: number }, T>(
  rows: R[],
  limit: number,
  map: (row: R) => T,
): Page<T> => {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return {
    items: items.map(map),
    nextCursor: rows.length > limit && last ? encodeCursor(last.seq) : null,
  };
};

/** The program's envelopes in the order they were made, after a cursor: the live stream's reads. */
export const envelopeStream = (db: Kysely<Database>) => ({
  /**
   * The program's envelopes after `afterSeq`, oldest first, test events left out: the live
   * stream's page. The single-active projector inserts them one batch at a time, so `seq` order
   * is the order they became visible in, and a cursor never skips one committed later.
   */
  async envelopesAfter(
    programId: string,
    afterSeq: bigint,
    limit: number,
  ): Promise<{ seq: bigint; envelopeId: string; type: string; body: string }[]> {
    const rows = await db
      .selectFrom('webhook_envelopes')
      .select(['seq', 'envelope_id', 'type', 'body'])
      .where('program_id', '=', programId)
      .where('is_test', '=', false)
      .where(sql<boolean>`seq > ${afterSeq.toString()}::bigint`)
      .orderBy('seq')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      seq: BigInt(r.seq),
      envelopeId: r.envelope_id,
      type: r.type,
      body: r.body,
    }));
  },

  /** The program's newest envelope's `seq` (0 when none): where a stream without a cursor starts. */
  async lastEnvelopeSeq(programId: string): Promise<bigint> {
    const row = await db
      .selectFrom('webhook_envelopes')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .where('program_id', '=', programId)
      .where('is_test', '=', false)
      .executeTakeFirst();
    return row?.seq === null || row?.seq === undefined ? 0n : BigInt(row.seq);
  },
});

/**
 * The delivery log as the API and the dashboard read it: deliveries with their attempts, and the
 * envelopes (the exact bytes sent), newest first, each read scoped to its program.
 */
export const deliveryLog = (db: Kysely<Database>) => ({
  async listDeliveries(query: {
    programId: string;
    endpointId?: string;
    status?: DeliveryStatus;
    type?: string;
    cursor?: string | null;
    limit?: number;
  }): Promise<Page<WebhookDelivery>> {
    const limit = clampLimit(query.limit);
    const after = decodeCursor(query.cursor);
    let q = db
      .selectFrom('webhook_deliveries as d')
      .innerJoin('webhook_envelopes as v', 'v.envelope_id', 'd.envelope_id')
      .select([
        'd.seq',
        'd.delivery_id',
        'd.program_id',
        'd.endpoint_id',
        'd.envelope_id',
        'd.series',
        'd.status',
        'd.attempts',
        'd.next_attempt_at',
        'd.last_status',
        'd.last_error',
        'd.created_at',
        'd.updated_at',
        'v.type',
        'v.is_test',
      ])
      .where('d.program_id', '=', query.programId);
    if (query.endpointId !== undefined) q = q.where('d.endpoint_id', '=', query.endpointId);
    if (query.status !== undefined) q = q.where('d.status', '=', query.status);
    if (query.type !== undefined) q = q.where('v.type', '=', query.type);
    if (after !== null) q = q.where('d.seq', '<', after);
    const rows = await q
      .orderBy('d.seq', 'desc')
      .limit(limit + 1)
      .execute();
    return pageOf(rows, limit, toDelivery);
  },

  async getDelivery(
    programId: string,
    deliveryId: string,
  ): Promise<{
    delivery: WebhookDelivery;
    envelope: WebhookEnvelope;
    attempts: WebhookAttempt[];
  } | null> {
    const row = await db
      .selectFrom('webhook_deliveries as d')
      .innerJoin('webhook_envelopes as v', 'v.envelope_id', 'd.envelope_id')
      .select([
        'd.seq',
        'd.delivery_id',
        'd.program_id',
        'd.endpoint_id',
        'd.envelope_id',
        'd.series',
        'd.status',
        'd.attempts',
        'd.next_attempt_at',
        'd.last_status',
        'd.last_error',
        'd.created_at',
        'd.updated_at',
        'v.type',
        'v.is_test',
        'v.body',
        'v.source_event_id',
        'v.created_at as envelope_created_at',
      ])
      .where('d.program_id', '=', programId)
      .where('d.delivery_id', '=', deliveryId)
      .executeTakeFirst();
    if (!row) return null;
    const attempts = await db
      .selectFrom('webhook_attempts')
      .selectAll()
      .where('delivery_id', '=', deliveryId)
      .orderBy('attempt_number')
      .execute();
    return {
      delivery: toDelivery(row),
      envelope: {
        envelopeId: row.envelope_id,
        programId: row.program_id,
        type: row.type,
        body: row.body,
        sourceEventId: row.source_event_id,
        isTest: row.is_test,
        createdAt: row.envelope_created_at,
      },
      attempts: attempts.map((a) => ({
        attemptNumber: a.attempt_number,
        startedAt: a.started_at,
        durationMs: a.duration_ms,
        httpStatus: a.http_status,
        responseBody: a.response_body,
        errorKind: a.error_kind,
        errorMessage: a.error_message,
        retryAfterS: a.retry_after_s === null ? null : Number(a.retry_after_s),
      })),
    };
  },

  async listEnvelopes(query: {
    programId: string;
    type?: string;
    cursor?: string | null;
    limit?: number;
  }): Promise<Page<WebhookEnvelope>> {
    const limit = clampLimit(query.limit);
    const after = decodeCursor(query.cursor);
    let q = db
      .selectFrom('webhook_envelopes')
      .selectAll()
      .where('program_id', '=', query.programId);
    if (query.type !== undefined) q = q.where('type', '=', query.type);
    if (after !== null) q = q.where('seq', '<', after);
    const rows = await q
      .orderBy('seq', 'desc')
      .limit(limit + 1)
      .execute();
    return pageOf(rows, limit, (r) => ({
      envelopeId: r.envelope_id,
      programId: r.program_id,
      type: r.type,
      body: r.body,
      sourceEventId: r.source_event_id,
      isTest: r.is_test,
      createdAt: r.created_at,
    }));
  },
});

const toDelivery = (row: {
  delivery_id: string;
  program_id: string;
  endpoint_id: string;
  envelope_id: string;
  type: string;
  is_test: boolean;
  series: number;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date | null;
  last_status: number | null;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
}): WebhookDelivery => ({
  deliveryId: row.delivery_id,
  programId: row.program_id,
  endpointId: row.endpoint_id,
  envelopeId: row.envelope_id,
  type: row.type,
  isTest: row.is_test,
  series: row.series,
  status: row.status,
  attempts: row.attempts,
  nextAttemptAt: row.next_attempt_at,
  lastStatus: row.last_status,
  lastError: row.last_error,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});
