import { sql, type Kysely } from 'kysely';
import type { DomainEvent } from '../domain/events.ts';
import { defaultTopN } from '../domain/leaderboard.ts';
import { lotsAfter, type PointsLot } from '../domain/pointsAccount.ts';
import type { RecordedEvent } from '../domain/recordedEvent.ts';
import { isActivity, isLedgerEvent, ledgerLineOf, type LedgerEvent } from './ledgerLine.ts';
import type { ReadModelTables } from './readModelTables.ts';

/** The subscription name of this projector: its checkpoint key and its lock. */
export const readModelsProjection = 'read-models';

type Db = Kysely<ReadModelTables>;

/**
 * Folds domain events into the read models. Runs inside the subscription's transaction, with its
 * checkpoint. Every write sets absolute values taken from the event (the balance after, the score
 * after), so handling an event twice leaves the same rows; a recorded fact never throws here.
 */
export const projectReadModels = async (
  events: readonly RecordedEvent[],
  db: Db,
): Promise<void> => {
  // Consecutive points events (the bulk of any history) are written together; any other event
  // first writes the run before it, so every row still sees the events in their order.
  let run: RecordedEvent<PointsEvent>[] = [];
  for (const recorded of events) {
    if (isLedgerEvent(recorded.type)) {
      run.push(recorded as RecordedEvent<PointsEvent>);
      continue;
    }
    if (run.length > 0) await projectPoints(run, db);
    run = [];
    await project(recorded as RecordedEvent<DomainEvent>, db);
  }
  if (run.length > 0) await projectPoints(run, db);
};

type PointsEvent = LedgerEvent;

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
 * as `project` writes one event at a time.
 */
const projectPoints = async (run: readonly RecordedEvent<PointsEvent>[], db: Db): Promise<void> => {
  const ledger = [];
  const members = new Map<string, MemberChange>();
  for (const recorded of run) {
    const event = { type: recorded.type, data: recorded.data } as PointsEvent;
    const d = event.data;
    ledger.push({
      event_id: recorded.id,
      program_id: recorded.metadata.programId ?? '',
      member_id: d.memberId,
      transaction_id: d.transactionId,
      ...ledgerLineOf(event),
      reason: d.reason,
      balance_after: d.newBalance,
      occurred_at: d.at,
    });
    const active = isActivity(event);
    members.set(d.memberId, {
      member_id: d.memberId,
      balance: d.newBalance,
      lifetime_points: d.lifetimePoints,
      last_activity_at: active ? d.at : (members.get(d.memberId)?.last_activity_at ?? null),
      updated_at: d.at,
      expiry_lots: null,
      oldest_lot_at: null,
    });
  }
  // Built with the query builder, not raw SQL: a replay runs this projector withSchema(), which
  // re-targets only the builder's table references.
  const fresh = new Set<string>();
  for (let start = 0; start < ledger.length; start += 1000) {
    const inserted = await db
      .insertInto('rm_ledger')
      .values(ledger.slice(start, start + 1000))
      .onConflict((oc) => oc.column('event_id').doNothing())
      .returning('event_id')
      .execute();
    for (const row of inserted) fresh.add(row.event_id);
  }
  await foldLots(run, fresh, members, db);
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
 * Folds the run's points events into each member's lots, as the points account does
 * (domain/pointsAccount.ts `lotsAfter`). Lots follow from every earlier event, not from one
 * event's data, so only the events whose ledger row this run inserted are folded: an event
 * handled twice takes its points once.
 */
const foldLots = async (
  run: readonly RecordedEvent<PointsEvent>[],
  fresh: ReadonlySet<string>,
  members: Map<string, MemberChange>,
  db: Db,
): Promise<void> => {
  const newEvents = run.filter((recorded) => fresh.has(recorded.id));
  if (newEvents.length === 0) return;
  const memberIds = [...new Set(newEvents.map((recorded) => recorded.data.memberId))];
  const rows = await db
    .selectFrom('rm_members')
    .select(['member_id', 'expiry_lots'])
    .where('member_id', 'in', memberIds)
    .execute();
  const lots = new Map(rows.map((row) => [row.member_id, row.expiry_lots]));
  for (const recorded of newEvents) {
    const event = { type: recorded.type, data: recorded.data } as PointsEvent;
    lots.set(event.data.memberId, lotsAfter(lots.get(event.data.memberId) ?? [], event));
  }
  for (const [memberId, memberLots] of lots) {
    const change = members.get(memberId);
    if (!change) continue;
    change.expiry_lots = memberLots;
    change.oldest_lot_at = memberLots[0]?.at ?? null;
  }
};

const project = async (recorded: RecordedEvent<DomainEvent>, db: Db): Promise<void> => {
  const event = { type: recorded.type, data: recorded.data } as DomainEvent;
  const programId = recorded.metadata.programId ?? '';
  switch (event.type) {
    case 'ProgramCreated': {
      const d = event.data;
      await db
        .insertInto('rm_programs')
        .values({
          program_id: d.programId,
          name: d.name,
          tiers: JSON.stringify(d.tiers) as never,
          tier_basis: d.tierBasis,
          points_expiry_days: d.pointsExpiryDays,
          points_expiry_mode: d.pointsExpiryMode ?? 'inactivity',
          timezone: d.timezone,
          notification_email: d.notificationEmail,
          created_at: d.at,
          updated_at: d.at,
        })
        .onConflict((oc) => oc.column('program_id').doNothing())
        .execute();
      return;
    }
    case 'ProgramUpdated': {
      const c = event.data.changes;
      await db
        .updateTable('rm_programs')
        .set({
          ...(c.name !== undefined && { name: c.name }),
          ...(c.tiers !== undefined && { tiers: JSON.stringify(c.tiers) as never }),
          ...(c.tierBasis !== undefined && { tier_basis: c.tierBasis }),
          ...(c.pointsExpiryDays !== undefined && { points_expiry_days: c.pointsExpiryDays }),
          ...(c.pointsExpiryMode !== undefined && { points_expiry_mode: c.pointsExpiryMode }),
          ...(c.timezone !== undefined && { timezone: c.timezone }),
          ...(c.notificationEmail !== undefined && { notification_email: c.notificationEmail }),
          updated_at: event.data.at,
        })
        .where('program_id', '=', event.data.programId)
        .execute();
      return;
    }
    case 'MemberRegistered': {
      const d = event.data;
      await db
        .insertInto('rm_members')
        .values({
          program_id: d.programId,
          member_id: d.memberId,
          email: d.email,
          name: d.name,
          external_id: d.externalId,
          attributes: JSON.stringify(d.attributes) as never,
          tier: d.tier,
          balance: 0,
          lifetime_points: 0,
          last_activity_at: null,
          status: 'active',
          created_at: d.at,
          updated_at: d.at,
        })
        .onConflict((oc) => oc.column('member_id').doNothing())
        .execute();
      return;
    }
    case 'MemberUpdated': {
      const c = event.data.changes;
      await db
        .updateTable('rm_members')
        .set({
          ...(c.email !== undefined && { email: c.email }),
          ...(c.name !== undefined && { name: c.name }),
          ...(c.externalId !== undefined && { external_id: c.externalId }),
          ...(c.attributes !== undefined && { attributes: JSON.stringify(c.attributes) as never }),
          updated_at: event.data.at,
        })
        .where('member_id', '=', event.data.memberId)
        .execute();
      return;
    }
    case 'MemberTierChanged':
      await db
        .updateTable('rm_members')
        .set({ tier: event.data.newTier, updated_at: event.data.at })
        .where('member_id', '=', event.data.memberId)
        .execute();
      return;
    case 'MemberTierLocked':
      await db
        .updateTable('rm_members')
        .set({ tier_locked_until: event.data.lockedUntil, updated_at: event.data.at })
        .where('member_id', '=', event.data.memberId)
        .execute();
      return;
    case 'MemberDeactivated':
    case 'MemberReactivated':
      await db
        .updateTable('rm_members')
        .set({
          status: event.type === 'MemberDeactivated' ? 'deactivated' : 'active',
          updated_at: event.data.at,
        })
        .where('member_id', '=', event.data.memberId)
        .execute();
      return;
    case 'PointsAwarded':
    case 'PointsDeducted':
    case 'PointsExpired':
    case 'PointsRefunded':
    case 'PointsReversed':
      // projectReadModels sends these as runs; one alone is a run of one.
      await projectPoints([recorded as RecordedEvent<PointsEvent>], db);
      return;
    case 'RewardRedeemed':
      // The balance moved with the PointsDeducted appended beside it; this fact names the order.
      await db
        .updateTable('rm_members')
        .set({ last_activity_at: event.data.at })
        .where('member_id', '=', event.data.memberId)
        .execute();
      return;
    case 'RewardCreated': {
      const d = event.data;
      await db
        .insertInto('rm_rewards')
        .values({
          program_id: programId,
          reward_id: d.rewardId,
          name: d.name,
          points_cost: d.pointsCost,
          stock: d.stock,
          kind: d.kind,
          active: true,
          created_at: d.at,
          updated_at: d.at,
        })
        .onConflict((oc) => oc.column('reward_id').doNothing())
        .execute();
      return;
    }
    case 'RewardChanged': {
      const c = event.data.changes;
      await db
        .updateTable('rm_rewards')
        .set({
          ...(c.name !== undefined && { name: c.name }),
          ...(c.pointsCost !== undefined && { points_cost: c.pointsCost }),
          ...(c.stock !== undefined && { stock: c.stock }),
          ...(c.active !== undefined && { active: c.active }),
          updated_at: event.data.at,
        })
        .where('reward_id', '=', event.data.rewardId)
        .execute();
      return;
    }
    case 'StockReserved':
    case 'StockReleased':
      await db
        .updateTable('rm_rewards')
        .set({ stock: event.data.remaining, updated_at: event.data.at })
        .where('reward_id', '=', event.data.rewardId)
        .execute();
      return;
    case 'OrderPlaced': {
      const d = event.data;
      await db
        .insertInto('rm_orders')
        .values({
          program_id: programId,
          order_id: d.orderId,
          member_id: d.memberId,
          reward_id: d.rewardId,
          reward_name: d.rewardName,
          kind: d.kind,
          points_spent: d.pointsSpent,
          status: 'redeemed',
          carrier: null,
          tracking_number: null,
          history: JSON.stringify([{ status: 'redeemed', at: d.at }]) as never,
          created_at: d.at,
          updated_at: d.at,
        })
        .onConflict((oc) => oc.column('order_id').doNothing())
        .execute();
      return;
    }
    case 'OrderShipped':
      await setOrderStatus(db, event.data.orderId, 'shipped', event.data.at, {
        carrier: event.data.carrier,
        tracking_number: event.data.trackingNumber,
      });
      return;
    case 'OrderDelivered':
      await setOrderStatus(db, event.data.orderId, 'delivered', event.data.at, {});
      return;
    case 'OrderCancelled':
      await setOrderStatus(db, event.data.orderId, 'cancelled', event.data.at, {});
      return;
    case 'LeaderboardCreated': {
      const d = event.data;
      await db
        .insertInto('rm_leaderboards')
        .values({
          program_id: programId,
          leaderboard_id: d.leaderboardId,
          name: d.name,
          period: d.period,
          timezone: d.timezone,
          top_n: d.topN ?? defaultTopN,
          period_start: d.periodStart,
          period_end: d.periodEnd,
          created_at: d.at,
        })
        .onConflict((oc) => oc.column('leaderboard_id').doNothing())
        .execute();
      return;
    }
    case 'ScoreRecorded': {
      const d = event.data;
      await db
        .insertInto('rm_standings')
        .values({
          leaderboard_id: d.leaderboardId,
          member_id: d.memberId,
          points: d.score,
          reached_seq: Number(recorded.revision),
        })
        .onConflict((oc) =>
          oc
            .columns(['leaderboard_id', 'member_id'])
            .doUpdateSet({ points: d.score, reached_seq: Number(recorded.revision) }),
        )
        .execute();
      return;
    }
    case 'ScoreReversed':
      await db
        .updateTable('rm_standings')
        .set({ points: event.data.score })
        .where('leaderboard_id', '=', event.data.leaderboardId)
        .where('member_id', '=', event.data.memberId)
        .execute();
      return;
    case 'MemberWithdrawn':
    case 'MemberReinstated':
      await db
        .updateTable('rm_standings')
        .set({ withdrawn: event.type === 'MemberWithdrawn', points: event.data.score })
        .where('leaderboard_id', '=', event.data.leaderboardId)
        .where('member_id', '=', event.data.memberId)
        .execute();
      return;
    case 'PeriodCorrected': {
      const d = event.data;
      const inserted = await db
        .insertInto('rm_period_corrections')
        .values({
          transaction_id: d.transactionId,
          leaderboard_id: d.leaderboardId,
          period_start: d.periodStart,
          member_id: d.memberId,
          points: d.points,
          reversal_of: d.reversalOf,
          corrected_at: d.at,
        })
        .onConflict((oc) => oc.column('transaction_id').doNothing())
        .returning('transaction_id')
        .execute();
      if (inserted.length > 0) await correctPeriodStandings(db, d);
      return;
    }
    case 'PositionChanged':
      // Positions are ranked when read (projections/queries.ts): this event names only
      // the members told of a change, and old histories' many ones must fold the same way.
      return;
    case 'PeriodEnded': {
      const d = event.data;
      const inserted = await db
        .insertInto('rm_leaderboard_periods')
        .values({
          leaderboard_id: d.leaderboardId,
          period_start: d.periodStart,
          period_end: d.periodEnd,
          standings: JSON.stringify(d.standings) as never,
          ended_at: d.at,
        })
        .onConflict((oc) => oc.columns(['leaderboard_id', 'period_start']).doNothing())
        .returning('leaderboard_id')
        .execute();
      // The event carries the top ten; the whole final ranking is the period's scores, which
      // rm_standings holds until now: ranked as the domain ranks (points down, equal points
      // sharing a place, the first to reach a score first). Only with the period's own row, so
      // a period recorded twice keeps its first ranking whole.
      if (inserted.length > 0) {
        await db
          .insertInto('rm_period_standings')
          .columns(['leaderboard_id', 'period_start', 'ordinal', 'position', 'member_id', 'points'])
          .expression(
            db
              .selectFrom('rm_standings')
              .select((eb) => [
                'leaderboard_id',
                sql<string>`${d.periodStart}::timestamptz`.as('period_start'),
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
              .where('leaderboard_id', '=', d.leaderboardId)
              .where('withdrawn', '=', false),
          )
          .execute();
      }
      await db.deleteFrom('rm_standings').where('leaderboard_id', '=', d.leaderboardId).execute();
      return;
    }
    case 'PeriodOpened':
      await db
        .updateTable('rm_leaderboards')
        .set({ period_start: event.data.periodStart, period_end: event.data.periodEnd })
        .where('leaderboard_id', '=', event.data.leaderboardId)
        .execute();
      return;
    case 'LeaderboardTimezoneChanged':
      await db
        .updateTable('rm_leaderboards')
        .set({ timezone: event.data.timezone })
        .where('leaderboard_id', '=', event.data.leaderboardId)
        .execute();
      return;
    // Freezing moves no points; a deferred refund shows once it is paid (PointsRefunded).
    case 'PointsFrozen':
    case 'PointsUnfrozen':
    case 'RefundDeferred':
      return;
    // Reservations of emails and external ids, and their revocation: no read model shows them.
    case 'MemberReservationRevoked':
    case 'IdentifierReserved':
    case 'IdentifierReleased':
      return;
  }
};

const setOrderStatus = async (
  db: Db,
  orderId: string,
  status: 'shipped' | 'delivered' | 'cancelled',
  at: string,
  extra: { carrier?: string; tracking_number?: string },
): Promise<void> => {
  await db
    .updateTable('rm_orders')
    .set({
      ...extra,
      status,
      history: sql`history || ${JSON.stringify([{ status, at }])}::jsonb` as never,
      updated_at: at,
    })
    .where('order_id', '=', orderId)
    .where('status', '!=', status)
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
