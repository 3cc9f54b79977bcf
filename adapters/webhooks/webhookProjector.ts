import type { Insertable, Kysely } from 'kysely';
import { envelopeIdFor, serializeEnvelope } from '../../delivery/envelope.ts';
import { toWebhookEvent } from '../../delivery/webhookMapping.ts';
import type { DomainEvent } from '../../domain/events.ts';
import type { RecordedEvent } from '../../domain/recordedEvent.ts';
import type { SubscriptionHandler } from '../eventstore/port.ts';
import { newId } from '../ids.ts';
import type { Database } from '../db/schema.ts';

/** The subscription name of the webhook projector: its checkpoint key and its lock. */
export const webhooksProjection = 'webhooks';

export type Clock = { now: () => Date };

export type WebhookProjectorOptions = {
  clock?: Clock;
  /** The delay before the first attempt (the retry schedule's first entry); 0 by default. */
  firstDelayS?: number;
};

/** Rows per INSERT: ~10 parameters a row stays far below Postgres' 65535 bind parameters. */
const rowsPerStatement = 500;

const chunks = <T>(rows: readonly T[]): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += rowsPerStatement)
    out.push(rows.slice(i, i + rowsPerStatement));
  return out;
};

export const subscribes = (events: readonly string[], type: string): boolean =>
  events.includes('*') || events.includes(type);

/**
 * Domain events -> envelopes -> one pending delivery per enabled endpoint of the event's program
 * that subscribes to the type. Runs in the subscription's transaction, beside its checkpoint. A
 * replayed batch inserts nothing new: the envelope id derives from the event id, and a delivery is
 * unique per (endpoint, envelope, series 0). Endpoints are read once per batch, inside the
 * transaction, never cached across batches.
 */
export const createWebhookProjector = (
  options: WebhookProjectorOptions = {},
): SubscriptionHandler => {
  const clock = options.clock ?? { now: () => new Date() };
  const firstDelayMs = Math.round((options.firstDelayS ?? 0) * 1000);
  return async (events: readonly RecordedEvent[], tx: Kysely<Database>): Promise<void> => {
    const envelopes: Insertable<Database['webhook_envelopes']>[] = [];
    for (const recorded of events) {
      const programId = recorded.metadata.programId;
      if (programId === null) continue;
      const webhook = toWebhookEvent({ type: recorded.type, data: recorded.data } as DomainEvent);
      if (webhook === null) continue;
      const id = envelopeIdFor(recorded.id);
      envelopes.push({
        envelope_id: id,
        program_id: programId,
        type: webhook.type,
        body: serializeEnvelope({ id, ...webhook }),
        source_event_id: recorded.id,
        is_test: false,
        created_at: webhook.createdAt,
      });
    }
    if (envelopes.length === 0) return;

    const programIds = [...new Set(envelopes.map((e) => e.program_id))];
    const endpoints = await tx
      .selectFrom('webhook_endpoints')
      .select(['endpoint_id', 'program_id', 'events'])
      .where('program_id', 'in', programIds)
      .where('enabled', '=', true)
      .execute();

    for (const rows of chunks(envelopes)) {
      await tx
        .insertInto('webhook_envelopes')
        .values(rows)
        .onConflict((oc) => oc.doNothing())
        .execute();
    }

    const now = clock.now();
    const due = new Date(now.getTime() + firstDelayMs);
    const deliveries = envelopes.flatMap((envelope) =>
      endpoints
        .filter((e) => e.program_id === envelope.program_id && subscribes(e.events, envelope.type))
        .map((endpoint) => ({
          delivery_id: newId('webhookDelivery'),
          program_id: envelope.program_id,
          endpoint_id: endpoint.endpoint_id,
          envelope_id: envelope.envelope_id,
          series: 0,
          status: 'pending' as const,
          next_attempt_at: due,
          created_at: now,
          updated_at: now,
        })),
    );
    for (const rows of chunks(deliveries)) {
      await tx
        .insertInto('webhook_deliveries')
        .values(rows)
        .onConflict((oc) => oc.columns(['endpoint_id', 'envelope_id', 'series']).doNothing())
        .execute();
    }
  };
};

/** The projector with the system clock and an immediate first attempt. */
export const projectWebhooks: SubscriptionHandler = createWebhookProjector();
