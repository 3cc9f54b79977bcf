import { catalogue, optInCatalogue, type JsonSchema } from '../../../delivery/catalogue.ts';

/**
 * OpenAPI 3.1's `webhooks`: one entry per type we send (the docs' catalogue, then the opt-in
 * types), each the POST a receiver gets: the envelope with that type's `data` schema, the headers
 * it is signed with, and the catalogue's sample as the example. Built from the catalogue, so a
 * type cannot be sent undocumented.
 */

const header = (name: string, description: string, required = true) => ({
  name,
  in: 'header',
  required,
  description,
  schema: { type: 'string' },
});

const headers = [
  header(
    'X-Incentable-Signature',
    'Lowercase hex HMAC-SHA256 of the raw body, keyed with the endpoint secret string (whsec_… included).',
  ),
  header('X-Incentable-Event', 'The event type, as in the body.'),
  header('X-Incentable-Delivery', 'The delivery id (wdl_…): differs per delivery.'),
  header('X-Incentable-Test', '`true` on test events only.', false),
  header('webhook-id', 'Standard Webhooks: the event id, the body’s `id`.'),
  header('webhook-timestamp', 'Standard Webhooks: Unix seconds when this attempt was signed.'),
  header(
    'webhook-signature',
    'Standard Webhooks: `v1,<base64>` HMAC-SHA256 over `id.timestamp.body`; two, space-separated, while a secret rotates.',
  ),
];

/** A data schema inside the document: no `$schema` or `$id` of its own. */
const embedded = (schema: JsonSchema): JsonSchema => {
  const { $schema: _schema, $id: _id, ...rest } = schema;
  return rest;
};

const envelopeSchema = (type: string, data: JsonSchema): JsonSchema => ({
  type: 'object',
  properties: {
    id: { type: 'string', description: 'The event id (evt_…), the same on every delivery of it.' },
    type: { const: type },
    created_at: { type: 'string', format: 'date-time' },
    data: embedded(data),
  },
  required: ['id', 'type', 'created_at', 'data'],
  additionalProperties: false,
});

/** Every type with its group, its description, its data schema and its sample. */
export const sentTypes = [...catalogue, ...optInCatalogue].flatMap((group) =>
  group.entries.map((entry) => ({ group: group.name, ...entry })),
);

export const webhooksSection = (): Record<string, object> =>
  Object.fromEntries(
    sentTypes.map((entry) => [
      entry.type,
      {
        post: {
          summary: `${entry.type} (${entry.group})`,
          description: entry.description,
          parameters: headers,
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: envelopeSchema(entry.type, entry.schema),
                example: {
                  id: 'evt_5xv3dw2hqk4m7n8p9r0s1t2u',
                  type: entry.type,
                  created_at: '2024-06-15T14:30:00Z',
                  data: entry.sample,
                },
              },
            },
          },
          responses: {
            '2XX': { description: 'Received: any 2xx acknowledges the delivery.' },
            '410': { description: 'Gone: the endpoint is disabled, no more retries.' },
            default: {
              description:
                'Anything else (or no answer within the timeout) is retried on the schedule; 429 and 503 may carry Retry-After.',
            },
          },
        },
      },
    ]),
  );
