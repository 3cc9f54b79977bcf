import type { z } from 'zod';
import * as s from './schemas.ts';
import * as r from './responses.ts';
import * as w from './webhookRoutes.ts';
import * as a from './auditRoutes.ts';
import * as stream from './webhookStream.ts';

export type Operation = {
  method: 'get' | 'post' | 'patch' | 'delete';
  path: string;
  summary: string;
  body?: z.ZodType;
  /** The query parameters the route validates, when it takes more than `after_position`. */
  query?: z.ZodObject;
  success: number;
  /** The success answer's body: a response schema, none (204), or a stream. */
  response: z.ZodType | 'none' | 'eventStream' | 'ndjson';
  root?: boolean;
  /** The route answers 409 `member_exists` with the member's id (docs/api.md, "Members"). */
  memberConflict?: boolean;
};

/**
 * Every route of the API with its request schema. The schemas are the same zod objects that
 * validate requests; test/adapters/http/openapi.unit.test.ts checks this table against the
 * router, so a route cannot ship undocumented.
 */
export const operations: Operation[] = [
  {
    method: 'post',
    path: '/v1/programs',
    summary: 'Create a program',
    body: s.createProgramSchema,
    success: 201,
    response: r.programCreatedSchema,
    root: true,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}',
    summary: 'Get a program',
    success: 200,
    response: r.programSchema,
  },
  {
    method: 'patch',
    path: '/v1/programs/{programId}',
    summary: 'Change program settings (points_expiry or its older spelling points_expiry_days)',
    body: s.updateProgramSchema,
    success: 200,
    response: r.programChangedSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/api-keys',
    summary: 'Create a program API key (shown once)',
    body: s.createApiKeySchema,
    success: 201,
    response: r.apiKeyCreatedSchema,
    root: true,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/api-keys',
    summary: "List the program's API keys (never their secrets), revoked ones included",
    success: 200,
    response: r.apiKeyListSchema,
  },
  {
    method: 'delete',
    path: '/v1/programs/{programId}/api-keys/{keyId}',
    summary: 'Revoke an API key (idempotent)',
    success: 204,
    response: 'none',
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/members',
    summary: 'Register a member (email and external_id are unique within the program)',
    body: s.createMemberSchema,
    success: 201,
    response: r.memberRegisteredSchema,
    memberConflict: true,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/members',
    summary: 'List members (cursor pagination; filter by tier, email, external_id, q)',
    query: s.listQuerySchema,
    success: 200,
    response: r.memberListSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/members/{memberId}',
    summary:
      'Get a member (as they are, or as they were at as_of), with next_expiry: when and how many points expire next, or null',
    query: s.memberQuerySchema,
    success: 200,
    response: r.memberReadSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/members/{memberId}/statement',
    summary:
      "The member's balance and ledger as of a moment (as_of, default now), with each of their events' leaf and RFC 9162 inclusion proof against a signed checkpoint (docs/audit.md); 503 not_yet_in_tree while the newest events are not in the audit tree yet",
    query: s.statementQuerySchema,
    success: 200,
    response: r.statementSchema,
  },
  {
    method: 'patch',
    path: '/v1/programs/{programId}/members/{memberId}',
    summary:
      'Change member details (to an email or external_id no other member has), or override the tier with an optional hold (tier, tier_locked_until)',
    body: s.updateMemberSchema,
    success: 200,
    response: r.memberChangedSchema,
    memberConflict: true,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/members/{memberId}/deactivate',
    summary: 'Deactivate a member: off the open leaderboards, points frozen',
    body: s.emptySchema,
    success: 200,
    response: r.memberStatusSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/members/{memberId}/reactivate',
    summary: 'Reactivate a member: refunds that waited are paid, a same-period score returns',
    body: s.emptySchema,
    success: 200,
    response: r.memberStatusSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/transactions/{transactionId}/reverse',
    summary:
      'Reverse an award or a manual deduction completely (balance, lifetime points, tier, leaderboard scores), at most once',
    body: s.reverseTransactionSchema,
    success: 201,
    response: r.reversalSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/members/{memberId}/points/award',
    summary: 'Award points',
    body: s.pointsSchema,
    success: 201,
    response: r.movementSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/members/{memberId}/points/deduct',
    summary: 'Deduct points',
    body: s.pointsSchema,
    success: 201,
    response: r.movementSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/members/{memberId}/transactions',
    summary: 'The points ledger, newest first, with running balance',
    query: s.pageQuerySchema,
    success: 200,
    response: r.ledgerPageSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/members/{memberId}/redemptions',
    summary: 'Redeem a reward',
    body: s.redemptionSchema,
    success: 201,
    response: r.orderPlacedSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/rewards',
    summary: 'Create a reward',
    body: s.createRewardSchema,
    success: 201,
    response: r.rewardCreatedSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/rewards',
    summary: 'List rewards',
    query: s.pageQuerySchema,
    success: 200,
    response: r.rewardListSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/rewards/{rewardId}',
    summary: 'Get a reward',
    success: 200,
    response: r.rewardSchema,
  },
  {
    method: 'patch',
    path: '/v1/programs/{programId}/rewards/{rewardId}',
    summary: 'Change a reward',
    body: s.updateRewardSchema,
    success: 200,
    response: r.rewardChangedSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/orders',
    summary: 'List orders, oldest first (cursor pagination; filter by status, member_id)',
    query: s.ordersQuerySchema,
    success: 200,
    response: r.orderListSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/members/{memberId}/orders',
    summary: "A member's orders, oldest first (cursor pagination; filter by status)",
    query: s.memberOrdersQuerySchema,
    success: 200,
    response: r.orderListSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/orders/{orderId}',
    summary: 'Get an order with its status history',
    success: 200,
    response: r.orderSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/orders/{orderId}/ship',
    summary: 'Ship a physical order',
    body: s.shipSchema,
    success: 200,
    response: r.orderShippedSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/orders/{orderId}/deliver',
    summary: 'Mark an order delivered',
    body: s.emptySchema,
    success: 200,
    response: r.orderStepSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/orders/{orderId}/cancel',
    summary: 'Cancel an order before delivery (refunds the points)',
    body: s.cancelSchema,
    success: 200,
    response: r.orderStepSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/leaderboards',
    summary: 'Create a leaderboard',
    body: s.createLeaderboardSchema,
    success: 201,
    response: r.leaderboardCreatedSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/leaderboards',
    summary: 'List leaderboards',
    success: 200,
    response: r.leaderboardListSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/leaderboards/{leaderboardId}',
    summary: 'Get a leaderboard',
    success: 200,
    response: r.leaderboardSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/leaderboards/{leaderboardId}/standings',
    summary: 'Current period standings, ranked',
    success: 200,
    response: r.standingsSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/leaderboards/{leaderboardId}/periods',
    summary: 'Ended periods, newest first, each with its id and top ten',
    success: 200,
    response: r.periodListSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/leaderboards/{leaderboardId}/periods/{periodId}/standings',
    summary: "An ended period's complete final standings, ranked, cursor-paginated",
    query: s.pageQuerySchema,
    success: 200,
    response: r.periodStandingsSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/leaderboards/{leaderboardId}/close-period',
    summary: 'End the current period now',
    body: s.emptySchema,
    success: 200,
    response: r.periodClosedSchema,
  },
  {
    method: 'get',
    path: '/v1/webhook-event-types',
    summary:
      'The webhook event catalogue, grouped as the docs group it, with JSON Schemas and samples',
    success: 200,
    response: r.webhookEventTypesSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/webhook-endpoints',
    summary: 'Add an endpoint (the response shows its secret)',
    body: w.createEndpointSchema,
    success: 201,
    response: r.webhookEndpointCreatedSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/webhook-endpoints',
    summary: 'List endpoints',
    success: 200,
    response: r.webhookEndpointListSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/webhook-endpoints/{endpointId}',
    summary: 'Get an endpoint',
    success: 200,
    response: r.webhookEndpointSchema,
  },
  {
    method: 'patch',
    path: '/v1/programs/{programId}/webhook-endpoints/{endpointId}',
    summary: 'Change url, events, description or enabled',
    body: w.updateEndpointSchema,
    success: 200,
    response: r.webhookEndpointSchema,
  },
  {
    method: 'delete',
    path: '/v1/programs/{programId}/webhook-endpoints/{endpointId}',
    summary: 'Delete an endpoint',
    success: 204,
    response: 'none',
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/webhook-endpoints/{endpointId}/secret',
    summary: 'Reveal the signing secret',
    success: 200,
    response: r.webhookSecretSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/webhook-endpoints/{endpointId}/rotate-secret',
    summary: 'Rotate the secret (the old one keeps signing for 24 h)',
    body: w.emptyBody,
    success: 200,
    response: r.rotatedSecretSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/webhook-endpoints/{endpointId}/test',
    summary: 'Send a test event of a type',
    body: w.testEventSchema,
    success: 202,
    response: r.testQueuedSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/webhook-endpoints/{endpointId}/replay',
    summary: 'Re-send every event in a time range to this endpoint',
    body: w.replaySchema,
    success: 202,
    response: r.replayQueuedSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/webhook-deliveries',
    summary: 'The delivery log (filter by endpoint_id, status, type)',
    query: w.deliveryQuerySchema,
    success: 200,
    response: r.webhookDeliveryListSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/webhook-deliveries/{deliveryId}',
    summary: 'One delivery with its attempts and payload',
    success: 200,
    response: r.webhookDeliveryDetailSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/webhook-deliveries/{deliveryId}/redeliver',
    summary: 'Send the same envelope again as a new attempt series',
    body: w.emptyBody,
    success: 202,
    response: r.redeliveredSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/webhook-events',
    summary: 'Webhook events (envelopes) of the program',
    query: w.envelopeQuerySchema,
    success: 200,
    response: r.webhookEventListSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/webhook-events/stream',
    summary:
      "The program's webhooks as they happen, as Server-Sent Events (event: webhook, id: cursor, data: {id, type, body}); resumes after Last-Event-ID or ?after=",
    query: stream.streamQuerySchema,
    success: 200,
    response: 'eventStream',
  },
  {
    method: 'get',
    path: '/v1/audit/public-key',
    summary:
      'The key that signs checkpoints: origin, signed-note verifier key (<name>+<key id>+<base64 key>) and PEM',
    success: 200,
    response: r.auditPublicKeySchema,
  },
  {
    method: 'get',
    path: '/v1/audit/checkpoints',
    summary:
      'Signed checkpoints of the event history (C2SP tlog-checkpoint notes), newest first; keyset paged with before_size',
    query: a.checkpointsQuerySchema,
    success: 200,
    response: r.checkpointListSchema,
  },
  {
    method: 'get',
    path: '/v1/audit/proofs/consistency',
    summary:
      'RFC 9162 consistency proof that the tree of `from` events is a prefix of the tree of `to` events',
    query: a.consistencyQuerySchema,
    success: 200,
    response: r.consistencyProofSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/audit/events',
    summary:
      'Domain events in global order with metadata and hashes (after_position, limit, type, stream)',
    query: a.eventsQuerySchema,
    success: 200,
    response: r.auditEventListSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/audit/verify',
    summary: "Verify the program's hash chains (streamed JSON lines)",
    success: 200,
    response: 'ndjson',
  },
];
