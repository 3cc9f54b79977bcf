import { pino } from 'pino';
import { ConfigError, loadConfig } from './config.ts';
import { DataDirLockedError } from './db/dataDirLock.ts';
import { EsdbConnectionError } from './eventstore/esdb/esdbEventStore.ts';
import { installProcessGuards } from './processGuards.ts';
import { startRuntime } from './runtime.ts';

/** Past SHUTDOWN_TIMEOUT_MS, how long closing the subscriptions and the database may take. */
const stopGraceMs = 5_000;

/**
 * `npm start`: every role in one process, on PGlite under DATA_DIR unless DATABASE_URL is set.
 * SIGTERM or SIGINT shuts it down gracefully (runtime.stop) and exits 0. Signals that arrive
 * during the shutdown are ignored: under `npm start` one Ctrl-C reaches this process more than
 * once (from the terminal and forwarded by npm and tsx), and SHUTDOWN_TIMEOUT_MS bounds it anyway.
 */
const main = async () => {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const log = pino({ level: config.logLevel });
  installProcessGuards(log);
  let runtime;
  try {
    runtime = await startRuntime(config, { logger: log });
  } catch (error) {
    if (error instanceof EsdbConnectionError || error instanceof DataDirLockedError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  log.info(
    { url: runtime.url, database: config.database.kind, roles: config.roles },
    'incentable started',
  );
  if (runtime.url) console.log(`Incentable is listening on ${runtime.url}`);
  if (runtime.generatedRootKey) {
    console.log(
      `\nNo ADMIN_API_KEY was set, so a root API key was generated. It is shown only this once:\n\n  ${runtime.generatedRootKey}\n\nStore it now; only its hash is kept. To replace it, make another (npx incentable keys create --label …), then revoke this one (npx incentable keys revoke <key_id>).\n`,
    );
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      log.info({ signal }, 'already shutting down');
      return;
    }
    stopping = true;
    log.info(
      { signal, shutdownTimeoutMs: config.shutdownTimeoutMs },
      'shutting down: refusing new connections, finishing the requests and webhook POSTs under way',
    );
    // runtime.stop() cuts what is left at the deadline; this is for a close that hangs after it.
    setTimeout(() => {
      log.error(
        { signal },
        `shutdown still not done ${stopGraceMs} ms after its deadline; exiting`,
      );
      process.exit(1);
    }, config.shutdownTimeoutMs + stopGraceMs).unref();
    runtime.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
};

await main();
