import type { ApplicationTables } from '../../application/policyTables.ts';
import type { ReadModelTables } from '../../projections/readModelTables.ts';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig } from '../config.ts';
import { productVersion } from '../version.ts';

/**
 * `npx incentable …`: operational commands against the configured database (DATABASE_URL, or
 * the embedded data dir). Each opens the database, does its work and exits. Each command loads
 * what it needs when it runs (dynamic imports): `export` must not carry the whole service (HTTP,
 * webhooks, the EventStoreDB gRPC client) in its memory.
 */
const program = new Command()
  .name('incentable')
  .description('Operate an Incentable installation')
  .version(productVersion)
  .showHelpAfterError();

const jobsCommand = program.command('jobs').description('Scheduled jobs');
jobsCommand
  .command('run')
  .description('Run a scheduled job now (idempotent; skipped if another process holds its lock)')
  .argument('<job>', 'expiry | leaderboards | tiers', (value: string) => {
    if (value !== 'expiry' && value !== 'leaderboards' && value !== 'tiers')
      throw new InvalidArgumentError('use expiry, leaderboards or tiers');
    return value;
  })
  .option('--json', 'print the report as JSON')
  .action(async (job: 'expiry' | 'leaderboards' | 'tiers', options: { json?: boolean }) => {
    const { startRuntime } = await import('../runtime.ts');
    const runtime = await startRuntime(
      { ...loadConfig(), roles: ['api'] },
      { scheduler: false, listen: false },
    );
    try {
      const report =
        job === 'expiry'
          ? await runtime.jobs.expiry({ atLocalHour: null })
          : job === 'tiers'
            ? await runtime.jobs.tiers()
            : await runtime.jobs.leaderboards();
      if (options.json) console.log(JSON.stringify(report));
      else {
        console.log(
          !report.ran
            ? `${job}: skipped, another process holds the job's lock`
            : report.deferred === 'scores_pending'
              ? `${job}: nothing closed, the policy reactor has not yet scored every award made before the periods' ends; run it again shortly`
              : `${job}: ${report.changed} changed`,
        );
        const { reevaluationLine } = await import('./jobsReport.ts');
        for (const progress of report.reevaluations ?? []) console.log(reevaluationLine(progress));
        if (report.deferred === 'read_models_pending')
          console.log('some tier rule changes wait for the read models to catch up; run it again');
      }
    } finally {
      await runtime.stop();
    }
  });
jobsCommand
  .command('status')
  .description('Show the tier re-evaluations after rule changes (worked through by the tiers job)')
  .option('--all', 'include finished ones')
  .option('--json', 'print one JSON object per line')
  .action(async (options: { all?: boolean; json?: boolean }) => {
    const [
      { openDatabase },
      { tablesOf },
      { queries },
      { tierReevaluations },
      { reevaluationLine },
    ] = await Promise.all([
      import('../db/database.ts'),
      import('../db/schema.ts'),
      import('../../projections/queries.ts'),
      import('../../application/jobs.ts'),
      import('./jobsReport.ts'),
    ]);
    const handle = await openDatabase(loadConfig().database);
    try {
      const rows = await tierReevaluations(tablesOf<ApplicationTables>(handle.db), {
        running: !options.all,
      });
      const readModels = queries(tablesOf<ReadModelTables>(handle.db));
      for (const row of rows) {
        const progress = {
          programId: row.program_id,
          handled: row.handled,
          total: row.total ?? (await readModels.programMemberCount(row.program_id)),
          moved: row.moved,
          finished: row.finished_at !== null,
        };
        console.log(options.json ? JSON.stringify(progress) : reevaluationLine(progress));
      }
      if (rows.length === 0 && !options.json) console.log('no tier re-evaluation is running');
    } finally {
      await handle.close();
    }
  });

(await import('./audit.ts')).registerAuditCommands(program);
(await import('./eventstore.ts')).registerEventStoreCommands(program);
(await import('./keys.ts')).registerKeyCommands(program);
(await import('./listen.ts')).registerListenCommand(program);
(await import('./subscriptions.ts')).registerSubscriptionCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // Loaded on this error path only, to tell an unreachable EventStoreDB or a data dir another
  // process holds (the running service, on the embedded database) from a bug.
  const [{ EsdbConnectionError }, { DataDirLockedError }] = await Promise.all([
    import('../eventstore/esdb/esdbEventStore.ts'),
    import('../db/dataDirLock.ts'),
  ]);
  if (
    error instanceof ConfigError ||
    error instanceof EsdbConnectionError ||
    error instanceof DataDirLockedError
  ) {
    console.error(error.message);
    process.exit(2);
  }
  throw error;
}
