import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig } from '../config.ts';

/**
 * The EventStoreDB connection string: `--esdb`, else the configured one. Read through a widened
 * type so this compiles before and after config.ts gains `eventStore`.
 */
export const esdbConnectionString = (option: string | undefined): string => {
  const configured = (loadConfig() as { eventStore?: { kind: string; connectionString?: string } })
    .eventStore?.connectionString;
  const value = option ?? configured;
  if (!value)
    throw new InvalidArgumentError('set ESDB_CONNECTION_STRING or pass --esdb <connection-string>');
  return value;
};

/** Adds `eventstore copy --to esdb|postgres`. */
export const registerEventStoreCommands = (program: Command): void => {
  const eventstore = program
    .command('eventstore')
    .description('Move the event history between stores');
  eventstore
    .command('copy')
    .description(
      'Copy the whole history in global order, keeping event ids, revisions, metadata and the hash chain (resumable)',
    )
    .requiredOption(
      '--to <store>',
      'esdb (from the configured Postgres) or postgres (from EventStoreDB)',
      (value: string) => {
        if (value !== 'esdb' && value !== 'postgres')
          throw new InvalidArgumentError('use esdb or postgres');
        return value;
      },
    )
    .option(
      '--esdb <connection-string>',
      'EventStoreDB connection string (default ESDB_CONNECTION_STRING)',
    )
    .option(
      '--database-url <url>',
      'with --to postgres: the target database (default DATABASE_URL)',
    )
    .action(async (options: { to: 'esdb' | 'postgres'; esdb?: string; databaseUrl?: string }) => {
      // Loaded here, not at the top: the other commands never pay for the gRPC client.
      const [{ openDatabase }, { copyHistory }, { openEsdbEventStore }, { PostgresEventStore }] =
        await Promise.all([
          import('../db/database.ts'),
          import('../eventstore/esdb/copyHistory.ts'),
          import('../eventstore/esdb/esdbEventStore.ts'),
          import('../eventstore/postgresEventStore.ts'),
        ]);
      const config = loadConfig();
      const postgres = await openDatabase(
        options.to === 'postgres' && options.databaseUrl
          ? { kind: 'postgres', url: options.databaseUrl }
          : config.database,
      );
      const esdb = await openEsdbEventStore({
        connectionString: esdbConnectionString(options.esdb),
        readModels: postgres,
      });
      const pg = new PostgresEventStore(postgres);
      try {
        const started = Date.now();
        const report = await copyHistory({
          from: options.to === 'esdb' ? pg : esdb,
          to: options.to === 'esdb' ? esdb : pg,
          onProgress: (events) => {
            if (process.stderr.isTTY) process.stderr.write(`\rcopied ${events} events`);
          },
        });
        if (process.stderr.isTTY) process.stderr.write('\n');
        console.log(
          `copied ${report.events} events in ${report.streams} streams to ${options.to} in ${((Date.now() - started) / 1000).toFixed(1)} s (${report.appended} appended, ${report.alreadyThere} already there)`,
        );
      } finally {
        await esdb.close();
        await pg.close();
        await postgres.close();
      }
    });
};
