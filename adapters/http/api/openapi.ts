import { z } from 'zod';
import * as s from './schemas.ts';
import * as w from './webhookRoutes.ts';
import * as a from './auditRoutes.ts';
import * as stream from './webhookStream.ts';

type Operation = {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  summary: string;
  body?: z.ZodType;
  /** The query parameters the route validates, when it takes more than `after_position`. */
  query?: z.ZodObject;
  success: number;
  root?: boolean;
  /** The route answers 409 `member_exists` with the member's id (docs/api.md, "Members"). */
  memberConflict?: boolean;
};

/**
 * Every route of the API with its request schema. The schemas are the same zod objects that
 * validate requests; test/adapters/http/openapi.e2e.test.ts checks this table against the
 * router, so a route cannot ship undocumented.
 */
export const operations: Operation[] = [
  {
    method: 'post',
    path: '/v1/programs',
    summary: 'Create a program',
    body: s.createProgramSchema,
    success: 201,
    root: true,
  },
  { method: 'get', path: '/v1/programs/{programId}', summary: 'Get a program', success: 200 },
  {
    method: 'patch',
    path: '/v1/programs/{programId}',
    summary: 'Change program settings (points_expiry or its older spelling points_expiry_days)',
    body: s.updateProgramSchema,
    success: 200,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/api-keys',
    summary: 'Create a program API key (shown once)',
    body: s.createApiKeySchema,
    success: 201,
    root: true,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/api-keys',
    summary: "List the program's API keys (never their secrets), revoked ones included",
    success: 200,
  },
  {
    method: 'delete',
    path: '/v1/programs/{programId}/api-keys/{keyId}',
    summary: 'Revoke an API key (idempotent)',
    success: 204,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/members',
    summary: 'Register a member (email and external_id are unique within the program)',
    body: s.createMemberSchema,
    success: 201,
    memberConflict: true,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/members',
    summary: 'List members (cursor pagination; filter by tier, email, external_id, q)',
    query: s.listQuerySchema,
    success: 200,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/members/{memberId}',
    summary:
      'Get a member (as they are, or as they were at as_of), with next_expiry: when and how many points expire next, or null',
    query: s.memberQuerySchema,
    success: 200,
  },
  {
    method: 'patch',
    path: '/v1/programs/{programId}/members/{memberId}',
    summary:
      'Change member details (to an email or external_id no other member has), or override the tier with an optional hold (tier, tier_locked_until)',
    body: s.updateMemberSchema,
    success: 200,
    memberConflict: true,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/members/{memberId}/deactivate',
    summary: 'Deactivate a member: off the open leaderboards, points frozen',
    body: s.emptySchema,
    success: 200,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/members/{memberId}/reactivate',
    summary: 'Reactivate a member: refunds that waited are paid, a same-period score returns',
    body: s.emptySchema,
    success: 200,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/transactions/{transactionId}/reverse',
    summary:
      'Reverse an award or a manual deduction completely (balance, lifetime points, tier, leaderboard scores), at most once',
    body: s.reverseTransactionSchema,
    success: 201,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/members/{memberId}/points/award',
    summary: 'Award points',
    body: s.pointsSchema,
    success: 201,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/members/{memberId}/points/deduct',
    summary: 'Deduct points',
    body: s.pointsSchema,
    success: 201,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/members/{memberId}/transactions',
    summary: 'The points ledger, newest first, with running balance',
    query: s.listQuerySchema,
    success: 200,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/members/{memberId}/redemptions',
    summary: 'Redeem a reward',
    body: s.redemptionSchema,
    success: 201,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/rewards',
    summary: 'Create a reward',
    body: s.createRewardSchema,
    success: 201,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/rewards',
    summary: 'List rewards',
    query: s.listQuerySchema,
    success: 200,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/rewards/{rewardId}',
    summary: 'Get a reward',
    success: 200,
  },
  {
    method: 'patch',
    path: '/v1/programs/{programId}/rewards/{rewardId}',
    summary: 'Change a reward',
    body: s.updateRewardSchema,
    success: 200,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/orders',
    summary: 'List orders, oldest first (cursor pagination; filter by status, member_id)',
    query: s.ordersQuerySchema,
    success: 200,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/members/{memberId}/orders',
    summary: "A member's orders, oldest first (cursor pagination; filter by status)",
    query: s.memberOrdersQuerySchema,
    success: 200,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/orders/{orderId}',
    summary: 'Get an order with its status history',
    success: 200,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/orders/{orderId}/ship',
    summary: 'Ship a physical order',
    body: s.shipSchema,
    success: 200,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/orders/{orderId}/deliver',
    summary: 'Mark an order delivered',
    body: s.emptySchema,
    success: 200,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/orders/{orderId}/cancel',
    summary: 'Cancel an order before delivery (refunds the points)',
    body: s.cancelSchema,
    success: 200,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/leaderboards',
    summary: 'Create a leaderboard',
    body: s.createLeaderboardSchema,
    success: 201,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/leaderboards',
    summary: 'List leaderboards',
    success: 200,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/leaderboards/{leaderboardId}',
    summary: 'Get a leaderboard',
    success: 200,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/leaderboards/{leaderboardId}/standings',
    summary: 'Current period standings, ranked',
    success: 200,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/leaderboards/{leaderboardId}/periods',
    summary: 'Ended periods, newest first, each with its id and top ten',
    success: 200,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/leaderboards/{leaderboardId}/periods/{periodId}/standings',
    summary: "An ended period's complete final standings, ranked, cursor-paginated",
    query: s.pageQuerySchema,
    success: 200,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/leaderboards/{leaderboardId}/close-period',
    summary: 'End the current period now',
    body: s.emptySchema,
    success: 200,
  },
  {
    method: 'get',
    path: '/v1/webhook-event-types',
    summary:
      'The webhook event catalogue, grouped as the docs group it, with JSON Schemas and samples',
    success: 200,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/webhook-endpoints',
    summary: 'Add an endpoint (the response shows its secret)',
    body: w.createEndpointSchema,
    success: 201,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/webhook-endpoints',
    summary: 'List endpoints',
    success: 200,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/webhook-endpoints/{endpointId}',
    summary: 'Get an endpoint',
    success: 200,
  },
  {
    method: 'patch',
    path: '/v1/programs/{programId}/webhook-endpoints/{endpointId}',
    summary: 'Change url, events, description or enabled',
    body: w.updateEndpointSchema,
    success: 200,
  },
  {
    method: 'delete',
    path: '/v1/programs/{programId}/webhook-endpoints/{endpointId}',
    summary: 'Delete an endpoint',
    success: 204,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/webhook-endpoints/{endpointId}/secret',
    summary: 'Reveal the signing secret',
    success: 200,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/webhook-endpoints/{endpointId}/rotate-secret',
    summary: 'Rotate the secret (the old one keeps signing for 24 h)',
    body: w.emptyBody,
    success: 200,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/webhook-endpoints/{endpointId}/test',
    summary: 'Send a test event of a type',
    body: w.testEventSchema,
    success: 202,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/webhook-endpoints/{endpointId}/replay',
    summary: 'Re-send every event in a time range to this endpoint',
    body: w.replaySchema,
    success: 202,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/webhook-deliveries',
    summary: 'The delivery log (filter by endpoint_id, status, type)',
    query: w.deliveryQuerySchema,
    success: 200,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/webhook-deliveries/{deliveryId}',
    summary: 'One delivery with its attempts and payload',
    success: 200,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/webhook-deliveries/{deliveryId}/redeliver',
    summary: 'Send the same envelope again as a new attempt series',
    body: w.emptyBody,
    success: 202,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/webhook-events',
    summary: 'Webhook events (envelopes) of the program',
    query: w.envelopeQuerySchema,
    success: 200,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/webhook-events/stream',
    summary:
      "The program's webhooks as they happen, as Server-Sent Events (event: webhook, id: cursor, data: {id, type, body}); resumes after Last-Event-ID or ?after=",
    query: stream.streamQuerySchema,
    success: 200,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/audit/events',
    summary:
      'Domain events in global order with metadata and hashes (after_position, limit, type, stream)',
    query: a.eventsQuerySchema,
    success: 200,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/audit/verify',
    summary: "Verify the program's hash chains (streamed JSON lines)",
    success: 200,
  },
];

const errorResponse = { $ref: '#/components/responses/Error' };

/**
 * The reads that wait for `?after_position` (adapters/http/api/request.ts, readAfter): every GET but
 * the catalogue, the API keys, the webhook and audit routes (whose after_position is a cursor).
 */
const waitsForPosition = (op: Operation): boolean =>
  op.method === 'get' &&
  op.path.startsWith('/v1/programs/') &&
  !/\/(api-keys|webhook-[a-z]+|audit)(\/|$)/.test(op.path);

const positionReachedHeader = {
  'Incentable-Position-Reached': {
    description:
      'With `?after_position`: `true` when every projection the read depends on (read models, and the tier and leaderboard changes the award or deduction caused) had handled the position, `false` when READ_WAIT_TIMEOUT_MS (5 s) ran out first and the answer may be stale.',
    schema: { type: 'string', enum: ['true', 'false'] },
  },
};
const memberExistsResponse = { $ref: '#/components/responses/MemberExists' };

const errorBody = (required: string[]) => ({
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required,
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        field: { type: 'string' },
        member_id: {
          type: 'string',
          description: 'With `member_exists`: the member that has the email or external_id.',
        },
      },
    },
  },
});

/** OpenAPI 3.1 (JSON Schema 2020-12), generated from the request schemas at start. */
export const openApiDocument = (version: string): object => {
  const { schemas } = z.toJSONSchema(z.globalRegistry, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
    uri: (id) => `#/components/schemas/${id}`,
  });
  const paths: Record<string, Record<string, object>> = {};
  for (const op of operations) {
    const parameters: { name: string; in: string; required: boolean; schema: object }[] = [
      ...op.path.matchAll(/\{(\w+)\}/g),
    ].map((m) => ({ name: m[1] ?? '', in: 'path', required: true, schema: { type: 'string' } }));
    const query: Record<string, z.ZodType> = op.query?.shape ?? {};
    for (const [name, schema] of Object.entries(query)) {
      // A parameter's schema sits inside the document: no `$schema` of its own.
      const { $schema: _, ...json } = z.toJSONSchema(schema, {
        io: 'input',
        unrepresentable: 'any',
      });
      parameters.push({ name, in: 'query', required: false, schema: json });
    }
    if (op.method === 'get' && !('after_position' in query))
      parameters.push({
        name: 'after_position',
        in: 'query',
        required: false,
        schema: { type: 'string' },
      });
    const bodyId = op.body ? z.globalRegistry.get(op.body)?.id : undefined;
    (paths[op.path] ??= {})[op.method] = {
      summary: op.summary,
      ...(op.root && { description: 'Root key only.' }),
      parameters,
      ...(bodyId && {
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { $ref: `#/components/schemas/${bodyId}` } } },
        },
      }),
      ...(op.method === 'post' && {
        'x-idempotency': 'Send an Idempotency-Key header to make a retry safe.',
      }),
      responses: {
        [String(op.success)]: {
          description:
            'Success. Command responses carry `position`; pass it as ?after_position to read your write.',
          ...(waitsForPosition(op) && { headers: positionReachedHeader }),
        },
        '400': errorResponse,
        '401': errorResponse,
        '403': errorResponse,
        '404': errorResponse,
        // Repeated bad keys from the caller's address (docs/api.md, "Keys").
        '429': errorResponse,
        ...(op.method !== 'get' && {
          '409': op.memberConflict ? memberExistsResponse : errorResponse,
          '413': errorResponse,
          '422': errorResponse,
        }),
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Incentable API', version },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas,
      responses: {
        Error: {
          description:
            'An error, with a machine-readable code and the field at fault when there is one.',
          content: { 'application/json': { schema: errorBody(['code', 'message']) } },
        },
        MemberExists: {
          description:
            '`member_exists`: another member of the program has this email (compared without letter case) or external_id; `field` says which, `member_id` names the member. Also the generic conflicts (`idempotency_conflict`, `idempotency_in_progress`, `concurrency_conflict`: retry).',
          content: {
            'application/json': { schema: errorBody(['code', 'message']) },
          },
        },
      },
    },
  };
};
