import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import { parsePosition, formatPosition, type Position } from '../../domain/recordedEvent.ts';
import type { ExportFormat } from '../audit/export.ts';
import type { LedgerLine, MemberAsOf } from '../audit/history.ts';
import type { ReplayReport, RowDifference } from '../audit/replay.ts';
import { readModelTableNames, type ReadModelTable } from '../../projections/readModelColumns.ts';
import type { ChainBreak } from '../audit/verify.ts';
import { loadConfig } from '../config.ts';
import { registerAuditProofCommands } from './auditProofs.ts';
import type { DatabaseHandle } from '../db/database.ts';

/**
 * Opens the configured database for one command and closes it after. Each command imports its
 * own modules in its action, so none loads what another needs (see main.ts).
 */
const withDatabase = async <T>(work: (handle: DatabaseHandle) => Promise<T>): Promise<T> => {
  const { openDatabase } = await import('../db/database.ts');
  const handle = await openDatabase(loadConfig().database);
  try {
    return await work(handle);
  } finally {
    await handle.close();
  }
};

/** A progress bar on stderr when a person is watching; nothing otherwise (pipes, --json). */
const progressBar = (label: string, total: number, quiet: boolean) => {
  if (quiet || !process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {value}/{total} events | {eta_formatted} left`,
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(Math.max(total, 1), 0);
  return {
    update: (value: number) => bar.update(Math.min(value, Math.max(total, 1))),
    stop: () => bar.stop(),
  };
};

const positionArgument = (value: string): Position => {
  const position = parsePosition(value);
  if (!position) throw new InvalidArgumentError('a position is <commit>.<prepare>, e.g. 812.40');
  return position;
};

const dateArgument = (value: string): Date => {
  const time = Date.parse(value);
  if (Number.isNaN(time)) throw new InvalidArgumentError('use an ISO-8601 timestamp');
  return new Date(time);
};

const projectionArgument = (value: string): ReadModelTable[] => {
  if (value === 'all' || value === 'read-models') return [...readModelTableNames];
  const names = value.split(',').map((name) => (name.startsWith('rm_') ? name : `rm_${name}`));
  for (const name of names)
    if (!readModelTableNames.includes(name as ReadModelTable))
      throw new InvalidArgumentError(
        `projections: all, or any of ${readModelTableNames.map((t) => t.slice(3)).join(', ')}`,
      );
  return names as ReadModelTable[];
};

const engineArgument = (value: string): 'batched' | 'projector' => {
  if (value !== 'batched' && value !== 'projector')
    throw new InvalidArgumentError('use batched or projector');
  return value;
};

const formatArgument = (value: string): ExportFormat => {
  if (value !== 'jsonl' && value !== 'csv') throw new InvalidArgumentError('use jsonl or csv');
  return value;
};

const describeBreak = (b: ChainBreak): string => {
  const where = `${b.stream} @ revision ${b.revision}`;
  switch (b.kind) {
    case 'hash_mismatch':
      return `${where}: hash mismatch, expected ${b.expectedHash} found ${b.foundHash} (${b.links} link(s) broken)`;
    case 'revision_gap':
      return `${where}: revision missing, next found is ${b.foundRevision} (${b.links} link(s) broken)`;
    case 'missing_tail':
      return `${where}: events missing at the end, the stream head says revision ${b.expectedRevision} (hash ${b.expectedHash})`;
    case 'head_mismatch':
      return `${where}: the stream head's hash ${b.expectedHash} is not the last event's ${b.foundHash}`;
    case 'missing_head':
      return `${where}: events without a stream head row`;
  }
};

const describeDifference = (d: RowDifference): string => {
  const key = Object.entries(d.key)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
  if (d.kind !== 'different') return `${d.table} ${key}: ${d.kind} in live`;
  const columns = d.columns.map(
    (c) => `${c}: live ${JSON.stringify(d.live?.[c])} rebuilt ${JSON.stringify(d.rebuilt?.[c])}`,
  );
  return `${d.table} ${key}: ${columns.join('; ')}`;
};

const json = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));

/** Adds the auditors' commands: `audit verify`, `replay`, `export`, `history member`. */
export const registerAuditCommands = (program: Command): void => {
  const audit = program.command('audit').description('Audit the event history');
  audit
    .command('verify')
    .description(
      "Recompute every stream's hash chain and check revisions are contiguous; exit 1 on any break",
    )
    .option('--program <program_id>', "only this program's streams")
    .option(
      '--checkpoints <path>',
      'also check the tree against saved signed checkpoints (a file, or a checkpoint directory)',
    )
    .option('--public-key <key>', 'with --checkpoints: the verifier key or PEM file to trust')
    .option('--json', 'print the report as JSON')
    .action(
      async (options: {
        program?: string;
        json?: boolean;
        checkpoints?: string;
        publicKey?: string;
      }) => {
        if (options.checkpoints === undefined) return runVerify(options);
        const { runVerifyCheckpoints } = await import('./auditProofs.ts');
        return runVerifyCheckpoints({
          ...options,
          checkpoints: options.checkpoints,
          describeBreak,
        });
      },
    );
  registerAuditProofCommands(audit);

  program
    .command('replay')
    .description('Rebuild the read models from the event history into a fresh schema')
    .option(
      '--projection <names>',
      `all, or a comma list of ${readModelTableNames.map((t) => t.slice(3)).join(', ')}`,
      projectionArgument,
    )
    .option('--from <position>', 'replay only the events after this position', positionArgument)
    .option('--verify', 'diff the rebuilt tables against the live ones row by row; exit 1 if any')
    .option('--swap', 'make the rebuilt tables live atomically (live ones kept in rm_backup_*)')
    .option('--keep', 'keep the rebuilt schema after --verify')
    .option('--engine <engine>', 'batched (default) or projector', engineArgument)
    .option('--json', 'print the report as JSON')
    .action(runReplay);

  program
    .command('export')
    .description('Stream the event history (global order) as JSON lines or CSV')
    .option('--program <program_id>', "only this program's events")
    .option('--since <timestamp>', 'recorded at or after', dateArgument)
    .option('--until <timestamp>', 'recorded at or before', dateArgument)
    .option('--format <format>', 'jsonl (default) or csv', formatArgument)
    .option('--output <file>', 'write to a file instead of stdout')
    .action(runExport);

  const history = program.command('history').description('State at a moment, from the events');
  history
    .command('member')
    .description("The member's ledger and state (balance, lifetime, tier) at a moment")
    .argument('<member_id>')
    .option('--as-of <timestamp>', 'the moment (default now)', dateArgument)
    .option('--program <program_id>', 'the program (found from the member id if omitted)')
    .option('--json', 'print as JSON')
    .action(runMemberHistory);
};

const runVerify = async (options: { program?: string; json?: boolean }): Promise<void> => {
  const [{ countEvents }, { verifyChains }] = await Promise.all([
    import('../audit/events.ts'),
    import('../audit/verify.ts'),
  ]);
  await withDatabase(async ({ db }) => {
    const total = await countEvents(db, options.program);
    const bar = progressBar('verify', total, options.json === true);
    const breaks: ChainBreak[] = [];
    const report = await verifyChains(db, {
      ...(options.program !== undefined && { programId: options.program }),
      onBreak: (b) => {
        breaks.push(b);
      },
      onProgress: bar.update,
    });
    bar.stop();
    if (options.json) console.log(json({ ...report, breaks }));
    else {
      for (const b of breaks) console.log(`BROKEN ${describeBreak(b)}`);
      console.log(
        `${report.streams} streams, ${report.events} events checked in ${(report.elapsedMs / 1000).toFixed(1)} s (${report.eventsPerSecond} events/s): ${report.ok ? 'no breaks' : `${report.breaks} break(s)`}`,
      );
    }
    if (!report.ok) process.exitCode = 1;
  });
};

const runReplay = async (options: {
  projection?: ReadModelTable[];
  from?: Position;
  verify?: boolean;
  swap?: boolean;
  keep?: boolean;
  engine?: 'batched' | 'projector';
  json?: boolean;
}): Promise<void> => {
  const [{ countEvents }, { replayReadModels }, { boundHeapGrowth, replayHeapGrowth }] =
    await Promise.all([
      import('../audit/events.ts'),
      import('../audit/replay.ts'),
      import('./heapGrowth.ts'),
    ]);
  const stopHeapWatch = boundHeapGrowth(replayHeapGrowth);
  await withDatabase(async ({ db }) => {
    const total = await countEvents(db);
    const bar = progressBar('replay', total, options.json === true);
    const differences: RowDifference[] = [];
    const report = await replayReadModels(db, {
      ...(options.projection && { tables: options.projection }),
      ...(options.from && { from: options.from }),
      verify: options.verify === true,
      swap: options.swap === true,
      keep: options.keep === true,
      ...(options.engine && { engine: options.engine }),
      onProgress: bar.update,
      onDifference: (d) => {
        if (options.json) differences.push(d);
        else console.log(`DIFF ${describeDifference(d)}`);
      },
    });
    bar.stop();
    if (options.json) console.log(json({ ...report, differences }));
    else printReplayReport(report);
    if (report.totalDifferences > 0) process.exitCode = 1;
  }).finally(stopHeapWatch);
};

const printReplayReport = (report: ReplayReport): void => {
  console.log(
    `replayed ${report.events} events into ${report.schema} in ${(report.replayMs / 1000).toFixed(1)} s (${report.eventsPerSecond} events/s)` +
      (report.lastPosition ? `, up to ${formatPosition(report.lastPosition)}` : '') +
      (report.caughtUp > 0 ? `, ${report.caughtUp} more under the lock` : ''),
  );
  if (report.differences)
    console.log(
      `verify: ${report.totalDifferences} difference(s) ${Object.entries(report.differences)
        .map(([t, n]) => `${t}=${n}`)
        .join(' ')}`,
    );
  if (report.swapped)
    console.log(
      `swapped: the rebuilt tables are live; the old ones are in ${report.swapped.backupSchema}`,
    );
  else if (report.kept) console.log(`the rebuilt tables are in schema ${report.schema}`);
};

const runExport = async (options: {
  program?: string;
  since?: Date;
  until?: Date;
  format?: ExportFormat;
  output?: string;
}): Promise<void> => {
  // The file is opened only once the database is: a refused open (another process holds
  // DATA_DIR) must not truncate an earlier export.
  let out: Writable = process.stdout;
  const openOutput = (): Writable => {
    if (options.output) out = createWriteStream(options.output);
    return out;
  };
  const exportOptions = {
    format: options.format ?? 'jsonl',
    ...(options.program !== undefined && { programId: options.program }),
    ...(options.since && { since: options.since }),
    ...(options.until && { until: options.until }),
  } as const;
  let bar = progressBar('export', 0, true);
  const progress = {
    ...(options.output && {
      onTotal: (total: number) => (bar = progressBar('export', total, false)),
    }),
    onProgress: (events: number) => bar.update(events),
  };
  const database = loadConfig().database;
  // On PostgreSQL one COPY streams the lines (exportCopy.ts), without kysely or
  // migrations; the embedded database pages through them.
  const { events } =
    database.kind === 'postgres'
      ? await (
          await import('../audit/exportCopy.ts')
        ).exportByCopy(database.url, openOutput(), { ...exportOptions, ...progress })
      : await withDatabase(async ({ db }) => {
          const [{ countEvents }, { exportEvents }] = await Promise.all([
            import('../audit/events.ts'),
            import('../audit/export.ts'),
          ]);
          progress.onTotal?.(options.output ? await countEvents(db, options.program) : 0);
          return exportEvents(db, openOutput(), { ...exportOptions, ...progress });
        });
  bar.stop();
  if (options.output) {
    out.end();
    await finished(out);
    console.error(`exported ${events} events to ${options.output}`);
  }
};

const runMemberHistory = async (
  memberId: string,
  options: { asOf?: Date; program?: string; json?: boolean },
): Promise<void> => {
  const [{ sql }, { memberHistory, streamReader }] = await Promise.all([
    import('kysely'),
    import('../audit/history.ts'),
  ]);
  await withDatabase(async ({ db }) => {
    let programId = options.program;
    if (programId === undefined) {
      const found = await sql<{ stream_name: string }>`
        select stream_name from incentable_streams
        where stream_name like 'member-%' and split_part(stream_name, '-', 3) = ${memberId}
        limit 1`.execute(db);
      programId = found.rows[0]?.stream_name.split('-')[1];
    }
    const result =
      programId === undefined
        ? null
        : await memberHistory(streamReader(db), {
            programId,
            memberId,
            asOf: options.asOf ?? new Date(),
          });
    if (!result) {
      console.error(`no member ${memberId} at that time`);
      process.exitCode = 1;
      return;
    }
    if (options.json) {
      console.log(json(result));
      return;
    }
    printMemberHistory(result);
  });
};

const printMemberHistory = (history: { member: MemberAsOf; ledger: LedgerLine[] }): void => {
  const m = history.member;
  console.log(
    `${m.id} (${m.email}) as of ${m.as_of}: balance ${m.balance}, lifetime ${m.lifetime_points}, tier ${m.tier ?? '-'}, ${m.status}`,
  );
  for (const line of history.ledger)
    console.log(
      `${line.occurred_at}  ${line.kind.padEnd(8)} ${String(line.points).padStart(8)}  -> ${String(line.balance_after).padStart(8)}  ${line.reason}`,
    );
};
