import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import {
  catalogue,
  isSubscribableEventType,
  isWebhookEventType,
  optInCatalogue,
  subscribableEventTypes,
} from '../../../delivery/catalogue.ts';
import { endpointOrderings } from '../../../delivery/ordering.ts';
import { validateEndpointUrl, type NetworkPolicy } from '../../../delivery/ssrf.ts';
import type {
  WebhookDelivery,
  WebhookEndpoint,
  WebhookStore,
} from '../../webhooks/webhookStore.ts';
import type { IdempotencyStore } from '../../db/idempotencyStore.ts';
import { hasControlCharacters } from '../../../domain/validation.ts';
import { sendError } from './errors.ts';
import { answerAtomically } from './idempotency.ts';
import { addStreamRoute, type WebhookStreamDeps } from './webhookStream.ts';
import { wireString } from './schemas.ts';
import { idParam, parse, programOf } from './request.ts';
import type * as r from './responses.ts';
import type { Body } from './responses.ts';

const eventsField = z
  .array(wireString().min(1).max(100))
  .min(1)
  .max(subscribableEventTypes.length)
  .refine((events) => events.every((e) => e === '*' || isSubscribableEventType(e)), {
    message: 'names an event type that does not exist (see GET /v1/webhook-event-types)',
  })
  .refine(
    (events) => !events.includes('*') || events.every((e) => e === '*' || !isWebhookEventType(e)),
    {
      message:
        '"*" stands alone, or beside opt-in types (audit.checkpoint), which it does not include',
    },
  )
  .transform((events) => [...new Set(events)]);

/** Free text for people: tabs and line breaks are fine, other control characters are not. */
const description = wireString()
  .max(500)
  .refine(
    (v) => !hasControlCharacters(v.replace(/[\t\n]/g, '')),
    'must not contain control characters',
  );

/** The endpoint's URL; the same words in the OpenAPI document as in docs/webhooks.md. */
const urlField = wireString().min(1).max(2048).meta({
  description:
    'An http(s) URL that receives a signed POST, or a broker destination: amqp(s)://user:pass@host:5672/vhost?exchange=NAME (RabbitMQ, routing key = event type) or nats://host:4222?subject=PREFIX (NATS JetStream, subject PREFIX.<event type>). Broker credentials are stored encrypted and never returned.',
});

/** Deliveries per second at most, counted across every worker process; null: no limit. */
const rateLimitField = z.number().int().min(1).max(10_000).nullable().meta({
  description:
    'At most this many deliveries a second to the endpoint, across every worker process; those above it wait (they are not failed). null: no limit.',
});

const orderingField = z.enum(endpointOrderings).meta({
  description:
    'ordered: the events of one subject (a member, an order, a leaderboard) arrive in the order they happened, each with X-Incentable-Subject and X-Incentable-Sequence; the next waits until the one before it was delivered or finally failed. unordered (the default): each is sent as soon as it is due.',
});

export const createEndpointSchema = z
  .strictObject({
    url: urlField,
    events: eventsField,
    description: description.optional(),
    rate_limit_per_second: rateLimitField.optional(),
    ordering: orderingField.optional(),
  })
  .meta({ id: 'CreateWebhookEndpoint' });
export const updateEndpointSchema = z
  .strictObject({
    url: urlField,
    events: eventsField,
    description,
    enabled: z.boolean(),
    rate_limit_per_second: rateLimitField,
    ordering: orderingField,
  })
  .partial()
  .meta({ id: 'UpdateWebhookEndpoint' });
export const testEventSchema = z
  .strictObject({ type: z.enum(subscribableEventTypes) })
  .meta({ id: 'SendTestEvent' });
export const replaySchema = z
  .strictObject({
    since: z.iso.datetime({ offset: true }),
    until: z.iso.datetime({ offset: true }).optional(),
    types: z.array(z.enum(subscribableEventTypes)).min(1).optional(),
  })
  .meta({ id: 'ReplayEvents' });
export const emptyBody = z.strictObject({}).meta({ id: 'EmptyWebhookBody' });
const deliveryStatuses = ['pending', 'delivering', 'delivered', 'failed', 'gone'] as const;
export const deliveryQuerySchema = z.strictObject({
  endpoint_id: wireString().max(100).optional(),
  status: z.enum(deliveryStatuses).optional(),
  type: z.enum(subscribableEventTypes).optional(),
  cursor: wireString().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});
export const envelopeQuerySchema = z.strictObject({
  type: z.enum(subscribableEventTypes).optional(),
  cursor: wireString().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

export const endpointView = (e: WebhookEndpoint): Body<typeof r.webhookEndpointSchema> => ({
  id: e.endpointId,
  url: e.url,
  events: e.events,
  description: e.description,
  enabled: e.enabled,
  disabled_reason: e.disabledReason,
  disabled_code: e.disabledCode,
  failing_since: e.failingSince?.toISOString() ?? null,
  rate_limit_per_second: e.rateLimitPerSecond,
  ordering: e.ordering,
  previous_secret_expires_at: e.previousSecretExpiresAt?.toISOString() ?? null,
  created_at: e.createdAt.toISOString(),
  updated_at: e.updatedAt.toISOString(),
});

export const deliveryView = (d: WebhookDelivery): Body<typeof r.webhookDeliverySchema> => ({
  id: d.deliveryId,
  endpoint_id: d.endpointId,
  event_id: d.envelopeId,
  type: d.type,
  test: d.isTest,
  series: d.series,
  status: d.status,
  attempts: d.attempts,
  next_attempt_at: d.nextAttemptAt?.toISOString() ?? null,
  last_status: d.lastStatus,
  last_error: d.lastError,
  created_at: d.createdAt.toISOString(),
  updated_at: d.updatedAt.toISOString(),
});

export type WebhookRouteDeps = WebhookStreamDeps & {
  /** For the transactions that settle an Idempotency-Key with the write it answers for. */
  idempotencyKeys: Pick<IdempotencyStore, 'withinTransaction'>;
  webhooks: WebhookStore;
  network: NetworkPolicy;
  /** Wakes the delivery worker in this process after work was queued. */
  wakeDelivery: () => void;
};

const base = '/programs/:programId/webhook-endpoints';

const checkUrl = (url: string, res: Response, network: NetworkPolicy): boolean => {
  const check = validateEndpointUrl(url, network);
  if (check.ok) return true;
  sendError(res, 400, { code: 'validation_error', message: check.message, field: 'url' });
  return false;
};

/** The endpoint the path names, in the route's program; undefined once it answered 400 or 404. */
const endpointOr404 = async (req: Request, res: Response, webhooks: WebhookStore) => {
  const endpointId = idParam(req, res, 'endpointId', 'webhookEndpoint');
  if (!endpointId) return undefined;
  const endpoint = await webhooks.getEndpoint(programOf(res), endpointId);
  if (!endpoint)
    sendError(res, 404, {
      code: 'not_found',
      message: `no webhook endpoint ${endpointId}`,
      field: 'endpoint_id',
    });
  return endpoint ?? undefined;
};

/** The endpoints themselves: create, list, read, change, delete, and reveal the secret. */
const addEndpointRoutes = (router: Router, deps: WebhookRouteDeps): void => {
  const { webhooks } = deps;

  router.post(base, async (req, res) => {
    const body = parse(createEndpointSchema, req.body, res);
    if (!body || !checkUrl(body.url, res, deps.network)) return;
    await answerAtomically(deps.idempotencyKeys, res, async (tx) => {
      const { endpoint, secret } = await webhooks.createEndpoint(
        {
          programId: programOf(res),
          url: body.url,
          events: body.events,
          description: body.description ?? '',
          rateLimitPerSecond: body.rate_limit_per_second ?? null,
          ordering: body.ordering ?? 'unordered',
        },
        tx,
      );
      const created: Body<typeof r.webhookEndpointCreatedSchema> = {
        ...endpointView(endpoint),
        secret,
      };
      return { status: 201, body: created, sensitive: true };
    });
  });

  router.get(base, async (_req, res) => {
    res.json({
      data: (await webhooks.listEndpoints(programOf(res))).map(endpointView),
    } satisfies Body<typeof r.webhookEndpointListSchema>);
  });

  router.get(`${base}/:endpointId`, async (req, res) => {
    const endpoint = await endpointOr404(req, res, webhooks);
    if (endpoint) res.json(endpointView(endpoint));
  });

  router.patch(`${base}/:endpointId`, async (req, res) => {
    const endpoint = await endpointOr404(req, res, webhooks);
    if (!endpoint) return;
    const body = parse(updateEndpointSchema, req.body, res);
    if (!body || (body.url !== undefined && !checkUrl(body.url, res, deps.network))) return;
    const { rate_limit_per_second: rateLimitPerSecond, ...changes } = body;
    const updated = await webhooks.updateEndpoint(programOf(res), endpoint.endpointId, {
      ...changes,
      ...(rateLimitPerSecond !== undefined && { rateLimitPerSecond }),
    });
    if (!updated)
      return sendError(res, 404, {
        code: 'not_found',
        message: 'no such webhook endpoint',
        field: 'endpoint_id',
      });
    res.json(endpointView(updated));
  });

  router.delete(`${base}/:endpointId`, async (req, res) => {
    const endpoint = await endpointOr404(req, res, webhooks);
    if (!endpoint) return;
    await webhooks.deleteEndpoint(programOf(res), endpoint.endpointId);
    res.status(204).end();
  });

  router.get(`${base}/:endpointId/secret`, async (req, res) => {
    const endpoint = await endpointOr404(req, res, webhooks);
    if (!endpoint) return;
    res.set('Cache-Control', 'no-store');
    res.json({
      secret: await webhooks.revealSecret(programOf(res), endpoint.endpointId),
    } satisfies Body<typeof r.webhookSecretSchema>);
  });
};

/** What is done with an endpoint: rotate its secret, send it a test event, replay past events. */
const addEndpointActions = (router: Router, deps: WebhookRouteDeps): void => {
  const { webhooks } = deps;

  router.post(`${base}/:endpointId/rotate-secret`, async (req, res) => {
    const endpoint = await endpointOr404(req, res, webhooks);
    if (!endpoint || !parse(emptyBody, req.body, res)) return;
    await answerAtomically(deps.idempotencyKeys, res, async (tx) => {
      const rotated = await webhooks.rotateSecret(programOf(res), endpoint.endpointId, tx);
      if (!rotated) {
        sendError(res, 404, {
          code: 'not_found',
          message: 'no such webhook endpoint',
          field: 'endpoint_id',
        });
        return null;
      }
      return {
        status: 200,
        body: {
          secret: rotated.secret,
          previous_secret_expires_at: rotated.previousSecretExpiresAt.toISOString(),
        } satisfies Body<typeof r.rotatedSecretSchema>,
        sensitive: true,
      };
    });
  });

  router.post(`${base}/:endpointId/test`, async (req, res) => {
    const endpoint = await endpointOr404(req, res, webhooks);
    if (!endpoint) return;
    const body = parse(testEventSchema, req.body, res);
    if (!body) return;
    const queued = await webhooks.enqueueTest(programOf(res), endpoint.endpointId, body.type);
    if (!queued)
      return sendError(res, 404, {
        code: 'not_found',
        message: 'no such webhook endpoint',
        field: 'endpoint_id',
      });
    deps.wakeDelivery();
    res.status(202).json({
      delivery_id: queued.deliveryId,
      event_id: queued.envelopeId,
    } satisfies Body<typeof r.testQueuedSchema>);
  });

  router.post(`${base}/:endpointId/replay`, async (req, res) => {
    const endpoint = await endpointOr404(req, res, webhooks);
    if (!endpoint) return;
    const body = parse(replaySchema, req.body, res);
    if (!body) return;
    const since = new Date(body.since);
    const until = body.until ? new Date(body.until) : undefined;
    if (until && until <= since)
      return sendError(res, 400, {
        code: 'validation_error',
        message: 'until must be after since',
        field: 'until',
      });
    const result = await webhooks.replay(programOf(res), endpoint.endpointId, {
      since,
      ...(until && { until }),
      ...(body.types && { types: body.types }),
    });
    if (!result)
      return sendError(res, 404, {
        code: 'not_found',
        message: 'no such webhook endpoint',
        field: 'endpoint_id',
      });
    deps.wakeDelivery();
    res.status(202).json({ queued: result.queued } satisfies Body<typeof r.replayQueuedSchema>);
  });
};

/** The delivery log, a redelivery, and the envelopes sent. */
const addDeliveryRoutes = (router: Router, deps: WebhookRouteDeps): void => {
  const { webhooks } = deps;

  router.get('/programs/:programId/webhook-deliveries', async (req, res) => {
    const query = parse(deliveryQuerySchema, req.query, res);
    if (!query) return;
    const page = await webhooks.listDeliveries({
      programId: programOf(res),
      limit: query.limit,
      ...(query.endpoint_id !== undefined && { endpointId: query.endpoint_id }),
      ...(query.status !== undefined && { status: query.status }),
      ...(query.type !== undefined && { type: query.type }),
      ...(query.cursor !== undefined && { cursor: query.cursor }),
    });
    res.json({
      data: page.items.map(deliveryView),
      next_cursor: page.nextCursor,
    } satisfies Body<typeof r.webhookDeliveryListSchema>);
  });

  router.get('/programs/:programId/webhook-deliveries/:deliveryId', async (req, res) => {
    const deliveryId = idParam(req, res, 'deliveryId', 'webhookDelivery');
    if (!deliveryId) return;
    const found = await webhooks.getDelivery(programOf(res), deliveryId);
    if (!found)
      return sendError(res, 404, {
        code: 'not_found',
        message: `no delivery ${deliveryId}`,
        field: 'delivery_id',
      });
    res.json({
      ...deliveryView(found.delivery),
      payload: found.envelope.body,
      attempts: found.attempts.map((a) => ({
        attempt: a.attemptNumber,
        started_at: a.startedAt.toISOString(),
        duration_ms: a.durationMs,
        http_status: a.httpStatus,
        response_body: a.responseBody,
        error_kind: a.errorKind,
        error_message: a.errorMessage,
        retry_after_s: a.retryAfterS,
      })),
    } satisfies Body<typeof r.webhookDeliveryDetailSchema>);
  });

  router.post('/programs/:programId/webhook-deliveries/:deliveryId/redeliver', async (req, res) => {
    const deliveryId = idParam(req, res, 'deliveryId', 'webhookDelivery');
    if (!deliveryId || !parse(emptyBody, req.body, res)) return;
    const queued = await webhooks.redeliver(programOf(res), deliveryId);
    if (!queued)
      return sendError(res, 404, {
        code: 'not_found',
        message: `no delivery ${deliveryId}`,
        field: 'delivery_id',
      });
    deps.wakeDelivery();
    res
      .status(202)
      .json({ delivery_id: queued.deliveryId } satisfies Body<typeof r.redeliveredSchema>);
  });

  router.get('/programs/:programId/webhook-events', async (req, res) => {
    const query = parse(envelopeQuerySchema, req.query, res);
    if (!query) return;
    const page = await webhooks.listEnvelopes({
      programId: programOf(res),
      limit: query.limit,
      ...(query.type !== undefined && { type: query.type }),
      ...(query.cursor !== undefined && { cursor: query.cursor }),
    });
    res.json({
      data: page.items.map((e) => ({
        id: e.envelopeId,
        type: e.type,
        test: e.isTest,
        created_at: e.createdAt.toISOString(),
        payload: JSON.parse(e.body) as unknown,
      })),
      next_cursor: page.nextCursor,
    } satisfies Body<typeof r.webhookEventListSchema>);
  });
};

/** A catalogue group as GET /webhook-event-types shows it. */
const groupView = (group: (typeof catalogue | typeof optInCatalogue)[number]) => ({
  name: group.name,
  types: group.entries.map((t) => ({
    type: t.type,
    description: t.description,
    schema: t.schema,
    sample: t.sample,
  })),
});

/** Settings -> Webhooks, as an API: endpoints, secrets, test events, the delivery log, replay. */
export const webhookRoutes = (deps: WebhookRouteDeps): Router => {
  const router = Router();
  addStreamRoute(router, deps);

  router.get('/webhook-event-types', (_req, res) => {
    res.json({
      groups: catalogue.map(groupView),
      // Outside the docs' catalogue: sent only to endpoints that list them, never through "*".
      opt_in_groups: optInCatalogue.map(groupView),
    });
  });

  addEndpointRoutes(router, deps);
  addEndpointActions(router, deps);
  addDeliveryRoutes(router, deps);
  return router;
};
