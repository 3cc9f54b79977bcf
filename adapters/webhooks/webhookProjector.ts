import type { StoreTransaction } from '../db/schema.ts';
import { sql, type Insertable, type Kysely } from 'kysely';
import { assignSequences, sequenceKey, subjectOf } from '../../delivery/ordering.ts';
import { envelopeIdFor, serializeEnvelope } from '../../delivery/envelope.ts';
import { toWebhookEvent } from '../../delivery/webhookMapping.ts';
import { subscribes } from '../../delivery/subscriptions.ts';
import type { DomainEvent } from '../../domain/events.ts';
import type { RecordedEvent } from '../../domain/recordedEvent.ts';
import { systemClock, type Clock, type SubscriptionHandler } from '../../application/ports.ts';
import { newTimeOrderedId } from '../ids.ts';
import type { Database } from '../db/schema.ts';
import type { Handoff, LeasedDelivery } from '../../delivery/ports.ts';
import { envelopeSpans } from '../telemetry/webhookSpans.ts';
import type { TraceContext } from '../../application/tracing.ts';

/** The subscription name of the webhook projector: its checkpoint key and its lock. */
export const webhooksProjection = 'webhooks';

export type WebhookProjectorOptions = {
  clock?: Clock;
  /** The delay before the first attempt (the retry schedule's first entry); 0 by default. */
  firstDelayS?: number;
  /**
   * This process's delivery worker: rows it has room for are inserted already leased to it and
   * handed over when the batch commits (DeliveryWorker.handoff). Without it every row is pending.
   */
  handoff?: () => Handoff | null;
};

/** The handler, and what the subscription calls after the batch's transaction committed. */
export type WebhookProjector = SubscriptionHandler<StoreTransaction> & {
  /** Hands the batch's leased rows over; true when it also left pending rows for a claim. */
  committed(): boolean;
};

/** Rows per INSERT: bounds one statement's arrays and its time holding row locks. */
const rowsPerStatement = 5_000;

const chunks = <T>(rows: readonly T[]): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += rowsPerStatement)
    out.push(rows.slice(i, i + rowsPerStatement));
  return out;
};

/**
 * Domain events -> envelopes -> one delivery per enabled endpoint of the event's program that
 * subscribes to the type. Runs in the subscription's transaction, beside its checkpoint. A
 * replayed batch inserts nothing new: the envelope id derives from the event id, and a delivery is
 * unique per (endpoint, envelope, series 0). Endpoints are read once per batch, inside the
 * transaction, never cached across batches.
 *
 * The transaction commits without waiting for its WAL flush (synchronous_commit off): everything
 * it writes is derived from the event store, so a crash that loses it only moves the checkpoint
 * back and the same batch is projected again, to the same envelope ids. A delivery sent from a
 * lost row is sent again under the same webhook-id (at least once, as documented), and recording
 * any attempt flushes the WAL past the row first.
 */
export const createWebhookProjector = (options: WebhookProjectorOptions = {}): WebhookProjector => {
  const clock = options.clock ?? systemClock;
  const firstDelayMs = Math.round((options.firstDelayS ?? 0) * 1000);
  /** The last batch's hand-over, until its commit (committed) or the next batch (cancelled). */
  let pending: { handoff: Handoff | null; rows: LeasedDelivery[]; claimable: boolean } | null =
    null;

  const handle = async (
    events: readonly RecordedEvent[],
    tx: Kysely<Database>,
    trace?: TraceContext,
  ): Promise<void> => {
    pending?.handoff?.cancel();
    pending = null;
    const { envelopes, subjects } = envelopesOf(events);
    if (envelopes.length === 0) return;
    await sql`set local synchronous_commit = off`.execute(tx);

    const programIds = [...new Set(envelopes.map((e) => e.program_id))];
    const endpoints = await enabledEndpoints(tx, programIds);

    const now = clock.now();
    const due = new Date(now.getTime() + firstDelayMs);
    // A first attempt that waits (firstDelayS) is left to the claims.
    const handoff = firstDelayMs > 0 ? null : (options.handoff?.() ?? null);
    const handed = new Map<string, LeasedDelivery>();
    const deliveries: Insertable<Database['webhook_deliveries']>[] = [];
    for (const envelope of envelopes) {
      for (const endpoint of endpoints) {
        if (endpoint.program_id !== envelope.program_id) continue;
        if (!subscribes(endpoint.events, envelope.type)) continue;
        const deliveryId = newTimeOrderedId('webhookDelivery', now.getTime());
        const subject =
          endpoint.ordering === 'ordered' ? (subjects.get(envelope.envelope_id) ?? null) : null;
        // A rate-limited endpoint's rows go through the claims, which spend its shared tokens;
        // so do an ordered endpoint's, which wait for the one before them.
        const leasedTo =
          endpoint.rate_limit_per_second === null &&
          endpoint.ordering === 'unordered' &&
          handoff?.take(endpoint.endpoint_id)
            ? handoff
            : null;
        deliveries.push({
          delivery_id: deliveryId,
          program_id: envelope.program_id,
          endpoint_id: endpoint.endpoint_id,
          envelope_id: envelope.envelope_id,
          series: 0,
          status: leasedTo ? 'delivering' : 'pending',
          next_attempt_at: due,
          lease_owner: leasedTo?.leaseOwner ?? null,
          lease_expires_at: leasedTo?.leaseExpiresAt ?? null,
          subject,
          created_at: now,
          updated_at: now,
        });
        if (leasedTo) handed.set(deliveryId, handedRow(deliveryId, envelope, endpoint));
      }
    }
    const inserted: LeasedDelivery[] = [];
    const newIds = new Set<string>();
    const spans = envelopeSpans(trace);
    for (const envelope of envelopes) spans?.start(envelope, envelope.traceparent ?? undefined);
    try {
      // One statement per chunk from one JSON document: no per-row parameters, whatever the
      // batch size. The first also inserts the envelopes (a data-modifying WITH runs to
      // completion whether or not it is read), a round trip fewer on every batch.
      const statements = deliveries.length > 0 ? chunks(deliveries) : [[]];
      for (const [index, rows] of statements.entries()) {
        const withEnvelopes =
          index > 0
            ? sql``
            : sql`with envelopes as (
                insert into webhook_envelopes (envelope_id, program_id, type, body, source_event_id,
                  is_test, created_at, traceparent)
                select u.envelope_id, u.program_id, u.type, u.body, u.source_event_id, false,
                  u.created_at, u.traceparent
                from json_to_recordset(${JSON.stringify(envelopes)}::json) as u(envelope_id text,
                  program_id text, type text, body text, source_event_id uuid, created_at timestamptz,
                  traceparent text)
                on conflict do nothing)`;
        const ids = await sql<{ delivery_id: string }>`
          ${withEnvelopes}
          insert into webhook_deliveries (delivery_id, program_id, endpoint_id, envelope_id, series,
            status, next_attempt_at, lease_owner, lease_expires_at, subject, created_at,
            updated_at)
          select u.delivery_id, u.program_id, u.endpoint_id, u.envelope_id, 0, u.status,
            ${due}, u.lease_owner, u.lease_expires_at, u.subject, ${now}, ${now}
          from json_to_recordset(${JSON.stringify(rows)}::json) as u(delivery_id text,
            program_id text, endpoint_id text, envelope_id text, status text, lease_owner text,
            lease_expires_at timestamptz, subject text)
          on conflict (endpoint_id, envelope_id, series) do nothing
          returning delivery_id`.execute(tx);
        for (const { delivery_id } of ids.rows) {
          const row = handed.get(delivery_id);
          if (row !== undefined) inserted.push(row);
          newIds.add(delivery_id);
        }
      }
      await numberSubjects(
        tx,
        deliveries.filter((d) => d.subject !== null && newIds.has(d.delivery_id)),
      );
    } catch (error) {
      handoff?.cancel();
      spans?.end([], error);
      throw error;
    }
    spans?.end(deliveries.filter((d) => newIds.has(d.delivery_id)));
    // Rows a replayed batch did not insert again are not ours: deliver frees their room.
    pending = { handoff, rows: inserted, claimable: deliveries.length > handed.size };
  };

  return Object.assign(handle, {
    committed() {
      const batch = pending;
      pending = null;
      batch?.handoff?.deliver(batch.rows);
      return batch?.claimable ?? false;
    },
  });
};

/**
 * The batch's envelopes, in event order, and per envelope whose events it keeps in order on an
 * ordered endpoint (delivery/ordering.ts). `traceparent` is the command's span context, for the
 * delivery attempts' links (null while tracing is off).
 */
const envelopesOf = (events: readonly RecordedEvent[]) => {
  const envelopes: Insertable<Database['webhook_envelopes']>[] = [];
  const subjects = new Map<string, string | null>();
  for (const recorded of events) {
    const programId = recorded.metadata.programId;
    if (programId === null) continue;
    const webhook = toWebhookEvent({ type: recorded.type, data: recorded.data } as DomainEvent);
    if (webhook === null) continue;
    const id = envelopeIdFor(recorded.id);
    subjects.set(id, subjectOf(webhook.type, webhook.data));
    envelopes.push({
      envelope_id: id,
      program_id: programId,
      type: webhook.type,
      body: serializeEnvelope({ id, ...webhook }),
      source_event_id: recorded.id,
      is_test: false,
      created_at: webhook.createdAt,
      // Absent, not null, while tracing is off: the statement's JSON stays as it was.
      ...(recorded.metadata.traceparent !== undefined && {
        traceparent: recorded.metadata.traceparent,
      }),
    });
  }
  return { envelopes, subjects };
};

/** The programs' enabled endpoints, with what signing and sending a delivery needs. */
const enabledEndpoints = (tx: Kysely<Database>, programIds: readonly string[]) =>
  tx
    .selectFrom('webhook_endpoints')
    .select([
      'endpoint_id',
      'program_id',
      'events',
      'url',
      'url_userinfo_encrypted',
      'rate_limit_per_second',
      'ordering',
      'secret_encrypted',
      'previous_secret_encrypted',
      'previous_secret_expires_at',
    ])
    .where('program_id', 'in', programIds)
    .where('enabled', '=', true)
    // Held to the commit: an endpoint deleted meanwhile waits, then deletes these rows too.
    .forKeyShare()
    .execute();

/** A delivery handed over to this process's worker, as a claim would have returned it. */
const handedRow = (
  deliveryId: string,
  envelope: Insertable<Database['webhook_envelopes']>,
  endpoint: Awaited<ReturnType<typeof enabledEndpoints>>[number],
): LeasedDelivery => ({
  delivery_id: deliveryId,
  program_id: envelope.program_id,
  endpoint_id: endpoint.endpoint_id,
  envelope_id: envelope.envelope_id,
  attempts: 0,
  type: envelope.type,
  body: envelope.body,
  is_test: false,
  url: endpoint.url,
  url_userinfo_encrypted: endpoint.url_userinfo_encrypted,
  secret_encrypted: endpoint.secret_encrypted,
  previous_secret_encrypted: endpoint.previous_secret_encrypted,
  previous_secret_expires_at: endpoint.previous_secret_expires_at,
  // Ordered endpoints are never handed over (their rows wait for a claim).
  subject: null,
  sequence: null,
  traceparent: envelope.traceparent ?? null,
});

/**
 * Numbers a batch's new deliveries to ordered endpoints, in the batch's (event) order, after
 * the endpoint and subject's last number. Only rows this batch inserted are numbered: a batch
 * handled again inserts nothing and leaves no gap in the sequence a receiver checks.
 */
const numberSubjects = async (
  tx: Kysely<Database>,
  rows: readonly Insertable<Database['webhook_deliveries']>[],
): Promise<void> => {
  if (rows.length === 0) return;
  const keyed = rows.flatMap((row) =>
    typeof row.subject === 'string'
      ? [{ deliveryId: row.delivery_id, endpointId: row.endpoint_id, subject: row.subject }]
      : [],
  );
  const counts = new Map<string, { endpoint_id: string; subject: string; n: number }>();
  for (const row of keyed) {
    const key = sequenceKey(row.endpointId, row.subject);
    const entry = counts.get(key) ?? { endpoint_id: row.endpointId, subject: row.subject, n: 0 };
    entry.n += 1;
    counts.set(key, entry);
  }
  const advanced = await sql<{ endpoint_id: string; subject: string; last_sequence: string }>`
    insert into webhook_subject_sequences (endpoint_id, subject, last_sequence)
    select v.endpoint_id, v.subject, v.n
    from json_to_recordset(${JSON.stringify([...counts.values()])}::json)
      as v(endpoint_id text, subject text, n bigint)
    on conflict (endpoint_id, subject) do update
      set last_sequence = webhook_subject_sequences.last_sequence + excluded.last_sequence
    returning endpoint_id, subject, last_sequence`.execute(tx);
  const before = new Map<string, bigint>();
  for (const row of advanced.rows) {
    const key = sequenceKey(row.endpoint_id, row.subject);
    before.set(key, BigInt(row.last_sequence) - BigInt(counts.get(key)?.n ?? 0));
  }
  const numbered = assignSequences(keyed, before);
  await sql`
    update webhook_deliveries d set sequence = v.sequence
    from json_to_recordset(${JSON.stringify(
      numbered.map((r) => ({ delivery_id: r.deliveryId, sequence: r.sequence.toString() })),
    )}::json) as v(delivery_id text, sequence bigint)
    where d.delivery_id = v.delivery_id`.execute(tx);
};

/** The projector with the system clock, an immediate first attempt and no hand-over. */
export const projectWebhooks: SubscriptionHandler<StoreTransaction> = createWebhookProjector();
