import { randomUUID } from 'node:crypto';
import express, { type Express, type Router } from 'express';
import { authenticate, requireToken } from './auth.ts';
import type { AuthThrottle } from '../authThrottle.ts';
import { errorHandler, sendError, sendOverloaded } from './errors.ts';
import { idempotency } from './idempotency.ts';
import type { IdempotencyStore } from '../../db/idempotencyStore.ts';
import { refuseUnsafeKeys, verifyBody } from './jsonBody.ts';
import { auditRoutes } from './auditRoutes.ts';
import type { AuditQueries } from '../../db/auditQueries.ts';
import type { AuditProofs } from '../../audit/proofService.ts';
import { dashboard } from '../dashboard/dashboard.ts';
import type { ApiKeyStore } from '../../db/apiKeyStore.ts';
import type { DashboardQueries } from '../../db/dashboardQueries.ts';
import { openApiDocument } from './openapi.ts';
import type { Registry } from 'prom-client';
import { webhookRoutes, type WebhookRouteDeps } from './webhookRoutes.ts';
import type { Incentives } from '../../../application/incentives.ts';
import type { Queries } from '../../../projections/queries.ts';
import type { StreamReader } from '../../audit/history.ts';
import { apiKeyRoutes } from './apiKeyRoutes.ts';
import type { ApiKeyVerifier } from '../../db/apiKeyVerifier.ts';
import { leaderboardRoutes } from './leaderboardRoutes.ts';
import { memberRoutes } from './memberRoutes.ts';
import { pointsRoutes } from './pointsRoutes.ts';
import { programGuard, programRoutes } from './programRoutes.ts';
import type { WaitForReadModels } from './request.ts';
import { rewardRoutes } from './rewardRoutes.ts';
import { orderRoutes } from './orderRoutes.ts';
import { serverSpans } from '../../telemetry/httpSpans.ts';

/** What the resource routers need between them. */
export type ApiDeps = WebhookRouteDeps & {
  apiKeys: ApiKeyStore;
  /** The event streams, for a member as of a past time. */
  history: StreamReader;
  /** The auditors' reads of the log. */
  audit: AuditQueries;
  /** Signed checkpoints, proofs and member statements (docs/audit.md). */
  proofs: AuditProofs;
  /** The Idempotency-Key records: the middleware's, and the routes' transactions that settle them. */
  idempotencyKeys: IdempotencyStore;
  incentives: Incentives;
  queries: Queries;
  waitForReadModels: WaitForReadModels;
  /** This process's key check: a revoked key is forgotten here at once. */
  keys: ApiKeyVerifier;
};

/**
 * One router per resource, in the order they are mounted under /v1. Building them touches none
 * of the dependencies (test/adapters/http/openapi.unit.test.ts reads their routes this way).
 */
export const apiRouters = (deps: ApiDeps): Router[] => [
  programRoutes(deps),
  apiKeyRoutes(deps),
  memberRoutes(deps),
  pointsRoutes(deps),
  rewardRoutes(deps),
  orderRoutes(deps),
  leaderboardRoutes(deps),
  webhookRoutes(deps),
  auditRoutes(deps),
];

export type AppDeps = ApiDeps & {
  metrics: Registry;
  /** The dashboard's own aggregates. */
  dashboardQueries: DashboardQueries;
  /** Failed-authentication backoff, shared by the API and the dashboard's sign-in. */
  authThrottle: AuthThrottle;
  /** METRICS_TOKEN: /metrics wants it as a bearer token; null leaves /metrics open. */
  metricsToken: string | null;
  adminApiKey: string | null;
  maxBodyBytes: number;
  /** True while the database's pool does not keep up with its queue (load shedding). */
  overloaded?: () => boolean;
  /** How long a dead request's claim on its Idempotency-Key lasts (see idempotency.ts). */
  idempotencyLeaseMs?: number;
  /** The at-rest key: seals stored idempotent responses that carry a secret. */
  secretKey?: Uint8Array;
  /** express's `trust proxy`: which proxies' X-Forwarded-* headers to believe (TRUST_PROXY). */
  trustProxy?: boolean | number | string;
  /** Mark cookies Secure even on a plain request (PUBLIC_URL is https, or production). */
  secureCookies?: boolean;
  version: string;
  /** Resolves true when this process can serve: its database answers. */
  ready: () => Promise<boolean>;
  log: { error: (details: object, message: string) => void };
};

/** The HTTP API: JSON in and out, one error body, never a 500 for what a client sent. */
export const createApp = (deps: AppDeps): Express => {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.set('trust proxy', deps.trustProxy ?? false);
  // First: the request's span covers everything after it (docs/telemetry.md).
  app.use(serverSpans());
  app.use((req, res, next) => {
    res.locals.secureCookies = deps.secureCookies === true;
    // Served over TLS (directly or through a trusted proxy): browsers keep to https from now on.
    if (req.secure) res.set('Strict-Transport-Security', 'max-age=31536000');
    next();
  });
  app.use((req, res, next) => {
    const incoming = req.get('x-request-id');
    res.locals.requestId = incoming && /^[\w.-]{1,100}$/.test(incoming) ? incoming : randomUUID();
    res.set('X-Request-Id', res.locals.requestId as string);
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    if (await deps.ready()) res.json({ status: 'ready' });
    else res.status(503).json({ status: 'not_ready' });
  });

  app.get('/metrics', requireToken(deps.metricsToken, deps.authThrottle), async (_req, res) => {
    res.set('Content-Type', deps.metrics.contentType);
    res.send(await deps.metrics.metrics());
  });

  const openApi = openApiDocument(deps.version);
  app.get('/openapi.json', (_req, res) => {
    res.json(openApi);
  });

  app.use('/dashboard', dashboard(deps));

  app.use(
    '/v1',
    (_req, res, next) => {
      // Before anything that queries: a request shed here costs the database nothing.
      if (deps.overloaded?.()) return sendOverloaded(res);
      next();
    },
    (req, res, next) => {
      const hasBody = req.method === 'POST' || req.method === 'PATCH' || req.method === 'PUT';
      // A chunked body has no Content-Length: it is a body all the same.
      const sent =
        Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
      if (hasBody && sent && !req.is('application/json')) {
        return sendError(res, 415, {
          code: 'unsupported_media_type',
          message: 'send the body as application/json',
        });
      }
      next();
    },
    express.json({ limit: deps.maxBodyBytes, strict: true, verify: verifyBody }),
    // Credentials first: a request without them is a 401 whatever its body holds (the auth fuzz
    // found a `prototype` key answered 400 to a bad key).
    authenticate(deps.keys, deps.authThrottle),
    refuseUnsafeKeys(),
    idempotency(deps.idempotencyKeys, {
      ...(deps.idempotencyLeaseMs !== undefined && { leaseMs: deps.idempotencyLeaseMs }),
      ...(deps.secretKey && { secretKey: deps.secretKey }),
    }),
    programGuard(deps.incentives),
    ...apiRouters(deps),
  );

  app.use((_req, res) => sendError(res, 404, { code: 'not_found', message: 'no such route' }));
  app.use(errorHandler((error) => deps.log.error({ err: error }, 'request failed')));
  return app;
};
