import { z } from 'zod';
import { parseRetrySchedule } from '../delivery/retryPolicy.ts';

/** OTEL_EXPORTER_OTLP_PROTOCOL's values for OTLP over HTTP. */
const otlpProtocol = z.enum(['http/protobuf', 'http/json'], {
  error: 'must be http/protobuf or http/json (grpc is not offered: use OTLP over HTTP)',
});

/**
 * The only reader of process.env. One schema, parsed once at start into a frozen object; each
 * part of the app receives just the values it needs. Errors name the key, never the value.
 */
const settings = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  DATABASE_QUEUE_TIMEOUT_MS: z.coerce.number().int().min(0).max(60_000).default(1_000),
  DATA_DIR: z.string().min(1).default('./data'),
  ADMIN_API_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  METRICS_TOKEN: z
    .string()
    .min(16, 'must be at least 16 characters')
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
    .optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PUBLIC_URL: z.url().optional(),
  ROLES: z
    .string()
    .default('api,projector,scheduler,delivery')
    .transform((text) =>
      text
        .split(',')
        .map((role) => role.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(['api', 'projector', 'scheduler', 'delivery'])).min(1)),
  MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(10_000_000).default(1_000_000),
  READ_WAIT_TIMEOUT_MS: z.coerce.number().int().min(0).max(60_000).default(5_000),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
  WEBHOOK_SECRET_KEY: z
    .string()
    .regex(/^[A-Za-z0-9+/]{43}=$/, 'must be 32 bytes in base64 (openssl rand -base64 32)')
    .optional(),
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(15_000),
  WEBHOOK_RETRY_SCHEDULE: z
    .string()
    .default('0s,5m,30m,2h,24h')
    .transform((text, ctx) => {
      const parsed = parseRetrySchedule(text);
      if (parsed.ok) return parsed.delaysS;
      ctx.addIssue({ code: 'custom', message: parsed.message });
      return z.NEVER;
    }),
  /** One duration in the schedule's syntax (e.g. 5d, 2h, 30s); 0s turns auto-disable off. */
  WEBHOOK_DISABLE_AFTER: z
    .string()
    .default('5d')
    .transform((text, ctx) => {
      const parsed = parseRetrySchedule(text);
      const [delayS, ...more] = parsed.ok ? parsed.delaysS : [];
      if (delayS !== undefined && more.length === 0) return delayS * 1000;
      ctx.addIssue({
        code: 'custom',
        message: 'must be one duration with a unit (ms, s, m, h, d), e.g. 5d; 0s turns it off',
      });
      return z.NEVER;
    }),
  WEBHOOK_DISABLE_MIN_FAILED: z.coerce.number().int().min(1).max(1_000_000).default(10),
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: z.stringbool().optional(),
  WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(256),
  WEBHOOK_PER_ENDPOINT_IN_FLIGHT: z.coerce.number().int().min(1).max(1_000).default(32),
  SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL')
    .optional(),
  SMTP_FROM: z.string().min(3).default('Incentable <webhooks@localhost>'),
  TRUST_PROXY: z
    .string()
    .regex(
      /^(true|false|\d{1,2}|[\w.:/, -]{1,500})$/,
      'must be true, false, a hop count, or a comma-separated list of addresses/subnets/names (loopback, linklocal, uniquelocal)',
    )
    .default('false')
    .transform((text): boolean | number | string =>
      text === 'true' ? true : text === 'false' ? false : /^\d+$/.test(text) ? Number(text) : text,
    ),
  SUBSCRIPTION_LEASE_MS: z.coerce.number().int().min(500).max(600_000).default(5_000),
  IDEMPOTENCY_LEASE_MS: z.coerce.number().int().min(500).max(30_000).default(15_000),
  INCENTABLE_TRACE_BATCHES: z.string().min(1).optional(),
  EVENTSTORE: z.enum(['postgres', 'esdb']).default('postgres'),
  EVENTSTORE_GROUP_COMMIT: z.coerce.number().int().min(1).max(60).default(50),
  EVENTSTORE_GROUP_COMMIT_IN_FLIGHT: z.coerce.number().int().min(1).max(16).default(1),
  /** Ed25519: base64 of the 32-byte seed, or a signed-note signer key (PRIVATE+KEY+name+hash+key). */
  AUDIT_SIGNING_KEY: z
    .string()
    .regex(
      /^([A-Za-z0-9+/]{43}=|PRIVATE\+KEY\+[^\s+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44})$/,
      'must be a 32-byte Ed25519 seed in base64 (openssl rand -base64 32) or a signed-note signer key PRIVATE+KEY+<name>+<hash>+<key>',
    )
    .optional(),
  /** The checkpoints' origin line and key name; a schema-less URL, no spaces or plus signs. */
  AUDIT_ORIGIN: z
    .string()
    .regex(/^[^\s+]{1,200}$/, 'must be 1 to 200 characters without spaces or plus signs')
    .optional(),
  AUDIT_CHECKPOINT_INTERVAL: z
    .string()
    .default('1m')
    .transform((text, ctx) => {
      const parsed = parseRetrySchedule(text);
      const [delayS, ...more] = parsed.ok ? parsed.delaysS : [];
      if (delayS !== undefined && delayS > 0 && more.length === 0) return delayS * 1000;
      ctx.addIssue({
        code: 'custom',
        message: 'must be one duration above zero with a unit (ms, s, m, h, d), e.g. 1m',
      });
      return z.NEVER;
    }),
  AUDIT_CHECKPOINT_DIR: z.string().min(1).optional(),
  /**
   * OpenTelemetry: tracing is on only when an OTLP endpoint is set (the standard variables; the
   * exporter and the SDK read them and the other OTEL_* settings themselves).
   */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url().optional(),
  /**
   * The OTLP/HTTP encoding, as the exporter specification names them: http/protobuf (its default;
   * under half JSON's bytes, and less CPU to encode: BENCHMARKS.md) or http/json. No grpc.
   */
  OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol.optional(),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol.optional(),
  /** The standard switch: true turns tracing off even with an endpoint set. */
  OTEL_SDK_DISABLED: z.stringbool().optional(),
  ESDB_CONNECTION_STRING: z
    .string()
    .regex(/^esdb(\+discover)?:\/\//, 'must be an esdb:// or esdb+discover:// connection string')
    .optional(),
});

const schema = settings
  .superRefine((env, ctx) => {
    if (env.EVENTSTORE === 'esdb' && !env.ESDB_CONNECTION_STRING) {
      ctx.addIssue({
        code: 'custom',
        path: ['ESDB_CONNECTION_STRING'],
        message: 'required when EVENTSTORE=esdb',
      });
    }
  })
  .transform((env) => ({
    nodeEnv: env.NODE_ENV,
    port: env.PORT,
    host: env.HOST,
    database: env.DATABASE_URL
      ? ({ kind: 'postgres', url: env.DATABASE_URL, poolSize: env.DATABASE_POOL_SIZE } as const)
      : ({ kind: 'pglite', dataDir: env.DATA_DIR } as const),
    /**
     * While a query has waited longer than this for a pooled connection, API requests get 503
     * `overloaded` at once (0: never): the pool is not keeping up, and queueing more would starve
     * the projectors and /readyz, which share it. A burst the pool drains quickly is not shed.
     */
    databaseQueueTimeoutMs: env.DATABASE_QUEUE_TIMEOUT_MS,
    adminApiKey: env.ADMIN_API_KEY ?? null,
    /** When set, GET /metrics needs `Authorization: Bearer <token>`. */
    metricsToken: env.METRICS_TOKEN ?? null,
    logLevel: env.LOG_LEVEL,
    publicUrl: env.PUBLIC_URL ?? null,
    roles: env.ROLES,
    maxBodyBytes: env.MAX_BODY_BYTES,
    readWaitTimeoutMs: env.READ_WAIT_TIMEOUT_MS,
    trustProxy: env.TRUST_PROXY,
    subscriptionLeaseMs: env.SUBSCRIPTION_LEASE_MS,
    idempotencyLeaseMs: env.IDEMPOTENCY_LEASE_MS,
    /** A file to append one JSON line per handled subscription batch to (reliability tests). */
    traceBatchesFile: env.INCENTABLE_TRACE_BATCHES ?? null,
    /** How long SIGTERM lets in-flight requests and webhook POSTs finish before cutting them. */
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    webhooks: {
      secretKey: env.WEBHOOK_SECRET_KEY
        ? new Uint8Array(Buffer.from(env.WEBHOOK_SECRET_KEY, 'base64'))
        : null,
      timeoutMs: env.WEBHOOK_TIMEOUT_MS,
      delaysS: env.WEBHOOK_RETRY_SCHEDULE,
      health: {
        disableAfterMs: env.WEBHOOK_DISABLE_AFTER,
        minFailedDeliveries: env.WEBHOOK_DISABLE_MIN_FAILED,
      },
      // Development talks to receivers on loopback; production must opt in.
      allowPrivateNetworks: env.WEBHOOK_ALLOW_PRIVATE_NETWORKS ?? env.NODE_ENV !== 'production',
      concurrency: env.WEBHOOK_CONCURRENCY,
      perEndpointInFlight: env.WEBHOOK_PER_ENDPOINT_IN_FLIGHT,
    },
    smtp: env.SMTP_URL ? { url: env.SMTP_URL, from: env.SMTP_FROM } : null,
    eventStore:
      env.EVENTSTORE === 'esdb' && env.ESDB_CONNECTION_STRING
        ? ({ kind: 'esdb', connectionString: env.ESDB_CONNECTION_STRING } as const)
        : ({
            kind: 'postgres',
            groupCommit: env.EVENTSTORE_GROUP_COMMIT,
            groupCommitInFlight: env.EVENTSTORE_GROUP_COMMIT_IN_FLIGHT,
          } as const),
    dataDir: env.DATA_DIR,
    tracing: tracingOf(env),
    audit: {
      signingKey: env.AUDIT_SIGNING_KEY ?? null,
      origin: env.AUDIT_ORIGIN ?? null,
      checkpointIntervalMs: env.AUDIT_CHECKPOINT_INTERVAL,
      checkpointDir: env.AUDIT_CHECKPOINT_DIR ?? null,
    },
  }));

/**
 * Traces over OTLP/HTTP (docs/telemetry.md); null: off, and the API stays a no-op. `url` is where
 * spans are POSTed: the traces variable as it is, or the general one with `v1/traces` after it;
 * `protocol` the traces variable, else the general one, else http/protobuf, as the OTLP exporter
 * specification says.
 */
const tracingOf = (env: z.output<typeof settings>) => {
  if (env.OTEL_SDK_DISABLED === true) return null;
  const url =
    env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
    (env.OTEL_EXPORTER_OTLP_ENDPOINT &&
      `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`);
  if (!url) return null;
  const protocol =
    env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf';
  return { url, protocol };
};

export type Config = Readonly<z.output<typeof schema>>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses the environment; a bad value names its key and what was wrong, never the value. */
export const loadConfig = (env: Record<string, string | undefined> = process.env): Config => {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const [key = '(env)', entry] = issue.path.map(String);
      // A list's entry is named by its place (ROLES' second role: "ROLES (entry 2)").
      const where = entry === undefined ? key : `${key} (entry ${Number(entry) + 1})`;
      return `${where}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  return Object.freeze(parsed.data);
};

/** Every setting the service reads (for the config test and the docs' table). */
export const configKeys = Object.keys(settings.shape) as (keyof typeof settings.shape)[];
