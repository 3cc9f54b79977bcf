import { sql, type Kysely } from 'kysely';
import { lotsAfter, type PointsLot } from '../domain/pointsAccount.ts';
import type { RecordedEvent } from '../domain/recordedEvent.ts';
import { tableColumns } from './readModelColumns.ts';
import {
  entityKeys,
  rowChangeOf,
  type EntityTable,
  type FoldedEvent,
  type PeriodCorrection,
  type Row,
  type RowChange,
} from './readModelRows.ts';
import type { ReadModelTables } from './readModelTables.ts';

/** The subscription name of this projector: its checkpoint key and its lock. */
export const readModelsProjection = 'read-models';

type Db = Kysely<ReadModelTables>;

type PointsChange = Extract<RowChange, { op: 'points' }>;

/**
 * Folds domain events into the read models: each event's change (readModelRows.ts) as SQL. Runs
 * inside the subscription's transaction, with its checkpoint. Every write sets absolute values
 * taken from the event (the balance after, the score after), so handling an event twice leaves
 * the same rows; a recorded fact never throws here.
 */
export const projectReadModels = async (
  events: readonly RecordedEvent[],
  db: Db,
): Promise<void> => {
  // Consecutive points events (the bulk of any history) are written together; any other change
  // first writes the run before it, so every row still sees the events in their order.
  let run: PointsChange[] = [];
  for (const recorded of events) {
    const change = rowChangeOf(foldedOf(recorded));
    if (change === null) continue;
    if (change.op === 'points') {
      run.push(change);
      continue;
    }
    if (run.length > 0) await projectPoints(run, db);
    run = [];
    await project(change, db);
  }
  if (run.length > 0) await projectPoints(run, db);
};

const foldedOf = (recorded: RecordedEvent): FoldedEvent => ({
  id: recorded.id,
  type: recorded.type,
  data: recorded.data,
  revision: recorded.revision,
  programId: recorded.metadata.programId ?? null,
});

/** The JSON columns of each table: kysely binds them as text. */
const jsonColumns = new Map(
  Object.entries(tableColumns).map(([table, columns]) => [
    table,
    columns.filter(([, type]) => type === 'jsonb').map(([name]) => name),
  ]),
);

/** `row` as kysely binds it: JSON columns as their text. Kysely cannot type a table picked at run time. */
const bound = (table: keyof ReadModelTables, row: Row): never => {
  const json = jsonColumns.get(table) ?? [];
  if (!json.some((column) => column in row)) return row as never;
  const copy = { ...row };
  for (const column of json) if (column in copy) copy[column] = JSON.stringify(copy[column]);
  return copy as never;
};

const project = async (change: Exclude<RowChange, PointsChange>, db: Db): Promise<void> => {
  switch (change.op) {
    case 'create':
      await db
        .insertInto(change.table)
        .values(bound(change.table, change.row))
        .onConflict((oc) => oc.column(entityKeys[change.table]).doNothing())
        .execute();
      return;
    case 'update':
      await updateEntity(db, change.table, change.key, bound(change.table, change.set));
      return;
    case 'orderStatus':
      await db
        .updateTable('rm_orders')
        .set({
          ...change.set,
          status: change.status,
          history:
            sql`history || ${JSON.stringify([{ status: change.status, at: change.at }])}::jsonb` as never,
          updated_at: change.at,
        })
        .where('order_id', '=', change.key)
        .where('status', '!=', change.status)
        .execute();
      return;
    case 'score':
      await db
        .insertInto('rm_standings')
        .values(change.row as never)
        .onConflict((oc) =>
          oc.columns(['leaderboard_id', 'member_id']).doUpdateSet({
            points: change.row.points as number,
            reached_seq: change.row.reached_seq as number,
          }),
        )
        .execute();
      return;
    case 'standing':
      await db
        .updateTable('rm_standings')
        .set(change.set as never)
        .where('leaderboard_id', '=', change.key.leaderboardId)
        .where('member_id', '=', change.key.memberId)
        .execute();
      return;
    case 'periodEnded':
      await endPeriod(db, change);
      return;
    case 'periodCorrected': {
      const inserted = await db
        .insertInto('rm_period_corrections')
        .values(change.row as never)
        .onConflict((oc) => oc.column('transaction_id').doNothing())
        .returning('transaction_id')
        .execute();
      if (inserted.length > 0) await correctPeriodStandings(db, change.correction);
      return;
    }
  }
};

const updateEntity = async (
  db: Db,
  table: Exclude<EntityTable, 'rm_orders'>,
  key: string,
  set: never,
): Promise<void> => {
  // One table at a time: kysely types a where on a table picked at run time only per table.
  switch (table) {
    case 'rm_programs':
      await db.updateTable(table).set(set).where('program_id', '=', key).execute();
      return;
    case 'rm_members':
      await db.updateTable(table).set(set).where('member_id', '=', key).execute();
      return;
    case 'rm_rewards':
      await db.updateTable(table).set(set).where('reward_id', '=', key).execute();
      return;
    case 'rm_leaderboards':
      await db.updateTable(table).set(set).where('leaderboard_id', '=', key).execute();
      return;
  }
};

/**
 * The event carries the top ten; the whole final ranking is the period's scores, which
 * rm_standings holds until now: ranked as the domain ranks (points down, equal points sharing a
 * place, the first to reach a score first). Only with the period's own row, so a period recorded
 * twice keeps its first ranking whole.
 */
const endPeriod = async (db: Db, change: Extract<RowChange, { op: 'periodEnded' }>) => {
  const inserted = await db
    .insertInto('rm_leaderboard_periods')
    .values(bound('rm_leaderboard_periods', change.row))
    .onConflict((oc) => oc.columns(['leaderboard_id', 'period_start']).doNothing())
    .returning('leaderboard_id')
    .execute();
  if (inserted.length > 0) {
    await db
      .insertInto('rm_period_standings')
      .columns(['leaderboard_id', 'period_start', 'ordinal', 'position', 'member_id', 'points'])
      .expression(
        db
          .selectFrom('rm_standings')
          .select((eb) => [
            'leaderboard_id',
            sql<string>`${change.periodStart}::timestamptz`.as('period_start'),
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
          .where('leaderboard_id', '=', change.leaderboardId)
          .where('withdrawn', '=', false),
      )
      .execute();
  }
  await db.deleteFrom('rm_standings').where('leaderboard_id', '=', change.leaderboardId).execute();
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
 * as the changes applied one at a time.
 */
const projectPoints = async (run: readonly PointsChange[], db: Db): Promise<void> => {
  const members = new Map<string, MemberChange>();
  for (const { memberId, set } of run)
    members.set(memberId, {
      member_id: memberId,
      balance: set.balance as number,
      lifetime_points: set.lifetime_points as number,
      last_activity_at:
        (set.last_activity_at as string | undefined) ??
        members.get(memberId)?.last_activity_at ??
        null,
      updated_at: set.updated_at as string,
      expiry_lots: null,
      oldest_lot_at: null,
    });
  // Built with the query builder, not raw SQL: a replay runs this projector withSchema(), which
  // re-targets only the builder's table references.
  const fresh = new Set<string>();
  for (let start = 0; start < run.length; start += 1000) {
    const inserted = await db
      .insertInto('rm_ledger')
      .values(run.slice(start, start + 1000).map((change) => change.ledger as never))
      .onConflict((oc) => oc.column('event_id').doNothing())
      .returning('event_id')
      .execute();
    for (const row of inserted) fresh.add(row.event_id);
  }
  await foldLots(
    run.filter((change) => fresh.has(change.ledger.event_id as string)),
    members,
    db,
  );
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
 * Folds the run's new points events (those whose ledger row this run inserted: an event handled
 * twice takes its points once) into each member's lots, as the points account does
 * (domain/pointsAccount.ts `lotsAfter`). Lots follow from every earlier event, not from one
 * event's data.
 */
const foldLots = async (
  newEvents: readonly PointsChange[],
  members: Map<string, MemberChange>,
  db: Db,
): Promise<void> => {
  if (newEvents.length === 0) return;
  const memberIds = [...new Set(newEvents.map((change) => change.memberId))];
  const rows = await db
    .selectFrom('rm_members')
    .select(['member_id', 'expiry_lots'])
    .where('member_id', 'in', memberIds)
    .execute();
  const lots = new Map(rows.map((row) => [row.member_id, row.expiry_lots]));
  for (const { memberId, event } of newEvents)
    lots.set(memberId, lotsAfter(lots.get(memberId) ?? [], event));
  for (const [memberId, memberLots] of lots) {
    const change = members.get(memberId);
    if (!change) continue;
    change.expiry_lots = memberLots;
    change.oldest_lot_at = memberLots[0]?.at ?? null;
  }
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
  correction: PeriodCorrection,
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
