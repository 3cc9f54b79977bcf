import { pino } from 'pino';
import { ConfigError, loadConfig } from './config.ts';
import { EsdbConnectionError } from './eventstore/esdb/esdbEventStore.ts';
import { installProcessGuards } from './processGuards.ts';
import { startRuntime } from './runtime.ts';

/** `npm start`: every role in one process, on PGlite under DATA_DIR unless DATABASE_URL is set. */
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
    if (error instanceof EsdbConnectionError) {
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
  const shutdown = (signal: string) => {
    log.info({ signal }, 'shutting down');
    runtime.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
};

await main();
