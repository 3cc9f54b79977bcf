import { z } from 'zod';
import { operations, type Operation } from './operations.ts';
import { responseSchemaIds } from './responses.ts';
import { webhooksSection } from './openapiWebhooks.ts';

export { operations, type Operation } from './operations.ts';

/**
 * The reads that wait for `?after_position` (adapters/http/api/request.ts, readAfter): every GET
 * under a program but the API keys, the webhook and audit routes (whose after_position is a
 * cursor) and the member statement (which reads the audit tree, not the read models).
 */
export const waitsForPosition = (op: Operation): boolean =>
  op.method === 'get' &&
  op.path.startsWith('/v1/programs/') &&
  !op.path.endsWith('/statement') &&
  !/\/(api-keys|webhook-[a-z]+|audit)(\/|$)/.test(op.path);

const ref = (name: string) => ({ $ref: `#/components/responses/${name}` });

const retryAfter = (description: string) => ({
  'Retry-After': { required: true, description, schema: { type: 'string', pattern: '^\\d+$' } },
});

const positionReachedHeader = {
  'Incentable-Position-Reached': {
    description:
      'With `?after_position`: `true` when every projection the read depends on (read models, and the tier and leaderboard changes the award or deduction caused) had handled the position, `false` when READ_WAIT_TIMEOUT_MS (5 s) ran out first and the answer may be stale.',
    schema: { type: 'string', enum: ['true', 'false'] },
  },
};

const replayedHeader = {
  'Idempotent-Replayed': {
    description:
      '`true` when this is the stored answer to an earlier request with the same Idempotency-Key (nothing was done again).',
    schema: { type: 'string', enum: ['true'] },
  },
};

/** adapters/http/api/idempotency.ts: every POST under /v1 honours it. */
const idempotencyKeyParameter = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    'Makes a retry safe: a repeat with the same key and body gets the first answer back (with Idempotent-Replayed: true); the same key with another body is a 409 idempotency_conflict, a repeat while the first still runs waits for it (then 409 idempotency_in_progress). Scoped to the program the path names; kept at least 24 hours.',
  schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]{1,255}$' },
};

const lastEventIdParameter = {
  name: 'Last-Event-ID',
  in: 'header',
  required: false,
  description: 'Resume after this cursor (the SSE id of the last event received).',
  schema: { type: 'string', pattern: '^\\d{1,19}$' },
};

const schemaRef = (schema: z.ZodType): { $ref: string } => {
  const id = z.globalRegistry.get(schema)?.id;
  if (!id) throw new Error('a response schema of the operations table has no id');
  return { $ref: `#/components/schemas/${id}` };
};

/** The success answer: its body (or none), and the headers it may carry. */
const successResponse = (op: Operation) => {
  const headers = {
    ...(waitsForPosition(op) && positionReachedHeader),
    ...(op.method === 'post' && replayedHeader),
  };
  const content = (() => {
    if (op.response === 'none') return undefined;
    if (op.response === 'eventStream')
      return {
        'text/event-stream': {
          schema: {
            type: 'string',
            description:
              'Server-Sent Events: first `event: ready` (data {cursor}), then `event: webhook` with `id:` the cursor and `data:` {id, type, body} (body: the envelope exactly as sent to endpoints), `: keep-alive` comments, and `event: error` before it ends on a database fault.',
          },
        },
      };
    if (op.response === 'ndjson')
      return {
        'application/x-ndjson': {
          schema: {
            type: 'string',
            description:
              'JSON lines, each an AuditVerifyLine: a `break` per broken place as found, then the `summary` (read summary.ok: the status is 200 once streaming began), or an `error`.',
          },
          'x-line-schema': { $ref: '#/components/schemas/AuditVerifyLine' },
        },
      };
    return { 'application/json': { schema: schemaRef(op.response) } };
  })();
  return {
    description:
      op.response === 'none'
        ? 'Done; no body.'
        : op.method === 'get'
          ? 'The resource.'
          : 'Done. A command answer carries `position` when it recorded something; pass it as ?after_position to read your write.',
    ...(Object.keys(headers).length > 0 && { headers }),
    ...(content && { content }),
  };
};

/** The error answers an operation can give (one error body; 429 and 503 with Retry-After). */
const errorResponses = (op: Operation) => ({
  '400': ref('Error'),
  '401': ref('Error'),
  '403': ref('Error'),
  '404': ref('Error'),
  ...(op.method !== 'get' && {
    '409': op.memberConflict ? ref('MemberExists') : ref('Error'),
    '413': ref('Error'),
    '415': ref('Error'),
    '422': ref('Error'),
  }),
  // Repeated bad keys from the caller's address (docs/api.md, "Keys").
  '429': ref('TooManyAttempts'),
  '500': ref('Error'),
  '503': ref('Unavailable'),
});

type Parameter = { name: string; in: string; required: boolean; schema: object };

const parametersOf = (op: Operation): Parameter[] => {
  const parameters: Parameter[] = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
    name: m[1] ?? '',
    in: 'path',
    required: true,
    schema: { type: 'string' },
  }));
  const query: Record<string, z.ZodType> = op.query?.shape ?? {};
  for (const [name, schema] of Object.entries(query)) {
    // A parameter's schema sits inside the document: no `$schema` of its own.
    const { $schema: _, ...json } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
    parameters.push({
      name,
      in: 'query',
      required: !schema.safeParse(undefined).success,
      schema: json,
    });
  }
  if (waitsForPosition(op) && !('after_position' in query))
    parameters.push({
      name: 'after_position',
      in: 'query',
      required: false,
      schema: { type: 'string' },
    });
  if (op.method === 'post') parameters.push(idempotencyKeyParameter);
  if (op.response === 'eventStream') parameters.push(lastEventIdParameter);
  return parameters;
};

/**
 * The components: request schemas generated with io `input` (what a client may send: defaults
 * optional), response schemas with io `output` (what the API sends: every field it always writes
 * is required).
 */
const componentSchemas = (): Record<string, unknown> => {
  const options = {
    target: 'draft-2020-12',
    unrepresentable: 'any',
    uri: (id: string) => `#/components/schemas/${id}`,
  } as const;
  const input = z.toJSONSchema(z.globalRegistry, { ...options, io: 'input' }).schemas;
  const output = z.toJSONSchema(z.globalRegistry, { ...options, io: 'output' }).schemas;
  // By id: the registry's order is the order modules happened to load in.
  const sorted = Object.entries(input).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(
    sorted.map(([id, schema]) => {
      // A component sits inside the document: no `$schema` or `$id` of its own.
      const {
        $schema: _,
        $id: _id,
        ...json
      } = (responseSchemaIds.has(id) ? output[id] : schema) ?? {};
      return [id, json];
    }),
  );
};

/** OpenAPI 3.1 (JSON Schema 2020-12), generated from the request and response schemas at start. */
export const openApiDocument = (version: string): object => {
  const paths: Record<string, Record<string, object>> = {};
  for (const op of operations) {
    const bodyId = op.body ? z.globalRegistry.get(op.body)?.id : undefined;
    (paths[op.path] ??= {})[op.method] = {
      summary: op.summary,
      ...(op.root && { description: 'Root key only.' }),
      parameters: parametersOf(op),
      ...(bodyId && {
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { $ref: `#/components/schemas/${bodyId}` } } },
        },
      }),
      responses: { [String(op.success)]: successResponse(op), ...errorResponses(op) },
    };
  }
  const error = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };
  return {
    openapi: '3.1.0',
    info: { title: 'Incentable API', version },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    security: [{ bearer: [] }],
    paths,
    webhooks: webhooksSection(),
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: componentSchemas(),
      responses: {
        Error: {
          description:
            'An error, with a machine-readable code and the field at fault when there is one.',
          content: error,
        },
        MemberExists: {
          description:
            '`member_exists`: another member of the program has this email (compared without letter case) or external_id; `field` says which, `member_id` names the member. Also the generic conflicts (`idempotency_conflict`, `idempotency_in_progress`, `concurrency_conflict`: retry).',
          content: error,
        },
        TooManyAttempts: {
          description:
            '`too_many_attempts`: repeated bad keys from this address; nothing is checked until Retry-After seconds have passed.',
          headers: retryAfter('Seconds until a key is checked again.'),
          content: error,
        },
        Unavailable: {
          description:
            'A wait, not a verdict: `database_unavailable`, `overloaded`, `scores_pending` (a command) or `not_yet_in_tree` (a statement). The same request succeeds after Retry-After seconds.',
          headers: retryAfter('Seconds to wait before retrying.'),
          content: error,
        },
      },
    },
  };
};
