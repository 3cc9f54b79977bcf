import { sql, type Kysely } from 'kysely';
import type { PointsLot } from '../../domain/pointsAccount.ts';
import { backfillExpiryLots, foldLotInPlace } from '../db/migrations/013_expiryLots.ts';
import { tablesOf, type Database } from '../db/schema.ts';
import { correctPeriodStandings } from '../../projections/readModels.ts';
import {
  tableColumns,
  tableKeys,
  type ReadModelTable,
} from '../../projections/readModelColumns.ts';
import {
  readModelRows,
  type ProjectedEvent,
  type RowMutation,
} from '../../projections/readModelRows.ts';
import type { ReadModelTables } from '../../projections/readModelTables.ts';

type Row = Record<string, unknown>;

/**
 * What the fold reads of an event: of the metadata only the program id, so a replay need not
 * read (and parse) the rest.
 */
export type ReplayEvent = {
  id: string;
  type: string;
  data: unknown;
  revision: bigint;
  programId: string | null;
};

/**
 * Rows per insert statement, each statement's rows one json text while it is bound and sent. At
 * 1,000 a batch's ledger is one statement (an event writes at most one ledger row). A
 * million-event replay peaked at 180-183 MB, against 190-198 MB at 5,000 rows and 169-172 MB at
 * 250, which cost ~10 % of the events/s in round trips (bench/audit/seed.ts, /usr/bin/time).
 */
const rowsPerStatement = 1000;

/**
 * A json parameter that spells out its rows when the driver binds it, once, and lets them go.
 * pg's promise API, which kysely calls, keeps a finished statement's parameters reachable until
 * V8's next full collection: passed as a string, every batch's json text outlived the young
 * generation and was copied into the old one: a million-event replay promoted 92 MB instead of
 * 40 MB (node --trace-gc-nvp) and peaked at 215-235 MB instead of 183-187 MB. pg binds it
 * through `toPostgres`, PGlite through JSON.stringify and so `toJSON`.
 */
const boundOnce = (rows: readonly Row[]) => {
  let pending: readonly Row[] | null = rows;
  const take = (): readonly Row[] => {
    if (!pending) throw new Error('a replay insert was bound twice');
    const taken = pending;
    pending = null;
    return taken;
  };
  return { toPostgres: () => JSON.stringify(take()), toJSON: take };
};

/** Multi-row inserts through one json parameter each: one round trip per 1,000 rows. */
export const insertRows = async <DB>(
  db: Kysely<DB>,
  schema: string,
  table: ReadModelTable,
  rows: Iterable<Row>,
): Promise<void> => {
  const columns = tableColumns[table];
  const names = sql.raw(columns.map(([name]) => `"${name}"`).join(', '));
  const definition = sql.raw(columns.map(([name, type]) => `"${name}" ${type}`).join(', '));
  const insert = async (chunk: Row[]) => {
    await sql`insert into ${sql.id(schema, table)} (${names})
      select ${names} from json_to_recordset(${boundOnce(chunk)}::json) as x(${definition})`.execute(
      db,
    );
  };
  let chunk: Row[] = [];
  for (const row of rows) {
    chunk.push(row);
    if (chunk.length === rowsPerStatement) {
      await insert(chunk);
      chunk = [];
    }
  }
  if (chunk.length > 0) await insert(chunk);
};

/** A history entry of an order, as the fold says it. */
type OrderStatus = { status: string; at: string };

/**
 * An order as the replay keeps it: its history flat, `[status, at, status, at, …]`, one exactly
 * sized array instead of an array grown by push and an object per entry (~160 bytes less per
 * order in bench/audit's history); `writtenOrder` spells it out as the live projector's
 * `[{ status, at }, …]`.
 */
type OrderRow = Row & { history: readonly string[] };

const flatHistory = (history: readonly OrderStatus[]): string[] =>
  history.flatMap(({ status, at }) => [status, at]);

const writtenOrder = (row: OrderRow): Row => {
  const history: OrderStatus[] = [];
  for (let i = 0; i + 1 < row.history.length; i += 2)
    history.push({ status: row.history[i] ?? '', at: row.history[i + 1] ?? '' });
  return { ...row, history };
};

function* mapped<T>(items: Iterable<T>, map: (item: T) => Row): Iterable<Row> {
  for (const item of items) yield map(item);
}

function* flattened(groups: Iterable<Map<string, Row>>): Iterable<Row> {
  for (const group of groups) yield* group.values();
}

/** Tables whose rows the replay keeps in memory by their one key column, until `finish`. */
type KeptTable = 'rm_programs' | 'rm_members' | 'rm_rewards' | 'rm_orders' | 'rm_leaderboards';
/** Tables whose rows are only ever inserted: written each batch. */
type WrittenTable = 'rm_ledger' | 'rm_leaderboard_periods' | 'rm_period_corrections';

const isKept = (table: ReadModelTable): table is KeptTable =>
  table === 'rm_programs' ||
  table === 'rm_members' ||
  table === 'rm_rewards' ||
  table === 'rm_orders' ||
  table === 'rm_leaderboards';

/**
 * Columns of a kept row that repeat a string another kept row holds (an order's member, a
 * standing's board): `[column, owner table, the column naming the owner, the owner's column]`.
 * The row shares the owner's string instead of each keeping the copy parsed from its own event.
 */
const sharedColumns: Partial<
  Record<ReadModelTable, readonly (readonly [string, KeptTable, string, string])[]>
> = {
  rm_members: [['program_id', 'rm_programs', 'program_id', 'program_id']],
  rm_rewards: [['program_id', 'rm_programs', 'program_id', 'program_id']],
  rm_orders: [
    ['program_id', 'rm_programs', 'program_id', 'program_id'],
    ['member_id', 'rm_members', 'member_id', 'member_id'],
    ['reward_id', 'rm_rewards', 'reward_id', 'reward_id'],
    ['reward_name', 'rm_rewards', 'reward_id', 'name'],
  ],
  rm_leaderboards: [['program_id', 'rm_programs', 'program_id', 'program_id']],
  rm_standings: [
    ['leaderboard_id', 'rm_leaderboards', 'leaderboard_id', 'leaderboard_id'],
    ['member_id', 'rm_members', 'member_id', 'member_id'],
  ],
};

/** The one key column of a kept table (each has one: tableKeys). */
const keyColumnOf = (table: KeptTable): string => tableKeys[table][0] ?? table;

const holds = (row: Row, values: object): boolean =>
  Object.entries(values).every(([column, value]) => row[column] === value);

/**
 * The read-model fold (projections/readModelRows.ts) applied in memory: rows that events update
 * (members, programs, rewards, orders, leaderboards, standings) stay in maps until `finish`, rows
 * that are only ever inserted (ledger, ended periods, corrections) are written each batch. Each
 * mutation does to the kept rows what the live projector's statement does to the table, including
 * its no-ops (an update of a row that does not exist, an insert of one that does); `replay
 * --verify` against the live tables is the proof. Memory grows with the number of entities, not
 * of events.
 */
export class BatchedReplay {
  readonly #db: Kysely<Database>;
  readonly #schema: string;
  readonly #tables: ReadonlySet<ReadModelTable>;
  readonly #kept: Record<KeptTable, Map<string, Row>> = {
    rm_programs: new Map(),
    rm_members: new Map(),
    rm_rewards: new Map(),
    rm_orders: new Map(),
    rm_leaderboards: new Map(),
  };
  readonly #standings = new Map<string, Map<string, Row>>();
  /** Keys of the inserted-only rows, but the ledger's (see `#insertWritten`). */
  readonly #writtenKeys = {
    rm_leaderboard_periods: new Set<string>(),
    rm_period_corrections: new Set<string>(),
  };
  #written: Record<WrittenTable | 'rm_period_standings', Row[]> = emptyWritten();
  /** Corrections of ended periods: applied to the standings after the batch's rows are written. */
  #corrections: Extract<RowMutation, { kind: 'correctPeriod' }>[] = [];
  #writing: Promise<void> = Promise.resolve();

  constructor(args: { db: Kysely<Database>; schema: string; tables: readonly ReadModelTable[] }) {
    this.#db = args.db;
    this.#schema = args.schema;
    this.#tables = new Set(args.tables);
  }

  /**
   * Folds a batch (in the global order) and starts writing its ledger and period rows. The write
   * runs while the caller reads and folds the next batch (PostgreSQL and this process each on a
   * core); the next `apply` or `finish` waits for it first, so rows still go in batch order.
   */
  async apply(events: readonly ReplayEvent[]): Promise<void> {
    for (const recorded of events)
      for (const mutation of readModelRows(recorded as ProjectedEvent)) this.#apply(mutation);
    const written = this.#written;
    const corrections = this.#corrections;
    this.#written = emptyWritten();
    this.#corrections = [];
    await this.#writing;
    this.#writing = (async () => {
      for (const table of writeOrder)
        if (this.#tables.has(table) && written[table].length > 0)
          await insertRows(this.#db, this.#schema, table, written[table]);
      // Rare, so one statement each, as live: on rows this or an earlier batch has written.
      if (this.#tables.has('rm_period_standings'))
        for (const correction of corrections)
          await correctPeriodStandings(
            tablesOf<ReadModelTables>(this.#db).withSchema(this.#schema),
            correction,
          );
    })();
    // Awaited by the next apply or finish; an early failure must not surface as unhandled.
    this.#writing.catch(() => {});
  }

  /**
   * Writes the rows kept in memory, in creation order (so `seq` follows it, as live), straight
   * from the maps, and lets each table's rows go once written. The fold is over after this.
   */
  async finish(): Promise<void> {
    await this.#writing;
    const write = async (table: ReadModelTable, rows: Iterable<Row>, kept: { clear(): void }) => {
      if (this.#tables.has(table)) await insertRows(this.#db, this.#schema, table, rows);
      kept.clear();
    };
    const kept = this.#kept;
    await write('rm_programs', kept.rm_programs.values(), kept.rm_programs);
    await write('rm_members', kept.rm_members.values(), kept.rm_members);
    await write('rm_rewards', kept.rm_rewards.values(), kept.rm_rewards);
    const orders = kept.rm_orders as Map<string, OrderRow>;
    await write('rm_orders', mapped(orders.values(), writtenOrder), orders);
    await write('rm_leaderboards', kept.rm_leaderboards.values(), kept.rm_leaderboards);
    await write('rm_standings', flattened(this.#standings.values()), this.#standings);
    if (this.#lotsFromLedger)
      await this.#db.transaction().execute(async (tx) => {
        await sql`select set_config('search_path', ${this.#schema}, true)`.execute(tx);
        await backfillExpiryLots<Database>(tx);
      });
  }

  /** Members' lots are folded from the rebuilt ledger at the end (see `finish`). */
  get #lotsFromLedger(): boolean {
    return this.#tables.has('rm_members') && this.#tables.has('rm_ledger');
  }

  #apply(mutation: RowMutation): void {
    switch (mutation.kind) {
      case 'insert':
        if (this.#insert(mutation.table, mutation.row) && mutation.then)
          for (const next of mutation.then) this.#apply(next);
        return;
      case 'update': {
        const row = this.#find(mutation.table, mutation.key);
        if (!row || (mutation.unless && holds(row, mutation.unless))) return;
        Object.assign(row, mutation.set);
        for (const [column, items] of Object.entries(mutation.append ?? {}))
          row[column] =
            mutation.table === 'rm_orders' && column === 'history'
              ? (row[column] as string[]).concat(flatHistory(items as OrderStatus[]))
              : [...(row[column] as unknown[]), ...(items as unknown[])];
        return;
      }
      case 'upsert': {
        const row = this.#find(mutation.table, mutation.row);
        if (row) Object.assign(row, mutation.set);
        else this.#insert(mutation.table, mutation.row);
        return;
      }
      case 'delete':
        this.#delete(mutation.table, mutation.where);
        return;
      case 'foldLots': {
        // With the ledger rebuilt too, `finish` folds the lots from it, a member at a time, instead
        // of holding every member's in memory (a lot per unspent award: the most of a replay's
        // memory on a history of awards).
        if (this.#lotsFromLedger) return;
        const row = this.#kept.rm_members.get(mutation.memberId);
        if (!row) return;
        const lots = foldLotInPlace(row.expiry_lots as PointsLot[], mutation.event);
        row.expiry_lots = lots;
        row.oldest_lot_at = lots[0]?.at ?? null;
        return;
      }
      case 'rankPeriod':
        this.#rankPeriod(mutation.leaderboardId, mutation.periodStart);
        return;
      case 'correctPeriod':
        this.#corrections.push(mutation);
        return;
    }
  }

  /** Keeps or queues the row unless its key is taken; whether it was new. */
  #insert(table: ReadModelTable, row: Row): boolean {
    if (this.#find(table, row)) return false;
    for (const [column, owners, via, ownerColumn] of sharedColumns[table] ?? []) {
      const held = this.#kept[owners].get(row[via] as string)?.[ownerColumn];
      if (typeof held === 'string' && held === row[column]) row[column] = held;
    }
    if (isKept(table)) {
      if (table === 'rm_orders') row.history = flatHistory(row.history as OrderStatus[]);
      this.#kept[table].set(row[keyColumnOf(table)] as string, row);
      return true;
    }
    if (table === 'rm_standings') {
      const leaderboardId = row.leaderboard_id as string;
      let board = this.#standings.get(leaderboardId);
      if (!board) this.#standings.set(leaderboardId, (board = new Map<string, Row>()));
      board.set(row.member_id as string, row);
      return true;
    }
    return this.#insertWritten(table, row);
  }

  /**
   * Queues an inserted-only row, unless its key was queued before. Ledger rows are not checked:
   * a replay reads each event once and an event writes at most one (its id is the key), and a
   * set of a million event ids would be the most of the replay's memory.
   */
  #insertWritten(table: WrittenTable | 'rm_period_standings', row: Row): boolean {
    if (table !== 'rm_ledger' && table !== 'rm_period_standings') {
      // The keys hold timestamptz columns: compare instants, not spellings.
      const key = tableColumns[table]
        .filter(([name]) => (tableKeys[table] as readonly string[]).includes(name))
        .map(([name, type]) =>
          type === 'timestamptz' ? Date.parse(row[name] as string) : row[name],
        )
        .join('\u0000');
      if (this.#writtenKeys[table].has(key)) return false;
      this.#writtenKeys[table].add(key);
    }
    this.#written[table].push(row);
    return true;
  }

  /** The kept row with `key`'s values; none for rows the replay does not keep. */
  #find(table: ReadModelTable, key: Row): Row | undefined {
    if (isKept(table)) return this.#kept[table].get(key[keyColumnOf(table)] as string);
    if (table === 'rm_standings')
      return this.#standings.get(key.leaderboard_id as string)?.get(key.member_id as string);
    return undefined;
  }

  #delete(table: ReadModelTable, where: Row): void {
    if (table === 'rm_standings' && Object.keys(where).join() === 'leaderboard_id') {
      this.#standings.delete(where.leaderboard_id as string);
      return;
    }
    const groups = isKept(table)
      ? [this.#kept[table]]
      : table === 'rm_standings'
        ? [...this.#standings.values()]
        : [];
    if (groups.length === 0)
      throw new Error(`the replay writes ${table} as it goes and cannot delete from it`);
    for (const group of groups)
      for (const [key, row] of group) if (holds(row, where)) group.delete(key);
  }

  /**
   * The period's whole final ranking from its standing rows, as the live projector's window
   * functions rank them: points descending then reached_seq (ordinal), equal points sharing the
   * first one's position.
   */
  #rankPeriod(leaderboardId: string, periodStart: string): void {
    const board = this.#standings.get(leaderboardId);
    if (!board) return;
    const sorted = [...board.values()]
      .filter((row) => row.withdrawn !== true)
      .sort(
        (a, b) =>
          (b.points as number) - (a.points as number) ||
          (a.reached_seq as number) - (b.reached_seq as number),
      );
    let previous: { points: unknown; position: number } | null = null;
    sorted.forEach((row, i) => {
      const position =
        previous !== null && previous.points === row.points ? previous.position : i + 1;
      previous = { points: row.points, position };
      this.#written.rm_period_standings.push({
        leaderboard_id: row.leaderboard_id,
        period_start: periodStart,
        ordinal: i + 1,
        position,
        member_id: row.member_id,
        points: row.points,
      });
    });
  }
}

/** The order the batch's inserted-only rows are written in: periods before their standings. */
const writeOrder = [
  'rm_ledger',
  'rm_leaderboard_periods',
  'rm_period_standings',
  'rm_period_corrections',
] as const;

const emptyWritten = (): Record<WrittenTable | 'rm_period_standings', Row[]> => ({
  rm_ledger: [],
  rm_leaderboard_periods: [],
  rm_period_standings: [],
  rm_period_corrections: [],
});
