import { randomBytes as cryptoRandomBytes, randomUUID } from 'node:crypto';
import { sql, type Kysely, type Selectable } from 'kysely';
import { catalogueEntryOf, type WebhookEventType } from '../../delivery/catalogue.ts';
import { envelopeIdFor, serializeEnvelope } from '../../delivery/envelope.ts';
import { decryptSecret, encryptSecret, newWebhookSecret } from '../../delivery/signing.ts';
import type { Database } from '../db/schema.ts';
import { newId, newTimeOrderedId } from '../ids.ts';
import type { DeliveryStatus, WebhookTables } from '../db/webhookTables.ts';

type EndpointRow = Selectable<WebhookTables['webhook_endpoints']>;

/** An endpoint as the API shows it: never the secret. */
export type WebhookEndpoint = {
  endpointId: string;
  programId: string;
  url: string;
  description: string;
  /** Subscribed types, or ['*'] for all. */
  events: string[];
  enabled: boolean;
  disabledReason: string | null;
  /** While set and in the future, the previous secret still signs (rotation overlap). */
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
};

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

export type WebhookStoreOptions = {
  db: Kysely<Database>;
  /** 32 bytes: the AES-256-GCM key for endpoint secrets at rest. */
  secretKey: Uint8Array;
  clock?: { now: () => Date };
  randomBytes?: (n: number) => Uint8Array;
  /** How long a rotated-out secret keeps signing; 24 h by default. */
  rotationOverlapMs?: number;
};

export type EndpointChanges = {
  url?: string;
  events?: string[];
  description?: string;
  /** Re-enabling clears `disabledReason`. */
  enabled?: boolean;
};

export type WebhookStore = ReturnType<typeof createWebhookStore>;

const toEndpoint = (row: EndpointRow): WebhookEndpoint => ({
  endpointId: row.endpoint_id,
  programId: row.program_id,
  url: row.url,
  description: row.description,
  events: row.events,
  enabled: row.enabled,
  disabledReason: row.disabled_reason,
  previousSecretExpiresAt: row.previous_secret_expires_at,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

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

/**
 * Endpoints, secrets and the delivery log, for the HTTP routes and the dashboard. Every function
 * that queues work (enqueueTest, redeliver, replay) only writes rows: call the worker's notify()
 * afterwards to skip its poll delay. Functions taking a programId scope every read and write to
 * it, so a route cannot reach another program's endpoints by id.
 */
export const createWebhookStore = (options: WebhookStoreOptions) => {
  const { db, secretKey } = options;
  const clock = options.clock ?? { now: () => new Date() };
  const randomBytes = options.randomBytes ?? ((n: number) => new Uint8Array(cryptoRandomBytes(n)));
  const overlapMs = options.rotationOverlapMs ?? 24 * 60 * 60 * 1000;

  const endpointRow = (programId: string, endpointId: string) =>
    db
      .selectFrom('webhook_endpoints')
      .selectAll()
      .where('program_id', '=', programId)
      .where('endpoint_id', '=', endpointId)
      .executeTakeFirst();

  /** Inserts one delivery of an envelope for an endpoint, in the next free series. */
  const queueDelivery = async (
    trx: Kysely<Database>,
    input: { programId: string; endpointId: string; envelopeId: string },
  ): Promise<{ deliveryId: string; series: number }> => {
    const now = clock.now();
    const deliveryId = newTimeOrderedId('webhookDelivery');
    const result = await sql<{ delivery_id: string; series: number }>`
      insert into webhook_deliveries
        (delivery_id, program_id, endpoint_id, envelope_id, series, status, next_attempt_at, created_at, updated_at)
      select ${deliveryId}, ${input.programId}, ${input.endpointId}, ${input.envelopeId},
        coalesce((select max(series) + 1 from webhook_deliveries
          where endpoint_id = ${input.endpointId} and envelope_id = ${input.envelopeId}), 0),
        'pending', ${now}, ${now}, ${now}
      returning delivery_id, series`.execute(trx);
    const row = result.rows[0];
    if (!row) throw new Error('insert into webhook_deliveries returned no row');
    return { deliveryId: row.delivery_id, series: row.series };
  };

  return {
    /** Creates an enabled endpoint; the plain secret is returned once here (and by revealSecret). */
    async createEndpoint(
      input: {
        programId: string;
        url: string;
        events: string[];
        description?: string;
      },
      executor: Kysely<Database> = db,
    ): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
      const secret = newWebhookSecret(randomBytes);
      const now = clock.now();
      const row = await executor
        .insertInto('webhook_endpoints')
        .values({
          endpoint_id: newId('webhookEndpoint'),
          program_id: input.programId,
          url: input.url,
          description: input.description ?? '',
          events: input.events,
          enabled: true,
          secret_encrypted: encryptSecret(secret, secretKey, { randomBytes }),
          previous_secret_encrypted: null,
          previous_secret_expires_at: null,
          disabled_reason: null,
          created_at: now,
          updated_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return { endpoint: toEndpoint(row), secret };
    },

    async listEndpoints(programId: string): Promise<WebhookEndpoint[]> {
      const rows = await db
        .selectFrom('webhook_endpoints')
        .selectAll()
        .where('program_id', '=', programId)
        .orderBy('seq')
        .execute();
      return rows.map(toEndpoint);
    },

    async getEndpoint(programId: string, endpointId: string): Promise<WebhookEndpoint | null> {
      const row = await endpointRow(programId, endpointId);
      return row ? toEndpoint(row) : null;
    },

    async updateEndpoint(
      programId: string,
      endpointId: string,
      changes: EndpointChanges,
    ): Promise<WebhookEndpoint | null> {
      const row = await db
        .updateTable('webhook_endpoints')
        .set({
          ...(changes.url !== undefined && { url: changes.url }),
          ...(changes.events !== undefined && { events: changes.events }),
          ...(changes.description !== undefined && { description: changes.description }),
          ...(changes.enabled !== undefined && { enabled: changes.enabled }),
          ...(changes.enabled === true && { disabled_reason: null }),
          updated_at: clock.now(),
        })
        .where('program_id', '=', programId)
        .where('endpoint_id', '=', endpointId)
        .returningAll()
        .executeTakeFirst();
      return row ? toEndpoint(row) : null;
    },

    /**
     * Deletes the endpoint with its deliveries and attempts; envelopes stay (other endpoints).
     * Each statement waits for the writers that locked what it deletes, then sees what they
     * committed: the endpoint row for a projector batch that read it (FOR KEY SHARE), so its
     * deliveries are deleted too; the delivery rows for an attempt record (FOR KEY SHARE), so its
     * attempts are deleted after them.
     */
    async deleteEndpoint(programId: string, endpointId: string): Promise<boolean> {
      return db.transaction().execute(async (tx) => {
        const result = await tx
          .deleteFrom('webhook_endpoints')
          .where('program_id', '=', programId)
          .where('endpoint_id', '=', endpointId)
          .executeTakeFirst();
        if (result.numDeletedRows === 0n) return false;
        const deliveries = await tx
          .deleteFrom('webhook_deliveries')
          .where('endpoint_id', '=', endpointId)
          .returning('delivery_id')
          .execute();
        const ids = deliveries.map((d) => d.delivery_id);
        await sql`delete from webhook_attempts where delivery_id = any(${ids}::text[])`.execute(tx);
        return true;
      });
    },

    async revealSecret(programId: string, endpointId: string): Promise<string | null> {
      const row = await endpointRow(programId, endpointId);
      return row ? decryptSecret(row.secret_encrypted, secretKey) : null;
    },

    /**
     * A new secret signs from now on; the old one keeps signing beside it (a second
     * `webhook-signature` entry) until `previousSecretExpiresAt`, so receivers can switch without
     * a gap. `X-Incentable-Signature` carries only the current secret's HMAC.
     */
    async rotateSecret(
      programId: string,
      endpointId: string,
      executor: Kysely<Database> = db,
    ): Promise<{ secret: string; previousSecretExpiresAt: Date } | null> {
      const secret = newWebhookSecret(randomBytes);
      const now = clock.now();
      const expiresAt = new Date(now.getTime() + overlapMs);
      const row = await executor
        .updateTable('webhook_endpoints')
        .set((eb) => ({
          previous_secret_encrypted: eb.ref('secret_encrypted'),
          previous_secret_expires_at: expiresAt,
          secret_encrypted: encryptSecret(secret, secretKey, { randomBytes }),
          updated_at: now,
        }))
        .where('program_id', '=', programId)
        .where('endpoint_id', '=', endpointId)
        .returning('endpoint_id')
        .executeTakeFirst();
      return row ? { secret, previousSecretExpiresAt: expiresAt } : null;
    },

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

    /**
     * "Send Test Event": the catalogue's sample in a fresh envelope (is_test), queued for this one
     * endpoint whether or not it subscribes to the type (a disabled endpoint keeps it pending until
     * re-enabled). The worker signs it like any other and adds `X-Incentable-Test: true`.
     */
    async enqueueTest(
      programId: string,
      endpointId: string,
      type: WebhookEventType,
    ): Promise<{ deliveryId: string; envelopeId: string } | null> {
      return db.transaction().execute(async (trx) => {
        const endpoint = await trx
          .selectFrom('webhook_endpoints')
          .select('endpoint_id')
          .where('program_id', '=', programId)
          .where('endpoint_id', '=', endpointId)
          .forUpdate()
          .executeTakeFirst();
        if (!endpoint) return null;
        const now = clock.now();
        const envelopeId = envelopeIdFor(randomUUID());
        await trx
          .insertInto('webhook_envelopes')
          .values({
            envelope_id: envelopeId,
            program_id: programId,
            type,
            body: serializeEnvelope({
              id: envelopeId,
              type,
              createdAt: now,
              data: catalogueEntryOf(type).sample,
            }),
            source_event_id: null,
            is_test: true,
            created_at: now,
          })
          .execute();
        const { deliveryId } = await queueDelivery(trx, { programId, endpointId, envelopeId });
        return { deliveryId, envelopeId };
      });
    },

    /** A new delivery (next series) of the same envelope to the same endpoint: same id, same bytes. */
    async redeliver(programId: string, deliveryId: string): Promise<{ deliveryId: string } | null> {
      return db.transaction().execute(async (trx) => {
        const original = await trx
          .selectFrom('webhook_deliveries')
          .select(['endpoint_id', 'envelope_id'])
          .where('program_id', '=', programId)
          .where('delivery_id', '=', deliveryId)
          .executeTakeFirst();
        if (!original) return null;
        // Serialises series allocation per endpoint, so two clicks take two series.
        await trx
          .selectFrom('webhook_endpoints')
          .select('endpoint_id')
          .where('endpoint_id', '=', original.endpoint_id)
          .forUpdate()
          .execute();
        const queued = await queueDelivery(trx, {
          programId,
          endpointId: original.endpoint_id,
          envelopeId: original.envelope_id,
        });
        return { deliveryId: queued.deliveryId };
      });
    },

    /**
     * Queues again, for one endpoint, every non-test envelope of its program created in
     * [since, until) that the endpoint subscribes to (narrowed by `types` if given), each in a new
     * series. Returns how many deliveries were queued, or null for an unknown endpoint.
     */
    async replay(
      programId: string,
      endpointId: string,
      range: { since: Date; until?: Date; types?: string[] },
    ): Promise<{ queued: number } | null> {
      return db.transaction().execute(async (trx) => {
        const endpoint = await trx
          .selectFrom('webhook_endpoints')
          .select(['endpoint_id', 'events'])
          .where('program_id', '=', programId)
          .where('endpoint_id', '=', endpointId)
          .forUpdate()
          .executeTakeFirst();
        if (!endpoint) return null;
        const now = clock.now();
        const subscribed = endpoint.events.includes('*')
          ? sql`true`
          : sql`v.type = any(${endpoint.events}::text[])`;
        const narrowed =
          range.types === undefined ? sql`true` : sql`v.type = any(${range.types}::text[])`;
        const until = range.until === undefined ? sql`true` : sql`v.created_at < ${range.until}`;
        const result = await sql`
          insert into webhook_deliveries
            (delivery_id, program_id, endpoint_id, envelope_id, series, status, next_attempt_at, created_at, updated_at)
          select 'wdl_' || replace(gen_random_uuid()::text, '-', ''), v.program_id, ${endpointId}, v.envelope_id,
            coalesce((select max(d.series) + 1 from webhook_deliveries d
              where d.endpoint_id = ${endpointId} and d.envelope_id = v.envelope_id), 0),
            'pending', ${now}, ${now}, ${now}
          from webhook_envelopes v
          where v.program_id = ${programId} and not v.is_test
            and v.created_at >= ${range.since} and ${until} and ${subscribed} and ${narrowed}
          order by v.created_at, v.seq`.execute(trx);
        return { queued: Number(result.numAffectedRows ?? 0n) };
      });
    },
  };
};

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
