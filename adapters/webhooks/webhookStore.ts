import { randomBytes as cryptoRandomBytes, randomUUID } from 'node:crypto';
import { sql, type Kysely, type Selectable } from 'kysely';
import { anyEntryOf, type SubscribableEventType } from '../../delivery/catalogue.ts';
import { envelopeIdFor, serializeEnvelope } from '../../delivery/envelope.ts';
import { decryptSecret, encryptSecret, newWebhookSecret } from '../../delivery/signing.ts';
import { splitCredentials } from '../../delivery/destinations.ts';
import type { EndpointOrdering } from '../../delivery/ordering.ts';
import { subscribedTypes } from '../../delivery/subscriptions.ts';
import type { Database } from '../db/schema.ts';
import { newId, newTimeOrderedId } from '../ids.ts';
import type { WebhookTables } from '../db/webhookTables.ts';
import { deliveryLog, envelopeStream } from './deliveryLog.ts';

export type { Page, WebhookAttempt, WebhookDelivery, WebhookEnvelope } from './deliveryLog.ts';

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
  /** `gone` (it answered 410), `sustained_failure`, or null (by hand, or enabled). */
  disabledCode: string | null;
  /** The first failed attempt since the last delivered one; null while healthy. */
  failingSince: Date | null;
  /** Deliveries per second at most, across every worker process; null: no limit. */
  rateLimitPerSecond: number | null;
  /** `ordered`: each subject's events in the order they happened (delivery/ordering.ts). */
  ordering: EndpointOrdering;
  /** While set and in the future, the previous secret still signs (rotation overlap). */
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
};

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
  /** null removes the limit. */
  rateLimitPerSecond?: number | null;
  /** Applies to deliveries queued from now on; those already numbered keep their order. */
  ordering?: EndpointOrdering;
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
  disabledCode: row.disabled_code,
  failingSince: row.failing_since,
  rateLimitPerSecond: row.rate_limit_per_second,
  ordering: row.ordering,
  previousSecretExpiresAt: row.previous_secret_expires_at,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

/** What the store's parts share: the database, the at-rest key, the clock and the randomness. */
type StoreContext = {
  db: Kysely<Database>;
  secretKey: Uint8Array;
  clock: { now: () => Date };
  randomBytes: (n: number) => Uint8Array;
  overlapMs: number;
};

/**
 * Endpoints, secrets and the delivery log, for the HTTP routes and the dashboard. Every function
 * that queues work (enqueueTest, redeliver, replay) only writes rows: call the worker's notify()
 * afterwards to skip its poll delay. Functions taking a programId scope every read and write to
 * it, so a route cannot reach another program's endpoints by id.
 */
export const createWebhookStore = (options: WebhookStoreOptions) => {
  const context: StoreContext = {
    db: options.db,
    secretKey: options.secretKey,
    clock: options.clock ?? { now: () => new Date() },
    randomBytes: options.randomBytes ?? ((n: number) => new Uint8Array(cryptoRandomBytes(n))),
    overlapMs: options.rotationOverlapMs ?? 24 * 60 * 60 * 1000,
  };
  return {
    ...endpoints(context),
    ...deliveryLog(options.db),
    ...envelopeStream(options.db),
    ...requeue(context),
  };
};

const endpointRow = (db: Kysely<Database>, programId: string, endpointId: string) =>
  db
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where('program_id', '=', programId)
    .where('endpoint_id', '=', endpointId)
    .executeTakeFirst();

/** A URL as stored: its credentials, if any, split off and encrypted (delivery/destinations.ts). */
const storedUrl = (
  text: string,
  secretKey: Uint8Array,
  randomBytes: (n: number) => Uint8Array,
): { url: string; url_userinfo_encrypted: string | null } => {
  const { url, userinfo } = splitCredentials(text);
  return {
    url,
    url_userinfo_encrypted:
      userinfo === null ? null : encryptSecret(userinfo, secretKey, { randomBytes }),
  };
};

/**
 * The endpoint's token bucket (migrations/019_endpointRateLimit.ts): made full when a limit is
 * set, cut down to a lower limit, removed with the limit.
 */
const setRateBucket = async (
  executor: Kysely<Database>,
  endpointId: string,
  rate: number | null,
  now: Date,
): Promise<void> => {
  if (rate === null) {
    await executor
      .deleteFrom('webhook_rate_buckets')
      .where('endpoint_id', '=', endpointId)
      .execute();
    return;
  }
  await sql`insert into webhook_rate_buckets (endpoint_id, tokens, refreshed_at)
    values (${endpointId}, ${rate}, ${now})
    on conflict (endpoint_id) do update set tokens = least(webhook_rate_buckets.tokens, ${rate})`.execute(
    executor,
  );
};

/** Changes an endpoint (and its rate bucket) in one transaction; null when there is none. */
const updateEndpoint = (
  { db, secretKey, clock, randomBytes }: StoreContext,
  programId: string,
  endpointId: string,
  changes: EndpointChanges,
): Promise<WebhookEndpoint | null> => {
  return db.transaction().execute(async (tx) => {
    const now = clock.now();
    const url =
      changes.url === undefined ? undefined : storedUrl(changes.url, secretKey, randomBytes);
    // The URL as shown (no password) sent back unchanged, as an edit form does: the stored
    // credentials stay. A new URL brings its own, or none.
    const keepCredentials =
      url !== undefined &&
      url.url_userinfo_encrypted === null &&
      (
        await tx
          .selectFrom('webhook_endpoints')
          .select('url')
          .where('program_id', '=', programId)
          .where('endpoint_id', '=', endpointId)
          .executeTakeFirst()
      )?.url === url.url;
    const row = await tx
      .updateTable('webhook_endpoints')
      .set({
        ...(url !== undefined && (keepCredentials ? { url: url.url } : url)),
        ...(changes.rateLimitPerSecond !== undefined && {
          rate_limit_per_second: changes.rateLimitPerSecond,
        }),
        ...(changes.ordering !== undefined && { ordering: changes.ordering }),
        ...(changes.events !== undefined && { events: changes.events }),
        ...(changes.description !== undefined && { description: changes.description }),
        ...(changes.enabled !== undefined && { enabled: changes.enabled }),
        // Re-enabled: its failure clock starts again, so it is not disabled at its next failure.
        ...(changes.enabled === true && {
          disabled_reason: null,
          disabled_code: null,
          failing_since: null,
          failed_deliveries: 0,
          failure_warned_at: null,
        }),
        updated_at: now,
      })
      .where('program_id', '=', programId)
      .where('endpoint_id', '=', endpointId)
      .returningAll()
      .executeTakeFirst();
    if (!row) return null;
    if (changes.rateLimitPerSecond !== undefined)
      await setRateBucket(tx, row.endpoint_id, row.rate_limit_per_second, now);
    return toEndpoint(row);
  });
};

/** Endpoints and their secrets (encrypted at rest, shown only on creation, reveal and rotation). */
const endpoints = (context: StoreContext) => {
  const { db, secretKey, clock, randomBytes, overlapMs } = context;
  return {
    /** Creates an enabled endpoint; the plain secret is returned once here (and by revealSecret). */
    async createEndpoint(
      input: {
        programId: string;
        url: string;
        events: string[];
        description?: string;
        rateLimitPerSecond?: number | null;
        ordering?: EndpointOrdering;
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
          ...storedUrl(input.url, secretKey, randomBytes),
          rate_limit_per_second: input.rateLimitPerSecond ?? null,
          ordering: input.ordering ?? 'unordered',
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
      await setRateBucket(executor, row.endpoint_id, row.rate_limit_per_second, now);
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
      const row = await endpointRow(db, programId, endpointId);
      return row ? toEndpoint(row) : null;
    },

    updateEndpoint(
      programId: string,
      endpointId: string,
      changes: EndpointChanges,
    ): Promise<WebhookEndpoint | null> {
      return updateEndpoint(context, programId, endpointId, changes);
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
      const row = await endpointRow(db, programId, endpointId);
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
  };
};

/** Inserts one delivery of an envelope for an endpoint, in the next free series. */
const queueDelivery = async (
  trx: Kysely<Database>,
  input: { programId: string; endpointId: string; envelopeId: string; now: Date },
): Promise<{ deliveryId: string; series: number }> => {
  const { now } = input;
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

/** Work queued again by hand: a test event, a redelivery, a replay of a time range. */
const requeue = ({ db, clock }: StoreContext) => ({
  /**
   * "Send Test Event": the catalogue's sample in a fresh envelope (is_test), queued for this one
   * endpoint whether or not it subscribes to the type (a disabled endpoint keeps it pending until
   * re-enabled). The worker signs it like any other and adds `X-Incentable-Test: true`.
   */
  async enqueueTest(
    programId: string,
    endpointId: string,
    type: SubscribableEventType,
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
            data: anyEntryOf(type).sample,
          }),
          source_event_id: null,
          is_test: true,
          created_at: now,
        })
        .execute();
      const { deliveryId } = await queueDelivery(trx, {
        programId,
        endpointId,
        envelopeId,
        now,
      });
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
        now: clock.now(),
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
      const subscribed = sql`v.type = any(${subscribedTypes(endpoint.events)}::text[])`;
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
});
