import { sql, type Kysely, type Transaction } from 'kysely';
import { comparePositions, type Position } from '../../domain/recordedEvent.ts';
import { projectReadModels, readModelsProjection } from '../../projections/readModels.ts';
import type { ReadModelTables } from '../../projections/readModelTables.ts';
import { readModelStatements } from '../db/migrations/002_readModels.ts';
import { leaderboardReadModelStatements } from '../db/migrations/010_leaderboardReadModels.ts';
import { ordersListingStatements } from '../db/migrations/011_ordersListing.ts';
import { reversalReadModelStatements } from '../db/migrations/012_reversalsAndOverrides.ts';
import { expiryLotsStatements } from '../db/migrations/013_expiryLots.ts';
import type { Database } from '../db/schema.ts';
import { globalPages, positionOf, readGlobalPage, replayPages, toRecorded } from './events.ts';
import {
  BatchedReplay,
  readModelTableNames,
  tableColumns,
  tableKeys,
  type ReadModelTable,
} from './replayProjector.ts';

/**
 * One row that differs between the live read models (`public`) and the rebuilt ones.
 * `missing`: the history yields the row, live lacks it; `extra`: live has a row the history does
 * not yield; `different`: both have it, `columns` differ (every column but the generated `seq`).
 */

/** The position of a page's last event, or null for an empty page. */
const lastOf = (page: readonly Parameters<typeof positionOf>[0][]): Position | null => {
  const last = page.at(-1);
  return last === undefined ? null : positionOf(last);
};

export type RowDifference = {
  table: ReadModelTable;
  key: Record<string, unknown>;
  kind: 'missing' | 'extra' | 'different';
  columns: string[];
  live: Record<string, unknown> | null;
  rebuilt: Record<string, unknown> | null;
};

export type ReplayOptions = {
  /** Tables to rebuild (and verify): default all. */
  tables?: readonly ReadModelTable[];
  /** Replay only the events after this position (the rebuilt tables then hold only their effect). */
  from?: Position | null;
  verify?: boolean;
  swap?: boolean;
  /** `batched` (default): the in-memory fold; `projector`: projections/readModels.ts per batch. */
  engine?: 'batched' | 'projector';
  batchSize?: number;
  /** Schema to build into; default `replay_<epoch ms>`. */
  schema?: string;
  /** Keep the rebuilt schema after a verify without swap (a plain replay always keeps it). */
  keep?: boolean;
  /** At most this many differences are read back per table (the count is always exact). */
  maxDifferencesPerTable?: number;
  onProgress?: (events: number) => void;
  onDifference?: (difference: RowDifference) => void | Promise<void>;
  now?: () => number;
};

export type ReplayReport = {
  schema: string;
  /** Whether the rebuilt schema still exists (it does not after a swap or a verify without keep). */
  kept: boolean;
  events: number;
  /** Events projected under the lock to reach the live checkpoint (verify, swap). */
  caughtUp: number;
  lastPosition: Position | null;
  elapsedMs: number;
  replayMs: number;
  eventsPerSecond: number;
  differences: Partial<Record<ReadModelTable, number>> | null;
  totalDifferences: number;
  swapped: { backupSchema: string; checkpoint: Position | null } | null;
};

const schemaName = /^[a-z_][a-z0-9_]{0,62}$/;

const liveCheckpoint = async (db: Kysely<Database>): Promise<Position | null> => {
  const result = await sql<{ commit: string; prepare: string }>`
    select commit_position::text as commit, prepare_position::text as prepare
    from incentable_subscriptions where name = ${readModelsProjection}`.execute(db);
  const row = result.rows[0];
  return row ? { commit: BigInt(row.commit), prepare: BigInt(row.prepare) } : null;
};

const later = (a: Position | null, b: Position | null): Position | null =>
  !a ? b : !b ? a : comparePositions(a, b) >= 0 ? a : b;

/**
 * Rebuilds the read models from the event history into a fresh schema, then optionally diffs them
 * against the live tables and/or makes them live.
 *
 * With `verify` or `swap` the replay runs up to the live projector's checkpoint read at the start;
 * then, in one transaction holding the live rm_* tables locked (SHARE for a verify, ACCESS
 * EXCLUSIVE for a swap: the live projector waits), it reads the checkpoint again and projects the
 * few events between the two with the live projector's own code, so both sides stand at exactly
 * the same position when compared or swapped.
 *
 * Swap, in that same transaction: the live rm_* tables move to schema `rm_backup_<epoch ms>`
 * (kept for the operator to inspect and drop), the rebuilt ones move into `public`, the replay
 * schema is dropped, and the `read-models` checkpoint becomes the later of the live checkpoint and
 * the replay's last position. A projector still running continues from its own checkpoint onto
 * the new tables (rename keeps no statement pointing at the old ones); if it was behind, it
 * re-projects events the replay already applied, which its idempotent writes make harmless.
 */
export const replayReadModels = async (
  db: Kysely<Database>,
  options: ReplayOptions = {},
): Promise<ReplayReport> => {
  const now = options.now ?? (() => performance.now());
  const started = now();
  const tables = options.tables ?? readModelTableNames;
  const schema = options.schema ?? `replay_${Date.now()}`;
  if (!schemaName.test(schema)) throw new RangeError(`invalid schema name ${schema}`);
  if (options.swap && (tables.length !== readModelTableNames.length || options.from))
    throw new RangeError('--swap needs every read model replayed from the start');
  const engine = options.engine ?? 'batched';
  // 1,000: what a batch holds while the next is read and its ledger written; more costs memory
  // for no more events/s (BENCHMARKS.md, "Replay memory: where the constants come from").
  const batchSize = options.batchSize ?? 1000;

  await createReadModelSchema(db, schema, { indexes: false });
  const target = options.verify || options.swap ? await liveCheckpoint(db) : null;

  const replayStarted = now();
  let events = 0;
  let lastPosition: Position | null = options.from ?? null;
  const batched = new BatchedReplay({ db: db as Kysely<unknown>, schema, tables });
  // Without a live checkpoint (no projector ever ran) `until` is null: the whole history.
  const range = { after: options.from ?? null, until: target, limit: batchSize };
  if (engine === 'batched') {
    for await (const page of replayPages(db, range)) {
      await batched.apply(
        page.map((row) => ({
          id: row.event_id,
          type: row.type,
          data: row.data,
          revision: BigInt(row.stream_revision),
          programId: row.program_id,
        })),
      );
      events += page.length;
      lastPosition = lastOf(page) ?? lastPosition;
      options.onProgress?.(events);
    }
  } else {
    for await (const page of globalPages(db, range)) {
      const recorded = page.map(toRecorded);
      await db
        .transaction()
        .execute((tx) =>
          projectReadModels(
            recorded,
            (tx as unknown as Kysely<ReadModelTables>).withSchema(schema),
          ),
        );
      events += page.length;
      lastPosition = lastOf(page) ?? lastPosition;
      options.onProgress?.(events);
    }
  }
  if (engine === 'batched') await batched.finish();
  await createReadModelSchema(db, schema, { tables: false });
  if (engine === 'batched') await batched.foldLots();
  const replayMs = now() - replayStarted;

  let differences: Partial<Record<ReadModelTable, number>> | null = null;
  let totalDifferences = 0;
  let swapped: ReplayReport['swapped'] = null;
  let caughtUp = 0;
  if (options.verify || options.swap) {
    await db.transaction().execute(async (tx) => {
      const mode = options.swap ? 'access exclusive' : 'share';
      await sql
        .raw(
          `lock table ${readModelTableNames.map((t) => `public.${t}`).join(', ')} in ${mode} mode`,
        )
        .execute(tx);
      const checkpoint = await liveCheckpoint(tx);
      if (checkpoint && (!lastPosition || comparePositions(checkpoint, lastPosition) > 0)) {
        const inTx = (tx as unknown as Kysely<ReadModelTables>).withSchema(schema);
        for (;;) {
          const page = await readGlobalPage(tx, {
            after: lastPosition,
            until: checkpoint,
            limit: batchSize,
          });
          if (page.length === 0) break;
          await projectReadModels(page.map(toRecorded), inTx);
          caughtUp += page.length;
          lastPosition = lastOf(page) ?? lastPosition;
        }
      }
      if (options.verify) {
        differences = {};
        for (const table of tables) {
          const count = await diffTable(tx, {
            schema,
            table,
            limit: options.maxDifferencesPerTable ?? 100_000,
            onDifference: options.onDifference,
          });
          differences[table] = count;
          totalDifferences += count;
        }
      }
      if (options.swap) {
        const backupSchema = `rm_backup_${Date.now()}`;
        await sql`create schema ${sql.id(backupSchema)}`.execute(tx);
        for (const table of readModelTableNames) {
          await sql`alter table ${sql.id('public', table)} set schema ${sql.id(backupSchema)}`.execute(
            tx,
          );
          await sql`alter table ${sql.id(schema, table)} set schema public`.execute(tx);
        }
        await sql`drop schema ${sql.id(schema)}`.execute(tx);
        const position = later(checkpoint, lastPosition);
        if (position) {
          await sql`
            insert into incentable_subscriptions (name, commit_position, prepare_position, updated_at)
            values (${readModelsProjection}, ${position.commit.toString()}::xid8, ${position.prepare.toString()}::bigint, now())
            on conflict (name) do update set commit_position = excluded.commit_position,
              prepare_position = excluded.prepare_position, updated_at = excluded.updated_at`.execute(
            tx,
          );
        }
        swapped = { backupSchema, checkpoint: position };
      }
    });
  }

  const kept = !options.swap && (!options.verify || options.keep === true);
  if (!kept && !options.swap) await sql`drop schema ${sql.id(schema)} cascade`.execute(db);
  const elapsedMs = now() - started;
  return {
    schema,
    kept,
    events,
    caughtUp,
    lastPosition,
    elapsedMs,
    replayMs,
    eventsPerSecond: replayMs > 0 ? Math.round((events / replayMs) * 1000) : events,
    differences,
    totalDifferences,
    swapped,
  };
};

/**
 * Creates the schema and the rm_* tables in it from the migration's own DDL (run under a local
 * search_path). Indexes other than primary keys are built after the bulk load: much faster.
 */
export const createReadModelSchema = async (
  db: Kysely<Database>,
  schema: string,
  parts: { tables?: boolean; indexes?: boolean },
): Promise<void> => {
  await db.transaction().execute(async (tx) => {
    if (parts.tables !== false) await sql`create schema ${sql.id(schema)}`.execute(tx);
    await sql`select set_config('search_path', ${schema}, true)`.execute(tx);
    for (const statement of [
      ...readModelStatements,
      ...leaderboardReadModelStatements,
      ...ordersListingStatements,
      ...reversalReadModelStatements,
      ...expiryLotsStatements,
    ]) {
      const isIndex = /^\s*create index/i.test(statement);
      if (isIndex ? parts.indexes !== false : parts.tables !== false)
        await sql.raw(statement).execute(tx);
    }
  });
};

/** Pairs live and rebuilt rows by primary key; reports every pair that is not identical. */
const diffTable = async (
  tx: Transaction<Database>,
  args: {
    schema: string;
    table: ReadModelTable;
    limit: number;
    onDifference: ReplayOptions['onDifference'];
  },
): Promise<number> => {
  const keys = tableKeys[args.table];
  const [firstKey] = keys;
  if (firstKey === undefined) throw new Error(`table ${args.table} has no key`);
  const columns = tableColumns[args.table].map(([name]) => name);
  const q = (name: string) => `"${name}"`;
  const join = keys.map((k) => `l.${q(k)} = r.${q(k)}`).join(' and ');
  const liveRow = columns.map((c) => `l.${q(c)}`).join(', ');
  const rebuiltRow = columns.map((c) => `r.${q(c)}`).join(', ');
  const where = `l.${q(firstKey)} is null or r.${q(firstKey)} is null or (${liveRow}) is distinct from (${rebuiltRow})`;
  const from = `from public.${q(args.table)} l full join ${q(args.schema)}.${q(args.table)} r on ${join} where ${where}`;
  const counted = await sql.raw<{ n: string }>(`select count(*)::text as n ${from}`).execute(tx);
  const count = Number(counted.rows[0]?.n ?? 0);
  if (count === 0 || !args.onDifference) return count;
  const rows = await sql
    .raw<{
      live: Record<string, unknown> | null;
      rebuilt: Record<string, unknown> | null;
    }>(
      `select case when l.${q(firstKey)} is null then null else to_jsonb(l) - 'seq' end as live,
        case when r.${q(firstKey)} is null then null else to_jsonb(r) - 'seq' end as rebuilt
       ${from} order by ${keys.map((k) => `coalesce(l.${q(k)}, r.${q(k)})`).join(', ')} limit ${args.limit}`,
    )
    .execute(tx);
  for (const row of rows.rows) {
    const either = row.live ?? row.rebuilt;
    if (either === null) continue; // a full join yields no row that both sides lack
    const key = Object.fromEntries(keys.map((k) => [k, either[k]]));
    const kind = row.live === null ? 'missing' : row.rebuilt === null ? 'extra' : 'different';
    const { live, rebuilt } = row;
    const differing =
      live !== null && rebuilt !== null
        ? columns.filter((c) => JSON.stringify(live[c]) !== JSON.stringify(rebuilt[c]))
        : columns;
    await args.onDifference({
      table: args.table,
      key,
      kind,
      columns: differing,
      live: row.live,
      rebuilt: row.rebuilt,
    });
  }
  return count;
};
