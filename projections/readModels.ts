import { sql, type Kysely } from 'kysely';
import { lotsAfter, type PointsLot } from '../domain/pointsAccount.ts';
import type { RecordedEvent } from '../domain/recordedEvent.ts';
import { projected, readModelRows, type RowMutation } from './readModelRows.ts';
import {
  readModelTableNames,
  tableColumns,
  tableKeys,
  type ReadModelTable,
  type RowOf,
} from './readModelColumns.ts';
import type { ReadModelTables } from './readModelTables.ts';

/** The subscription name of this projector: its checkpoint key and its lock. */
export const readModelsProjection = 'read-models';

type Db = Kysely<ReadModelTables>;

/**
 * Folds domain events into the read models: writes, with kysely, what projections/readModelRows.ts
 * says each event does. Runs inside the subscription's transaction, with its checkpoint. Every
 * mutation is idempotent, so handling an event twice leaves the same rows; a recorded fact never
 * throws here. Also what a replay's `projector` engine and its catch-up run, withSchema(): so every
 * statement is built with the query builder, which re-targets its table references, not raw SQL.
 */
export const projectReadModels = async (
  events: readonly RecordedEvent[],
  db: Db,
): Promise<void> => {
  // Consecutive points events (the bulk of any history) are written together; any other event
  // first writes the run before it, so every row still sees the events in their order.
  let run: PointsMutation[] = [];
  for (const recorded of events) {
    const mutations = readModelRows(projected(recorded));
    if (mutations.length > 0 && mutations.every(isPointsMutation)) {
      run.push(...mutations);
      continue;
    }
    if (run.length > 0) await applyPointsRun(run, db);
    run = [];
    for (const mutation of mutations) await applyMutation(mutation, db);
  }
  if (run.length > 0) await applyPointsRun(run, db);
};

type LedgerInsert = Extract<RowMutation, { kind: 'insert'; table: 'rm_ledger' }> & {
  then?: readonly FoldLots[];
};
type FoldLots = Extract<RowMutation, { kind: 'foldLots' }>;
type MemberPointsUpdate = Extract<RowMutation, { kind: 'update'; table: 'rm_members' }> & {
  key: { member_id: string };
  set: Pick<RowOf<'rm_members'>, 'balance' | 'lifetime_points' | 'updated_at'> &
    Partial<Pick<RowOf<'rm_members'>, 'last_activity_at'>>;
};
/** What a points event writes: its ledger row (then its lots) and its member's balance. */
type PointsMutation = LedgerInsert | MemberPointsUpdate;

const pointsColumns = new Set(['balance', 'lifetime_points', 'updated_at', 'last_activity_at']);

const isPointsMutation = (mutation: RowMutation): mutation is PointsMutation => {
  if (mutation.kind === 'insert' && mutation.table === 'rm_ledger')
    return (mutation.then ?? []).every((next) => next.kind === 'foldLots');
  if (mutation.kind !== 'update' || mutation.table !== 'rm_members') return false;
  const { key, set } = mutation;
  return (
    mutation.unless === undefined &&
    mutation.append === undefined &&
    typeof key.member_id === 'string' &&
    Object.keys(key).length === 1 &&
    set.balance !== undefined &&
    set.lifetime_points !== undefined &&
    set.updated_at !== undefined &&
    Object.keys(set).every((column) => pointsColumns.has(column))
  );
};

/** A member's row as a run of points events leaves it. */
type MemberChange = {
  member_id: string;
  balance: number;
  lifetime_points: number;
  /** From the run's last award or deduction; null keeps the row's. */
  last_activity_at: string | null;
  updated_at: string;
  /** The lots after the run's new events; null (no new event) keeps the row's. */
  expiry_lots: PointsLot[] | null;
  oldest_lot_at: string | null;
};

/**
 * A run of points events in two statements instead of two per event: the ledger rows in event
 * order, then each member's row as the last of its events leaves it (balance, lifetime points,
 * updated_at; last_activity_at from its last award or deduction, else unchanged). The same rows
 * as `applyMutation` writes one mutation at a time.
 */
const applyPointsRun = async (run: readonly PointsMutation[], db: Db): Promise<void> => {
  const ledger: RowOf<'rm_ledger'>[] = [];
  const lotsOf = new Map<string, readonly FoldLots[]>();
  const members = new Map<string, MemberChange>();
  for (const mutation of run) {
    if (mutation.kind === 'insert') {
      ledger.push(mutation.row);
      if (mutation.then) lotsOf.set(mutation.row.event_id, mutation.then);
      continue;
    }
    const { member_id: memberId } = mutation.key;
    const set = mutation.set;
    members.set(memberId, {
      member_id: memberId,
      balance: set.balance,
      lifetime_points: set.lifetime_points,
      last_activity_at: set.last_activity_at ?? members.get(memberId)?.last_activity_at ?? null,
      updated_at: set.updated_at,
      expiry_lots: null,
      oldest_lot_at: null,
    });
  }
  const folds: FoldLots[] = [];
  for (let start = 0; start < ledger.length; start += 1000) {
    const inserted = await db
      .insertInto('rm_ledger')
      .values(ledger.slice(start, start + 1000))
      .onConflict((oc) => oc.column('event_id').doNothing())
      .returning('event_id')
      .execute();
    for (const row of inserted) folds.push(...(lotsOf.get(row.event_id) ?? []));
  }
  await foldLots(folds, members, db);
  const changes = sql<MemberChange>`(select * from json_to_recordset(${JSON.stringify([...members.values()])}::json)
    as x(member_id text, balance bigint, lifetime_points bigint, last_activity_at timestamptz,
      updated_at timestamptz, expiry_lots jsonb, oldest_lot_at timestamptz))`;
  await db
    .updateTable('rm_members as m')
    .from(changes.as('v'))
    .set((eb) => ({
      balance: eb.ref('v.balance'),
      lifetime_points: eb.ref('v.lifetime_points'),
      last_activity_at: sql<string | null>`coalesce(v.last_activity_at, m.last_activity_at)`,
      updated_at: eb.ref('v.updated_at'),
      expiry_lots: sql<string>`coalesce(v.expiry_lots, m.expiry_lots)`,
      oldest_lot_at: sql<
        string | null
      >`case when v.expiry_lots is null then m.oldest_lot_at else v.oldest_lot_at end`,
    }))
    .whereRef('m.member_id', '=', 'v.member_id')
    .execute();
};

/**
 * Folds the run's new points events into each member's lots, as the points account does
 * (domain/pointsAccount.ts `lotsAfter`). Only the events whose ledger row this run inserted come
 * here (a `then` of the insert): an event handled twice takes its points once.
 */
const foldLots = async (
  folds: readonly FoldLots[],
  members: Map<string, MemberChange>,
  db: Db,
): Promise<void> => {
  if (folds.length === 0) return;
  const memberIds = [...new Set(folds.map((fold) => fold.memberId))];
  const rows = await db
    .selectFrom('rm_members')
    .select(['member_id', 'expiry_lots'])
    .where('member_id', 'in', memberIds)
    .execute();
  const lots = new Map(rows.map((row) => [row.member_id, row.expiry_lots]));
  for (const fold of folds)
    lots.set(fold.memberId, lotsAfter(lots.get(fold.memberId) ?? [], fold.event));
  for (const [memberId, memberLots] of lots) {
    const change = members.get(memberId);
    if (!change) continue;
    change.expiry_lots = memberLots;
    change.oldest_lot_at = memberLots[0]?.at ?? null;
  }
};

/** Columns kysely must be handed as json text (the pg driver would send an array as one). */
const jsonColumns = new Map<ReadModelTable, ReadonlySet<string>>(
  readModelTableNames.map((table) => [
    table,
    new Set(tableColumns[table].filter(([, type]) => type === 'jsonb').map(([name]) => name)),
  ]),
);

const encoded = (table: ReadModelTable, values: object): Record<string, unknown> => {
  const json = jsonColumns.get(table);
  return Object.fromEntries(
    Object.entries(values).map(([column, value]) => [
      column,
      json?.has(column) ? JSON.stringify(value) : value,
    ]),
  );
};

/**
 * The read models as kysely sees a table chosen at run time. The one loosening here: the rows
 * and keys are checked against ReadModelTables where they are made (RowOf in readModelRows.ts),
 * and kysely cannot follow `mutation.table` through its union of tables.
 */
type AnyTables = Record<string, Record<string, unknown>>;

/** One mutation, as a statement or two; the same rows as applyPointsRun for points events. */
const applyMutation = async (mutation: RowMutation, db: Db): Promise<void> => {
  const loose = db as unknown as Kysely<AnyTables>;
  switch (mutation.kind) {
    case 'insert': {
      const keys = [...tableKeys[mutation.table]];
      const insert = loose
        .insertInto(mutation.table)
        .values(encoded(mutation.table, mutation.row))
        .onConflict((oc) => oc.columns(keys).doNothing());
      if (!mutation.then) {
        await insert.execute();
        return;
      }
      const inserted = await insert.returning(keys).execute();
      if (inserted.length > 0) for (const next of mutation.then) await applyMutation(next, db);
      return;
    }
    case 'update': {
      const appended = Object.fromEntries(
        Object.entries(mutation.append ?? {}).map(([column, items]) => [
          column,
          sql`${sql.ref(column)} || ${JSON.stringify(items)}::jsonb`,
        ]),
      );
      let update = loose
        .updateTable(mutation.table)
        .set({ ...encoded(mutation.table, mutation.set), ...appended });
      for (const [column, value] of Object.entries(mutation.key))
        update = update.where(column, '=', value);
      const unless = Object.entries(mutation.unless ?? {});
      if (unless.length > 0)
        update = update.where((eb) =>
          eb.not(eb.and(unless.map(([column, value]) => eb(column, '=', value)))),
        );
      await update.execute();
      return;
    }
    case 'upsert': {
      const keys = [...tableKeys[mutation.table]];
      await loose
        .insertInto(mutation.table)
        .values(encoded(mutation.table, mutation.row))
        .onConflict((oc) => oc.columns(keys).doUpdateSet(encoded(mutation.table, mutation.set)))
        .execute();
      return;
    }
    case 'delete': {
      let remove = loose.deleteFrom(mutation.table);
      for (const [column, value] of Object.entries(mutation.where))
        remove = remove.where(column, '=', value);
      await remove.execute();
      return;
    }
    case 'foldLots': {
      const row = await db
        .selectFrom('rm_members')
        .select('expiry_lots')
        .where('member_id', '=', mutation.memberId)
        .executeTakeFirst();
      if (!row) return;
      const lots = lotsAfter(row.expiry_lots, mutation.event);
      await db
        .updateTable('rm_members')
        .set({ expiry_lots: JSON.stringify(lots), oldest_lot_at: lots[0]?.at ?? null })
        .where('member_id', '=', mutation.memberId)
        .execute();
      return;
    }
    case 'rankPeriod':
      await rankPeriod(db, mutation);
      return;
    case 'correctPeriod':
      await correctPeriodStandings(db, mutation);
      return;
  }
};

/**
 * The period's whole final ranking from rm_standings, ranked as the domain ranks (points down,
 * equal points sharing a place, the first to reach a score first), withdrawn members aside.
 */
const rankPeriod = async (
  db: Db,
  period: { leaderboardId: string; periodStart: string },
): Promise<void> => {
  await db
    .insertInto('rm_period_standings')
    .columns(['leaderboard_id', 'period_start', 'ordinal', 'position', 'member_id', 'points'])
    .expression(
      db
        .selectFrom('rm_standings')
        .select((eb) => [
          'leaderboard_id',
          sql<string>`${period.periodStart}::timestamptz`.as('period_start'),
          eb.fn
            .agg<number>('row_number')
            .over((ob) => ob.orderBy('points', 'desc').orderBy('reached_seq'))
            .as('ordinal'),
          eb.fn
            .agg<number>('rank')
            .over((ob) => ob.orderBy('points', 'desc'))
            .as('position'),
          'member_id',
          'points',
        ])
        .where('leaderboard_id', '=', period.leaderboardId)
        .where('withdrawn', '=', false),
    )
    .execute();
};

/**
 * An ended period's standings after a reversal of an award it counted: the member's final
 * points lose the award's, and the period is ranked again as at its end (points descending,
 * equal points sharing a place, the earlier place first among equals). Ordinals move in two
 * steps, through negatives, so no two rows share one on the way. Also what a replay runs, on its
 * own schema, for the same correction.
 */
export const correctPeriodStandings = async (
  db: Db,
  correction: { leaderboardId: string; periodStart: string; memberId: string; points: number },
): Promise<void> => {
  const { leaderboardId, memberId, points } = correction;
  const periodStart = new Date(correction.periodStart);
  await db
    .updateTable('rm_period_standings')
    .set({ points: sql<number>`greatest(0, points - ${points})` })
    .where('leaderboard_id', '=', leaderboardId)
    .where('period_start', '=', periodStart)
    .where('member_id', '=', memberId)
    .execute();
  const ranked = db
    .selectFrom('rm_period_standings as s')
    .select((eb) => [
      's.ordinal',
      eb.fn
        .agg<number>('row_number')
        .over((ob) => ob.orderBy('s.points', 'desc').orderBy('s.ordinal'))
        .as('new_ordinal'),
      eb.fn
        .agg<number>('rank')
        .over((ob) => ob.orderBy('s.points', 'desc'))
        .as('new_position'),
    ])
    .where('s.leaderboard_id', '=', leaderboardId)
    .where('s.period_start', '=', periodStart);
  await db
    .updateTable('rm_period_standings')
    .from(ranked.as('r'))
    .set((eb) => ({
      ordinal: sql<number>`-${eb.ref('r.new_ordinal')}`,
      position: eb.ref('r.new_position'),
    }))
    .where('rm_period_standings.leaderboard_id', '=', leaderboardId)
    .where('rm_period_standings.period_start', '=', periodStart)
    .whereRef('rm_period_standings.ordinal', '=', 'r.ordinal')
    .execute();
  await db
    .updateTable('rm_period_standings')
    .set({ ordinal: sql<number>`-ordinal` })
    .where('leaderboard_id', '=', leaderboardId)
    .where('period_start', '=', periodStart)
    .where('ordinal', '<', 0)
    .execute();
};
