import { sql, type Kysely } from 'kysely';
import type { DomainEvent } from '../../domain/events.ts';
import { defaultTopN } from '../../domain/leaderboard.ts';
import type { PointsLot } from '../../domain/pointsAccount.ts';
import { backfillExpiryLots, foldLotInPlace } from '../db/migrations/013_expiryLots.ts';
import { isActivity, ledgerLineOf } from '../../projections/ledgerLine.ts';
import { correctPeriodStandings } from '../../projections/readModels.ts';
import type { ReadModelTables } from '../../projections/readModelTables.ts';
import {
  readModelTableNames,
  tableColumns,
  tableKeys,
  type ReadModelTable,
} from './readModelColumns.ts';

export { readModelTableNames, tableColumns, tableKeys, type ReadModelTable };

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

const writtenOrder = (row: OrderRow): Row => {
  const history: { status: string; at: string }[] = [];
  for (let i = 0; i + 1 < row.history.length; i += 2) {
    const [status, at] = row.history.slice(i, i + 2);
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
 * The read-model projector's fold (projections/readModels.ts), row for row, but in memory: rows
 * that events update (members, programs, rewards, orders, leaderboards, standings) stay in maps
 * until `finish`, rows that are only ever inserted (ledger, ended periods) are written each batch.
 * Every case mirrors the statement the live projector runs, including its no-ops (an update of a
 * row that does not exist, an insert of one that does); `replay --verify` against the live tables
 * is the proof. Memory grows with the number of entities, not of events.
 */
export class BatchedReplay {
  readonly #db: Kysely<unknown>;
  readonly #schema: string;
  readonly #tables: ReadonlySet<ReadModelTable>;
  readonly #programs = new Map<string, Row>();
  readonly #members = new Map<string, Row>();
  readonly #rewards = new Map<string, Row>();
  readonly #orders = new Map<string, OrderRow>();
  readonly #leaderboards = new Map<string, Row>();
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
    for (const recorded of events) this.#project(recorded);
    const ledger = this.#ledger;
    const periods = this.#periods;
    const periodStandings = this.#periodStandings;
    const corrections = this.#corrections;
    this.#ledger = [];
    this.#periods = [];
    this.#periodStandings = [];
    this.#corrections = [];
    await this.#writing;
    this.#writing = (async () => {
      if (this.#tables.has('rm_ledger') && ledger.length > 0)
        await insertRows(this.#db, this.#schema, 'rm_ledger', ledger);
      if (this.#tables.has('rm_leaderboard_periods') && periods.length > 0)
        await insertRows(this.#db, this.#schema, 'rm_leaderboard_periods', periods);
      if (this.#tables.has('rm_period_standings') && periodStandings.length > 0)
        await insertRows(this.#db, this.#schema, 'rm_period_standings', periodStandings);
      if (this.#tables.has('rm_period_corrections') && corrections.length > 0)
        await insertRows(this.#db, this.#schema, 'rm_period_corrections', corrections);
      // Rare, so one statement each, as live: on rows this or an earlier batch has written.
      if (this.#tables.has('rm_period_standings'))
        for (const c of corrections)
          await correctPeriodStandings(
            this.#db.withSchema(this.#schema) as unknown as Kysely<ReadModelTables>,
            {
              leaderboardId: c.leaderboard_id as string,
              periodStart: c.period_start as string,
              memberId: c.member_id as string,
              points: c.points as number,
            },
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
    await write('rm_programs', this.#programs.values(), this.#programs);
    await write('rm_members', this.#members.values(), this.#members);
    await write('rm_rewards', this.#rewards.values(), this.#rewards);
    await write('rm_orders', mapped(this.#orders.values(), writtenOrder), this.#orders);
    await write('rm_leaderboards', this.#leaderboards.values(), this.#leaderboards);
    await write('rm_standings', flattened(this.#standings.values()), this.#standings);
    if (this.#lotsFromLedger)
      await this.#db.transaction().execute(async (tx) => {
        await sql`select set_config('search_path', ${this.#schema}, true)`.execute(tx);
        await backfillExpiryLots(tx);
      });
  }

  /** Members' lots are folded from the rebuilt ledger at the end (see `finish`). */
  get #lotsFromLedger(): boolean {
    return this.#tables.has('rm_members') && this.#tables.has('rm_ledger');
  }

  #project(recorded: ReplayEvent): void {
    const event = { type: recorded.type, data: recorded.data } as DomainEvent;
    const programId = recorded.programId ?? '';
    switch (event.type) {
      case 'ProgramCreated': {
        const d = event.data;
        if (this.#programs.has(d.programId)) return;
        this.#programs.set(d.programId, {
          program_id: d.programId,
          name: d.name,
          tiers: d.tiers,
          tier_basis: d.tierBasis,
          points_expiry_days: d.pointsExpiryDays,
          points_expiry_mode: d.pointsExpiryMode ?? 'inactivity',
          timezone: d.timezone,
          notification_email: d.notificationEmail,
          created_at: d.at,
          updated_at: d.at,
        });
        return;
      }
      case 'ProgramUpdated': {
        const row = this.#programs.get(event.data.programId);
        if (!row) return;
        const c = event.data.changes;
        if (c.name !== undefined) row.name = c.name;
        if (c.tiers !== undefined) row.tiers = c.tiers;
        if (c.tierBasis !== undefined) row.tier_basis = c.tierBasis;
        if (c.pointsExpiryDays !== undefined) row.points_expiry_days = c.pointsExpiryDays;
        if (c.pointsExpiryMode !== undefined) row.points_expiry_mode = c.pointsExpiryMode;
        if (c.timezone !== undefined) row.timezone = c.timezone;
        if (c.notificationEmail !== undefined) row.notification_email = c.notificationEmail;
        row.updated_at = event.data.at;
        return;
      }
      case 'MemberRegistered': {
        const d = event.data;
        if (this.#members.has(d.memberId)) return;
        this.#members.set(d.memberId, {
          program_id: this.#shared(this.#programs, d.programId, 'program_id'),
          member_id: d.memberId,
          email: d.email,
          name: d.name,
          external_id: d.externalId,
          attributes: d.attributes,
          tier: d.tier,
          balance: 0,
          lifetime_points: 0,
          last_activity_at: null,
          expiry_lots: [],
          oldest_lot_at: null,
          status: 'active',
          created_at: d.at,
          updated_at: d.at,
          tier_locked_until: null,
        });
        return;
      }
      case 'MemberUpdated': {
        const row = this.#members.get(event.data.memberId);
        if (!row) return;
        const c = event.data.changes;
        if (c.email !== undefined) row.email = c.email;
        if (c.name !== undefined) row.name = c.name;
        if (c.externalId !== undefined) row.external_id = c.externalId;
        if (c.attributes !== undefined) row.attributes = c.attributes;
        row.updated_at = event.data.at;
        return;
      }
      case 'MemberTierChanged': {
        const row = this.#members.get(event.data.memberId);
        if (!row) return;
        row.tier = event.data.newTier;
        row.updated_at = event.data.at;
        return;
      }
      case 'MemberTierLocked': {
        const row = this.#members.get(event.data.memberId);
        if (!row) return;
        row.tier_locked_until = event.data.lockedUntil;
        row.updated_at = event.data.at;
        return;
      }
      case 'MemberDeactivated':
      case 'MemberReactivated': {
        const row = this.#members.get(event.data.memberId);
        if (!row) return;
        row.status = event.type === 'MemberDeactivated' ? 'deactivated' : 'active';
        row.updated_at = event.data.at;
        return;
      }
      case 'PointsAwarded':
      case 'PointsDeducted':
      case 'PointsExpired':
      case 'PointsRefunded':
      case 'PointsReversed': {
        const d = event.data;
        const active = isActivity(event);
        this.#ledger.push({
          event_id: recorded.id,
          program_id: programId,
          member_id: d.memberId,
          transaction_id: d.transactionId,
          ...ledgerLineOf(event),
          reason: d.reason,
          balance_after: d.newBalance,
          occurred_at: d.at,
        });
        const row = this.#members.get(d.memberId);
        if (!row) return;
        row.balance = d.newBalance;
        row.lifetime_points = d.lifetimePoints;
        if (active) row.last_activity_at = d.at;
        row.updated_at = d.at;
        // With the ledger rebuilt too, `finish` folds the lots from it, a member at a time, instead
        // of holding every member's in memory (a lot per unspent award: the most of a replay's
        // memory on a history of awards).
        if (this.#lotsFromLedger) return;
        const lots = foldLotInPlace(row.expiry_lots as PointsLot[], event);
        row.expiry_lots = lots;
        row.oldest_lot_at = lots[0]?.at ?? null;
        return;
      }
      case 'RewardRedeemed': {
        const row = this.#members.get(event.data.memberId);
        if (row) row.last_activity_at = event.data.at;
        return;
      }
      case 'RewardCreated': {
        const d = event.data;
        if (this.#rewards.has(d.rewardId)) return;
        this.#rewards.set(d.rewardId, {
          program_id: this.#shared(this.#programs, programId, 'program_id'),
          reward_id: d.rewardId,
          name: d.name,
          points_cost: d.pointsCost,
          stock: d.stock,
          kind: d.kind,
          active: true,
          created_at: d.at,
          updated_at: d.at,
        });
        return;
      }
      case 'RewardChanged': {
        const row = this.#rewards.get(event.data.rewardId);
        if (!row) return;
        const c = event.data.changes;
        if (c.name !== undefined) row.name = c.name;
        if (c.pointsCost !== undefined) row.points_cost = c.pointsCost;
        if (c.stock !== undefined) row.stock = c.stock;
        if (c.active !== undefined) row.active = c.active;
        row.updated_at = event.data.at;
        return;
      }
      case 'StockReserved':
      case 'StockReleased': {
        const row = this.#rewards.get(event.data.rewardId);
        if (!row) return;
        row.stock = event.data.remaining;
        row.updated_at = event.data.at;
        return;
      }
      case 'OrderPlaced': {
        const d = event.data;
        if (this.#orders.has(d.orderId)) return;
        const reward = this.#rewards.get(d.rewardId);
        this.#orders.set(d.orderId, {
          program_id: this.#shared(this.#programs, programId, 'program_id'),
          order_id: d.orderId,
          member_id: this.#shared(this.#members, d.memberId, 'member_id'),
          reward_id: this.#shared(this.#rewards, d.rewardId, 'reward_id'),
          reward_name: reward?.name === d.rewardName ? reward.name : d.rewardName,
          kind: d.kind,
          points_spent: d.pointsSpent,
          status: 'redeemed',
          carrier: null,
          tracking_number: null,
          history: ['redeemed', d.at],
          created_at: d.at,
          updated_at: d.at,
        });
        return;
      }
      case 'OrderShipped': {
        const row = this.#orders.get(event.data.orderId);
        if (!row || row.status === 'shipped') return;
        row.carrier = event.data.carrier;
        row.tracking_number = event.data.trackingNumber;
        this.#setOrderStatus(row, 'shipped', event.data.at);
        return;
      }
      case 'OrderDelivered': {
        const row = this.#orders.get(event.data.orderId);
        if (row && row.status !== 'delivered')
          this.#setOrderStatus(row, 'delivered', event.data.at);
        return;
      }
      case 'OrderCancelled': {
        const row = this.#orders.get(event.data.orderId);
        if (row && row.status !== 'cancelled')
          this.#setOrderStatus(row, 'cancelled', event.data.at);
        return;
      }
      case 'LeaderboardCreated': {
        const d = event.data;
        if (this.#leaderboards.has(d.leaderboardId)) return;
        this.#leaderboards.set(d.leaderboardId, {
          program_id: this.#shared(this.#programs, programId, 'program_id'),
          leaderboard_id: d.leaderboardId,
          name: d.name,
          period: d.period,
          timezone: d.timezone,
          top_n: d.topN ?? defaultTopN,
          period_start: d.periodStart,
          period_end: d.periodEnd,
          created_at: d.at,
        });
        return;
      }
      case 'ScoreRecorded': {
        const d = event.data;
        let board = this.#standings.get(d.leaderboardId);
        if (!board) this.#standings.set(d.leaderboardId, (board = new Map<string, Row>()));
        const row = board.get(d.memberId);
        if (row) {
          row.points = d.score;
          row.reached_seq = Number(recorded.revision);
        } else {
          board.set(d.memberId, {
            leaderboard_id: this.#shared(this.#leaderboards, d.leaderboardId, 'leaderboard_id'),
            member_id: this.#shared(this.#members, d.memberId, 'member_id'),
            points: d.score,
            reached_seq: Number(recorded.revision),
            withdrawn: false,
          });
        }
        return;
      }
      case 'ScoreReversed': {
        const row = this.#standings.get(event.data.leaderboardId)?.get(event.data.memberId);
        if (row) row.points = event.data.score;
        return;
      }
      case 'MemberWithdrawn':
      case 'MemberReinstated': {
        const row = this.#standings.get(event.data.leaderboardId)?.get(event.data.memberId);
        if (!row) return;
        row.withdrawn = event.type === 'MemberWithdrawn';
        row.points = event.data.score;
        return;
      }
      case 'PeriodCorrected': {
        const d = event.data;
        if (this.#correctionKeys.has(d.transactionId)) return;
        this.#correctionKeys.add(d.transactionId);
        this.#corrections.push({
          transaction_id: d.transactionId,
          leaderboard_id: d.leaderboardId,
          period_start: d.periodStart,
          member_id: d.memberId,
          points: d.points,
          reversal_of: d.reversalOf,
          corrected_at: d.at,
        });
        return;
      }
      case 'PositionChanged':
        return;
      case 'PeriodEnded': {
        const d = event.data;
        // The key is a timestamptz: compare instants, not spellings.
        const key = `${d.leaderboardId}\u0000${Date.parse(d.periodStart)}`;
        if (!this.#periodKeys.has(key)) {
          this.#periodKeys.add(key);
          this.#periods.push({
            leaderboard_id: d.leaderboardId,
            period_start: d.periodStart,
            period_end: d.periodEnd,
            standings: d.standings,
            ended_at: d.at,
          });
          this.#rankPeriod(d.leaderboardId, d.periodStart);
        }
        this.#standings.delete(d.leaderboardId);
        return;
      }
      case 'PeriodOpened': {
        const row = this.#leaderboards.get(event.data.leaderboardId);
        if (!row) return;
        row.period_start = event.data.periodStart;
        row.period_end = event.data.periodEnd;
        return;
      }
      case 'LeaderboardTimezoneChanged': {
        const row = this.#leaderboards.get(event.data.leaderboardId);
        if (!row) return;
        row.timezone = event.data.timezone;
        return;
      }
      // Freezing moves no points; a deferred refund shows once it is paid (PointsRefunded).
      case 'PointsFrozen':
      case 'PointsUnfrozen':
      case 'RefundDeferred':
        return;
      // As live (projections/readModels.ts): no read model shows reservations.
      case 'MemberReservationRevoked':
      case 'IdentifierReserved':
      case 'IdentifierReleased':
        return;
    }
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

  #setOrderStatus(row: OrderRow, status: 'shipped' | 'delivered' | 'cancelled', at: string): void {
    row.status = status;
    row.history = row.history.concat(status, at);
    row.updated_at = at;
  }

  /**
   * `value` as the string the owning row already holds in `column`, when there is one: kept rows
   * that repeat an id (an order's member, a standing's board) share it instead of each keeping
   * the copy parsed from its own event.
   */
  #shared(owners: ReadonlyMap<string, Row>, value: string, column: string): string {
    const held = owners.get(value)?.[column];
    return typeof held === 'string' ? held : value;
  }
}
