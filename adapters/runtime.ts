import type { StoreTransaction } from './db/schema.ts';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import { sql } from 'kysely';
import cron from 'node-cron';
import { pino, type Logger } from 'pino';
import { readModelsProjection, projectReadModels } from '../projections/readModels.ts';
import type { ReadModelTables } from '../projections/readModelTables.ts';
import { comparePositions, type Position } from '../domain/recordedEvent.ts';
import { CommandHandler } from '../application/commandHandler.ts';
import { systemClock, type Clock } from '../application/ports.ts';
import { incentives, type Incentives } from '../application/incentives.ts';
import { jobs, type Jobs } from '../application/jobs.ts';
import { policiesSubscription, policyReactor } from '../application/policyReactor.ts';
import { queries, type Queries } from '../projections/queries.ts';
import { readYourWrites } from '../application/readYourWrites.ts';
import type { Config } from './config.ts';
import { exclusiveRunner, openDatabase, type DatabaseHandle } from './db/database.ts';
import { onTables, tablesOf } from './db/schema.ts';
import type { ApplicationTables } from '../application/policyTables.ts';
import { PostgresEventStore, type BatchTrace } from './eventstore/postgresEventStore.ts';
import type { EventStore, Subscription } from '../application/ports.ts';
import type { Mailer } from '../delivery/ports.ts';
import { EsdbEventStore, openEsdbEventStore } from './eventstore/esdb/esdbEventStore.ts';
import { reactorProgress } from './eventstore/reactorProgress.ts';
import { apiKeyStore, ensureRootKey } from './db/apiKeyStore.ts';
import { apiKeyVerifier } from './db/apiKeyVerifier.ts';
import { idempotencyStore } from './db/idempotencyStore.ts';
import { auditQueries } from './db/auditQueries.ts';
import { dashboardQueries } from './db/dashboardQueries.ts';
import { streamReader } from './audit/history.ts';
import { authThrottle } from './http/authThrottle.ts';
import { createApp, type AppDeps } from './http/api/app.ts';
import { closeGracefully, type GracefulServer } from './http/drain.ts';
import { startDeadline } from './deadline.ts';
import { productVersion } from './version.ts';
import { ids } from './ids.ts';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMetrics } from './http/metrics.ts';
import { metricsQueries } from './db/metricsQueries.ts';
import { createSmtpMailer } from './mail/smtpMailer.ts';
import { DeliveryWorker } from './webhooks/deliveryWorker.ts';
import { DestinationTransport } from './webhooks/destinationTransport.ts';
import { UndiciTransport } from './webhooks/undiciTransport.ts';
import { createWebhookProjector, webhooksProjection } from './webhooks/webhookProjector.ts';
import { createWebhookStore, type WebhookStore } from './webhooks/webhookStore.ts';
import { auditTreeSubscription, createAuditTreeBuilder } from './audit/auditTree.ts';
import { createCheckpointer, type Checkpointer } from './audit/checkpoints.ts';
import { auditProofs } from './audit/proofService.ts';
import { loadAuditSigner } from './audit/signingKey.ts';
import type { NoteSigner } from './audit/signedNote.ts';
import { startTracing } from './telemetry/tracing.ts';

export type Runtime = {
  url: string | null;
  database: DatabaseHandle;
  store: EventStore<StoreTransaction>;
  incentives: Incentives;
  queries: Queries;
  jobs: Jobs;
  readModels: Subscription | null;
  policies: Subscription | null;
  webhookProjection: Subscription | null;
  webhooks: WebhookStore;
  worker: DeliveryWorker | null;
  /** The Merkle tree's builder (projector role) and its signed checkpoints (docs/audit.md). */
  audit: { signer: NoteSigner; checkpointer: Checkpointer; tree: Subscription | null };
  /** Set on the first start without ADMIN_API_KEY: the generated root key, shown once. */
  generatedRootKey: string | null;
  /**
   * Graceful: refuses new connections at once, lets the requests and webhook POSTs under way
   * finish until config.shutdownTimeoutMs and cuts the rest (logged), closes the database last.
   */
  stop: () => Promise<void>;
};

/**
 * The composition root: wires adapters to ports from a validated config and starts the roles the
 * config asks for (api, projector, scheduler). Tests start it in-process with their own clock.
 */
export const startRuntime = async (
  config: Config,
  options: { clock?: Clock; logger?: Logger; scheduler?: boolean; listen?: boolean } = {},
): Promise<Runtime> => {
  const clock = options.clock ?? systemClock;
  const log = options.logger ?? pino({ level: config.logLevel });
  const database = await openDatabase(config.database, {
    onConnectionError: connectionErrorLog(log),
  });
  let store: EventStore<StoreTransaction>;
  try {
    store = await openEventStore(config, database);
  } catch (error) {
    await database.close();
    throw error;
  }
  // Off (null) unless an OTLP endpoint is configured; stopped last, so the shutdown's spans go too.
  const tracing = startTracing(config.tracing, { version: productVersion });
  const core = application({ config, database, store, clock });
  const roles = new Set(config.roles);
  const secretKey = config.webhooks.secretKey ?? loadOrCreateSecretKey(config, log);
  const webhooks = createWebhookStore({ db: database.db, secretKey, clock });
  const idempotencyKeys = idempotencyStore(database.db);
  const metrics = createMetrics(metricsQueries(database.db), [
    readModelsProjection,
    policiesSubscription,
    webhooksProjection,
    auditTreeSubscription,
  ]);
  const mailer = config.smtp ? createSmtpMailer(config.smtp) : null;
  const transport = webhookTransport(config, log);
  const worker = roles.has('delivery')
    ? startDeliveryWorker({ config, database, core, transport, secretKey, mailer, metrics, log })
    : null;
  const signer = loadAuditSigner(config, (path) =>
    log.warn({ path }, 'AUDIT_SIGNING_KEY is not set: generated a checkpoint key for development'),
  );
  const checkpointer = createCheckpointer({
    db: database.db,
    signer,
    dir: config.audit.checkpointDir,
    clock,
    onQueued: () => worker?.notify(),
  });
  const subscriptions = roles.has('projector')
    ? await startProjectors({ store, core, worker, log })
    : { readModels: null, policies: null, webhookProjection: null, tree: null };
  core.running.readModels = subscriptions.readModels;
  core.running.policies = subscriptions.policies;
  const tasks =
    roles.has('scheduler') && options.scheduler !== false
      ? [
          ...scheduleJobs({ jobs: core.jobs, idempotencyKeys, log }),
          everyInterval(config.audit.checkpointIntervalMs, () =>
            checkpointer.make().then(
              (made) => made && log.info({ size: made.size }, 'audit checkpoint signed'),
              (error: unknown) => log.error({ err: error }, 'audit checkpoint failed; retrying'),
            ),
          ),
        ]
      : [];

  const generatedRootKey = await ensureRootKey(database.db, config.adminApiKey);
  const closingStreams = new AbortController();
  const api =
    roles.has('api') && options.listen !== false
      ? await listenApi(config, {
          idempotencyKeys,
          apiKeys: apiKeyStore(database.db),
          history: streamReader(database.db),
          audit: auditQueries(database.db),
          proofs: auditProofs({
            db: database.db,
            signer,
            checkpointer,
            reader: streamReader(database.db),
            waitMs: config.readWaitTimeoutMs,
          }),
          dashboardQueries: dashboardQueries(database.db),
          overloaded: () =>
            config.databaseQueueTimeoutMs > 0 &&
            database.queueDelayMs() > config.databaseQueueTimeoutMs,
          incentives: core.incentives,
          queries: core.queries,
          waitForReadModels: core.waitForReadModels,
          adminApiKey: config.adminApiKey,
          keys: apiKeyVerifier(database.db, { adminApiKey: config.adminApiKey }),
          authThrottle: authThrottle({ clock }),
          metricsToken: config.metricsToken,
          maxBodyBytes: config.maxBodyBytes,
          idempotencyLeaseMs: config.idempotencyLeaseMs,
          secretKey,
          trustProxy: config.trustProxy,
          secureCookies:
            config.nodeEnv === 'production' || (config.publicUrl?.startsWith('https:') ?? false),
          version: productVersion,
          webhooks,
          network: { allowPrivateNetworks: config.webhooks.allowPrivateNetworks },
          wakeDelivery: () => worker?.notify(),
          closing: closingStreams.signal,
          metrics: metrics.registry,
          ready: () => ready(database, store),
          log: { error: (details, message) => log.error(details, message) },
        })
      : { server: null, url: null };

  return {
    url: api.url,
    database,
    store,
    incentives: core.incentives,
    queries: core.queries,
    jobs: core.jobs,
    ...subscriptions,
    webhooks,
    worker,
    audit: { signer, checkpointer, tree: subscriptions.tree },
    generatedRootKey,
    stop: async () => {
      const deadline = startDeadline(config.shutdownTimeoutMs);
      // Live webhook streams would hold the close up to the deadline: they end now, and their
      // listeners resume from their cursor on another process.
      closingStreams.abort();
      for (const task of tasks) await task.stop();
      // New connections are refused from here on; the requests and webhook POSTs under way
      // finish, or are cut at the deadline (a cut POST's delivery is pending again).
      const [http, delivery] = await Promise.all([
        api.server?.close(deadline.signal) ?? { cutRequests: [] },
        worker?.stop({ cut: deadline.signal }) ?? { cutDeliveries: [] },
      ]);
      deadline.clear();
      logCutAtShutdown(log, config, { ...http, ...delivery });
      // The subscriptions ran on meanwhile: a request waiting on ?after_position needs them.
      await store.close();
      await transport.close();
      mailer?.close();
      await database.close();
      await tracing?.shutdown();
    },
  };
};

const openEventStore = async (
  config: Config,
  database: DatabaseHandle,
): Promise<EventStore<StoreTransaction>> =>
  config.eventStore.kind === 'esdb'
    ? openEsdbEventStore({
        connectionString: config.eventStore.connectionString,
        readModels: database,
      })
    : new PostgresEventStore(database, {
        leaseMs: config.subscriptionLeaseMs,
        groupCommit: {
          maxBatch: config.eventStore.groupCommit,
          maxInFlight: config.eventStore.groupCommitInFlight,
        },
        ...(config.traceBatchesFile && { traceBatch: batchTracer(config.traceBatchesFile) }),
      });

/** The application layer as this process runs it, with what read-your-writes needs. */
type Application = {
  clock: Clock;
  handler: CommandHandler;
  incentives: Incentives;
  queries: Queries;
  jobs: Jobs;
  waitForReadModels: (position: Position) => Promise<boolean>;
  /** This process's own subscriptions, set once they start (null: another process runs them). */
  running: { readModels: Subscription | null; policies: Subscription | null };
};

const application = (deps: {
  config: Config;
  database: DatabaseHandle;
  store: EventStore<StoreTransaction>;
  clock: Clock;
}): Application => {
  const { config, database, store, clock } = deps;
  const handler = new CommandHandler({ store });
  const reactor = reactorProgress(store, database.db, policiesSubscription);
  // reactorProgress reads any subscription's checkpoint row (EventStoreDB's key included).
  const readModelsProgress = reactorProgress(store, database.db, readModelsProjection);
  const q = queries(tablesOf<ReadModelTables>(database.db));
  const running: Application['running'] = { readModels: null, policies: null };
  /**
   * Read-your-writes: the read models and the policy reactor, with what it appended in answer.
   * This process's own subscriptions answer without a query; otherwise (another process runs
   * them, or this one's was stopped) their checkpoints in the database do.
   */
  const waitForReadModels = readYourWrites(
    {
      readModelsReached: async (position) =>
        localReached(running.readModels, position) || handledAtLeast(readModelsProgress, position),
      reactorReached: async (position) =>
        localReached(running.policies, position) || handledAtLeast(reactor, position),
      head: reactor.head,
    },
    config.readWaitTimeoutMs,
  );
  const services = incentives({
    handler,
    clock,
    ids,
    reactor,
    reactorWaitMs: config.readWaitTimeoutMs,
    knownHolders: (programId, kind, value) => q.memberIdsWith(programId, kind, value),
    // A transaction made a moment ago may not be in the ledger yet: missing, it is looked for
    // again once the read models have caught up with the log as it stands.
    transactionOwner: async (programId, transactionId) => {
      const owner = await q.transactionOwner(programId, transactionId);
      if (owner !== null) return owner;
      const head = await reactor.head();
      if (head === null || !(await waitForReadModels(head))) return null;
      return q.transactionOwner(programId, transactionId);
    },
  });
  const scheduled = jobs({
    db: tablesOf<ApplicationTables>(database.db),
    exclusive: exclusiveRunner(database),
    incentives: services,
    queries: q,
    clock,
    reactor,
    readModels: readModelsProgress,
  });
  return {
    clock,
    handler,
    incentives: services,
    queries: q,
    jobs: scheduled,
    waitForReadModels,
    running,
  };
};

const handledAtLeast = async (
  progress: { handled: () => Promise<Position | null> },
  position: Position,
): Promise<boolean> => {
  const handled = await progress.handled();
  return handled !== null && comparePositions(handled, position) >= 0;
};

const localReached = (subscription: Subscription | null, position: Position): boolean => {
  const local = subscription?.checkpoint();
  return local !== null && local !== undefined && comparePositions(local, position) >= 0;
};

const webhookTransport = (config: Config, log: Logger): DestinationTransport => {
  const onRefusedAddress = (detail: { host: string; address: string; addressClass: string }) =>
    log.warn(detail, 'webhook delivery refused: non-public address');
  const http = new UndiciTransport({
    allowPrivateNetworks: config.webhooks.allowPrivateNetworks,
    // Several endpoints may share a host: the worker caps each endpoint, so the pool must not cap
    // the host below the worker's concurrency (queued requests would burn their timeout waiting).
    connectionsPerOrigin: config.webhooks.concurrency,
    userAgent: `Incentable-Webhooks/${productVersion}`,
    onRefusedAddress,
  });
  return new DestinationTransport(http, {
    allowPrivateNetworks: config.webhooks.allowPrivateNetworks,
    onRefusedAddress,
  });
};

const startDeliveryWorker = (deps: {
  config: Config;
  database: DatabaseHandle;
  core: Application;
  transport: DestinationTransport;
  secretKey: Uint8Array;
  mailer: Mailer | null;
  metrics: ReturnType<typeof createMetrics>;
  log: Logger;
}): DeliveryWorker => {
  const { config, core, log } = deps;
  const worker = new DeliveryWorker({
    db: deps.database.db,
    transport: deps.transport,
    secretKey: deps.secretKey,
    publicUrl: config.publicUrl ?? `http://${config.host}:${config.port}`,
    version: productVersion,
    mailer: deps.mailer,
    notificationAddressOf: async (programId) =>
      (await core.queries.program(programId))?.notification_email ?? null,
    clock: core.clock,
    delaysS: config.webhooks.delaysS,
    health: config.webhooks.health,
    timeoutMs: config.webhooks.timeoutMs,
    concurrency: config.webhooks.concurrency,
    perEndpointInFlight: config.webhooks.perEndpointInFlight,
    logger: {
      info: (fields, message) => log.info(fields, message),
      error: (fields, message) => log.error(fields, message),
    },
    onAttempt: deps.metrics.onAttempt,
  });
  worker.start();
  return worker;
};

/** The read models, the policy reactor and the webhook projection, each a subscription. */
const startProjectors = async (deps: {
  store: EventStore<StoreTransaction>;
  core: Application;
  worker: DeliveryWorker | null;
  log: Logger;
}) => {
  const { store, core, worker, log } = deps;
  const readModels = await store.subscribe({
    name: readModelsProjection,
    // The projector sees only its own tables; the transaction is the whole database's.
    handle: onTables<ReadModelTables>(projectReadModels),
    onError: (error) => log.error({ err: error }, 'read-model projection failed; retrying'),
  });
  const policies = await store.subscribe({
    name: policiesSubscription,
    transactional: false,
    handle: onTables<ApplicationTables>(
      policyReactor({ handler: core.handler, incentives: core.incentives, clock: core.clock }),
    ),
    onError: (error) => log.error({ err: error }, 'policy reactor failed; retrying'),
  });
  const webhookProjector = createWebhookProjector({
    clock: core.clock,
    handoff: () => worker?.handoff() ?? null,
  });
  const webhookProjection = await store.subscribe({
    name: webhooksProjection,
    handle: webhookProjector,
    // Leased rows go straight to this process's worker; pending ones wait for a claim.
    onBatchCommitted: () => {
      if (webhookProjector.committed()) worker?.notify();
    },
    onError: (error) => log.error({ err: error }, 'webhook projection failed; retrying'),
  });
  // The Merkle tree over the log, in the same global order and batches; its writes commit with
  // its checkpoint (docs/audit.md says why a subscription builds it).
  const tree = await store.subscribe({
    name: auditTreeSubscription,
    handle: createAuditTreeBuilder(),
    onError: (error) => log.error({ err: error }, 'audit tree failed; retrying'),
  });
  return { readModels, policies, webhookProjection, tree };
};

/** Runs `work` every `ms`, one run at a time; stop() waits for the run under way. */
const everyInterval = (ms: number, work: () => Promise<unknown>) => {
  let running: Promise<unknown> | null = null;
  const timer = setInterval(() => {
    running ??= work().finally(() => {
      running = null;
    });
  }, ms);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
};

const scheduleJobs = (deps: {
  jobs: Jobs;
  idempotencyKeys: ReturnType<typeof idempotencyStore>;
  log: Logger;
}): { stop: () => void | Promise<void> }[] => {
  const { jobs: scheduled, idempotencyKeys, log } = deps;
  const run = (name: string, work: () => Promise<unknown>) => () => {
    work().then(
      (report) => log.info({ report }, `job ${name} finished`),
      (error: unknown) => log.error({ err: error }, `job ${name} failed`),
    );
  };
  return [
    cron.schedule(
      '0 * * * *',
      run('expiry', () => scheduled.expiry({ atLocalHour: 2 })),
    ),
    // At second 10: a period ending on the minute is closed 10 s later, past the jobs' grace.
    cron.schedule(
      '10 * * * * *',
      run('leaderboards', () => scheduled.leaderboards()),
    ),
    cron.schedule(
      '20 * * * * *',
      run('tiers', () => scheduled.tiers()),
    ),
    cron.schedule(
      '30 * * * *',
      run('idempotency-purge', () => idempotencyKeys.purge()),
    ),
  ];
};

/** Ready: the database answers within 2 s and, on EventStoreDB, its connection is up. */
const ready = async (
  database: DatabaseHandle,
  store: EventStore<StoreTransaction>,
): Promise<boolean> => {
  const timeout = new Promise<boolean>((resolve) =>
    setTimeout(() => resolve(false), 2_000).unref(),
  );
  const probe = sql`select 1`.execute(database.db).then(
    () => true,
    () => false,
  );
  const databaseReady = await Promise.race([probe, timeout]);
  // On EventStoreDB, a lost connection (being retried with back-off) is not ready either.
  return databaseReady && (!(store instanceof EsdbEventStore) || store.readiness().ready);
};

const listenApi = async (
  config: Config,
  deps: AppDeps,
): Promise<{ server: GracefulServer; url: string }> => {
  const listening = createServer(createApp(deps));
  const server = closeGracefully(listening);
  await new Promise<void>((resolve, reject) => {
    listening.once('error', reject);
    listening.listen(config.port, config.host, () => resolve());
  });
  const address = listening.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { server, url: `http://${host}:${address.port}` };
};

const logCutAtShutdown = (
  log: Logger,
  config: Config,
  { cutRequests, cutDeliveries }: { cutRequests: string[]; cutDeliveries: string[] },
): void => {
  if (cutRequests.length + cutDeliveries.length === 0) return;
  log.warn(
    { cutRequests, cutDeliveries },
    `shutdown took longer than SHUTDOWN_TIMEOUT_MS (${config.shutdownTimeoutMs} ms): cut ${cutRequests.length} API request(s) and ${cutDeliveries.length} webhook POST(s); those deliveries are pending again, for any worker`,
  );
};

/**
 * Connection errors are expected during a restart or failover and come in bursts (every pooled
 * connection at once): one log line per second at most, with how many were folded into it.
 */
const connectionErrorLog = (log: Logger) => {
  let lastAt = 0;
  let folded = 0;
  return (error: unknown, where: string) => {
    const now = Date.now();
    if (now - lastAt < 1_000) {
      folded++;
      return;
    }
    log.warn({ err: error, where, alsoFolded: folded }, 'database connection error');
    lastAt = now;
    folded = 0;
  };
};

/** INCENTABLE_TRACE_BATCHES: one JSON line per handled batch, appended synchronously. */
const batchTracer = (path: string) => (trace: BatchTrace) => {
  appendFileSync(path, `${JSON.stringify(trace)}\n`);
};

/**
 * Without WEBHOOK_SECRET_KEY, development keeps a generated key in the data dir (the dir 0700, the
 * key 0600) so endpoint secrets survive restarts. Production must configure the key: losing it
 * loses every secret.
 */
const loadOrCreateSecretKey = (config: Config, log: Logger): Uint8Array => {
  if (config.nodeEnv === 'production') {
    throw new Error('WEBHOOK_SECRET_KEY is required when NODE_ENV=production (32 bytes, base64)');
  }
  const path = join(config.dataDir, 'webhook-secret.key');
  if (existsSync(path))
    return new Uint8Array(Buffer.from(readFileSync(path, 'utf8').trim(), 'base64'));
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  writeFileSync(path, key.toString('base64'), { mode: 0o600 });
  log.warn({ path }, 'WEBHOOK_SECRET_KEY is not set: generated one for development');
  return new Uint8Array(key);
};
