import { sql, type Kysely } from 'kysely';
import type { PointsLot } from '../../domain/pointsAccount.ts';
import { backfillExpiryLots, foldLotInPlace } from '../db/migrations/013_expiryLots.ts';
import { correctPeriodStandings } from '../../projections/readModels.ts';
import {
  rowChangeOf,
  type EntityTable,
  type FoldedEvent,
  type Row,
  type RowChange,
} from '../../projections/readModelRows.ts';
import type { ReadModelTables } from '../../projections/readModelTables.ts';
import {
  readModelTableNames,
  tableColumns,
  tableKeys,
  type ReadModelTable,
} from '../../projections/readModelColumns.ts';

export { readModelTableNames, tableColumns, tableKeys, type ReadModelTable };

/**
 * What the fold reads of an event: of the metadata only the program id, so a replay need not
 * read (and parse) the rest.
 */
export type ReplayEvent = FoldedEvent;

/**
 * Rows per insert statement, each statement's rows one json text while it is bound and sent. At
 * 1,000 a batch's ledger is one statement (an event writes at most one ledger row); fewer cost
 * round trips, more cost memory (BENCHMARKS.md, "Replay memory: where the constants come from").
 */
const rowsPerStatement = 1000;

/**
 * A json parameter that spells out its rows when the driver binds it, once, and lets them go.
 * pg's promise API, which kysely calls, keeps a finished statement's parameters reachable until
 * V8's next full collection: passed as a string, every batch's json text outlived the young
 * generation and was copied into the old one (BENCHMARKS.md, "Replay memory"). pg binds it
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
export const insertRows = async (
  db: Kysely<unknown>,
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

/**
 * An order as the fold keeps it: its history flat, `[status, at, status, at, …]`, one exactly
 * sized array instead of an array grown by push and an object per entry (~160 bytes less per
 * order in bench/audit's history); `writtenOrder` spells it out as the live projector's
 * `[{ status, at }, …]`.
 */
type OrderRow = Row & { status: string; history: readonly string[] };

const flatHistory = (history: unknown): string[] =>
  (history as { status: string; at: string }[]).flatMap(({ status, at }) => [status, at]);

const writtenOrder = (row: Row): Row => {
  const flat = (row as OrderRow).history;
  const history: { status: string; at: string }[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const [status, at] = flat.slice(i, i + 2);
    if (status !== undefined && at !== undefined) history.push({ status, at });
  }
  return { ...row, history };
};

function* mapped<T>(items: Iterable<T>, map: (item: T) => Row): Iterable<Row> {
  for (const item of items) yield map(item);
}

function* flattened(groups: Iterable<Map<string, Row>>): Iterable<Row> {
  for (const group of groups) yield* group.values();
}

/**
 * Columns of a new row that repeat another row's key, and that row's table: a kept row shares
 * the string its owner holds instead of keeping the copy parsed from its own event.
 */
const references: Partial<Record<ReadModelTable, readonly (readonly [string, EntityTable])[]>> = {
  rm_members: [['program_id', 'rm_programs']],
  rm_rewards: [['program_id', 'rm_programs']],
  rm_orders: [
    ['program_id', 'rm_programs'],
    ['member_id', 'rm_members'],
    ['reward_id', 'rm_rewards'],
  ],
  rm_leaderboards: [['program_id', 'rm_programs']],
  rm_standings: [
    ['leaderboard_id', 'rm_leaderboards'],
    ['member_id', 'rm_members'],
  ],
};

/**
 * The read-model fold (projections/readModelRows.ts) applied in memory: rows that events update
 * (members, programs, rewards, orders, leaderboards, standings) stay in maps until `finish`, rows
 * that are only ever inserted (ledger, ended periods) are written each batch. Each change is
 * applied as the live projector's SQL applies it (projections/readModels.ts), including its
 * no-ops (an update of a row that does not exist, an insert of one that does); `replay --verify`
 * against the live tables is the proof. Memory grows with the number of entities, not of events.
 */
export class BatchedReplay {
  readonly #db: Kysely<unknown>;
  readonly #schema: string;
  readonly #tables: ReadonlySet<ReadModelTable>;
  readonly #entities: Record<EntityTable, Map<string, Row>> = {
    rm_programs: new Map(),
    rm_members: new Map(),
    rm_rewards: new Map(),
    rm_orders: new Map(),
    rm_leaderboards: new Map(),
  };
  readonly #standings = new Map<string, Map<string, Row>>();
  readonly #periodKeys = new Set<string>();
  readonly #correctionKeys = new Set<string>();
  #ledger: Row[] = [];
  /** Corrections of ended periods: written, then applied to the standings, after the batch's. */
  #corrections: Row[] = [];
  #periods: Row[] = [];
  #periodStandings: Row[] = [];
  #writing: Promise<void> = Promise.resolve();

  constructor(args: { db: Kysely<unknown>; schema: string; tables: readonly ReadModelTable[] }) {
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
    for (const recorded of events) {
      const change = rowChangeOf(recorded);
      if (change !== null) this.#applyChange(change);
    }
    const ledger = this.#ledger;
    const periods = this.#periods;
    const periodStandings = this.#periodStandings;
    const corrections = this.#corrections;
    this.#ledger = [];
    this.#periods = [];
    this.#periodStandings = [];
    this.#corrections = [];
    await this.#writing;
    this.#writing = this.#write({ ledger, periods, periodStandings, corrections });
    // Awaited by the next apply or finish; an early failure must not surface as unhandled.
    this.#writing.catch(() => {});
  }

  async #write(batch: {
    ledger: Row[];
    periods: Row[];
    periodStandings: Row[];
    corrections: Row[];
  }): Promise<void> {
    const insert = async (table: ReadModelTable, rows: Row[]) => {
      if (this.#tables.has(table) && rows.length > 0)
        await insertRows(this.#db, this.#schema, table, rows);
    };
    await insert('rm_ledger', batch.ledger);
    await insert('rm_leaderboard_periods', batch.periods);
    await insert('rm_period_standings', batch.periodStandings);
    await insert('rm_period_corrections', batch.corrections);
    // Rare, so one statement each, as live: on rows this or an earlier batch has written.
    if (this.#tables.has('rm_period_standings'))
      for (const c of batch.corrections)
        await correctPeriodStandings(
          this.#db.withSchema(this.#schema) as unknown as Kysely<ReadModelTables>,
          {
            leaderboardId: c.leaderboard_id as string,
            periodStart: c.period_start as string,
            memberId: c.member_id as string,
            points: c.points as number,
          },
        );
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
    const entities = this.#entities;
    await write('rm_programs', entities.rm_programs.values(), entities.rm_programs);
    await write('rm_members', entities.rm_members.values(), entities.rm_members);
    await write('rm_rewards', entities.rm_rewards.values(), entities.rm_rewards);
    await write('rm_orders', mapped(entities.rm_orders.values(), writtenOrder), entities.rm_orders);
    await write('rm_leaderboards', entities.rm_leaderboards.values(), entities.rm_leaderboards);
    await write('rm_standings', flattened(this.#standings.values()), this.#standings);
  }

  /**
   * Members' lots, folded from the rebuilt ledger a page of members at a time (see `#points`).
   * Call it after `finish`, once the indexes are built: it reads the ledger by member.
   */
  async foldLots(): Promise<void> {
    if (!this.#lotsFromLedger) return;
    await this.#db.transaction().execute(async (tx) => {
      await sql`select set_config('search_path', ${this.#schema}, true)`.execute(tx);
      await backfillExpiryLots(tx);
    });
  }

  /** Members' lots are folded from the rebuilt ledger at the end (see `foldLots`). */
  get #lotsFromLedger(): boolean {
    return this.#tables.has('rm_members') && this.#tables.has('rm_ledger');
  }

  #applyChange(change: RowChange): void {
    switch (change.op) {
      case 'create':
        this.#create(change.table, change.key, change.row);
        return;
      case 'update': {
        const row = this.#entities[change.table].get(change.key);
        if (row) Object.assign(row, change.set);
        return;
      }
      case 'points':
        this.#points(change);
        return;
      case 'orderStatus': {
        const row = this.#entities.rm_orders.get(change.key) as OrderRow | undefined;
        if (!row || row.status === change.status) return;
        Object.assign(row, change.set);
        row.status = change.status;
        row.history = row.history.concat(change.status, change.at);
        row.updated_at = change.at;
        return;
      }
      case 'score':
        this.#score(change.row);
        return;
      case 'standing': {
        const { leaderboardId, memberId } = change.key;
        const row = this.#standings.get(leaderboardId)?.get(memberId);
        if (row) Object.assign(row, change.set);
        return;
      }
      case 'periodEnded':
        this.#endPeriod(change);
        return;
      case 'periodCorrected': {
        const transactionId = change.row.transaction_id as string;
        if (this.#correctionKeys.has(transactionId)) return;
        this.#correctionKeys.add(transactionId);
        this.#corrections.push(change.row);
        return;
      }
    }
  }

  #create(table: EntityTable, key: string, row: Row): void {
    const rows = this.#entities[table];
    if (rows.has(key)) return;
    this.#share(table, row);
    if (table === 'rm_orders') {
      const reward = this.#entities.rm_rewards.get(row.reward_id as string);
      if (reward !== undefined && reward.name === row.reward_name) row.reward_name = reward.name;
      row.history = flatHistory(row.history);
    }
    rows.set(key, row);
  }

  #points(change: Extract<RowChange, { op: 'points' }>): void {
    this.#ledger.push(change.ledger);
    const row = this.#entities.rm_members.get(change.memberId);
    if (!row) return;
    Object.assign(row, change.set);
    // With the ledger rebuilt too, `foldLots` folds the lots from it, a member at a time, instead
    // of holding every member's in memory (a lot per unspent award: the most of a replay's
    // memory on a history of awards).
    if (this.#lotsFromLedger) return;
    const lots = foldLotInPlace(row.expiry_lots as PointsLot[], change.event);
    row.expiry_lots = lots;
    row.oldest_lot_at = lots[0]?.at ?? null;
  }

  #score(row: Row): void {
    const leaderboardId = row.leaderboard_id as string;
    let board = this.#standings.get(leaderboardId);
    if (!board) this.#standings.set(leaderboardId, (board = new Map<string, Row>()));
    const held = board.get(row.member_id as string);
    if (held) {
      held.points = row.points;
      held.reached_seq = row.reached_seq;
      return;
    }
    this.#share('rm_standings', row);
    board.set(row.member_id as string, row);
  }

  #endPeriod(change: Extract<RowChange, { op: 'periodEnded' }>): void {
    // The key is a timestamptz: compare instants, not spellings.
    const key = `${change.leaderboardId}\u0000${Date.parse(change.periodStart)}`;
    if (!this.#periodKeys.has(key)) {
      this.#periodKeys.add(key);
      this.#periods.push(change.row);
      this.#rankPeriod(change.leaderboardId, change.periodStart);
    }
    this.#standings.delete(change.leaderboardId);
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
      this.#periodStandings.push({
        leaderboard_id: row.leaderboard_id,
        period_start: periodStart,
        ordinal: i + 1,
        position,
        member_id: row.member_id,
        points: row.points,
      });
    });
  }

  /** The new row's references to kept rows, as the strings those rows hold (see `references`). */
  #share(table: ReadModelTable, row: Row): void {
    for (const [column, owner] of references[table] ?? []) {
      const held = this.#entities[owner].get(row[column] as string)?.[column];
      if (typeof held === 'string') row[column] = held;
    }
  }
}
