import type { Kysely, Selectable } from 'kysely';
import { periodIdOf } from '../domain/periods.ts';
import { lotExpiresAt, type PointsExpiryMode } from '../domain/pointsAccount.ts';
import type { ReadModelTables } from './readModelTables.ts';

/** Programs, members and their ledgers. */
const memberQueries = (db: Kysely<ReadModelTables>) => ({
  async program(programId: string) {
    const row = await db
      .selectFrom('rm_programs')
      .selectAll()
      .where('program_id', '=', programId)
      .executeTakeFirst();
    return row ? programView(row) : null;
  },

  /** One member, with `next_expiry` under the program's current points expiry. */
  async member(programId: string, memberId: string) {
    const row = await db
      .selectFrom('rm_members')
      .selectAll()
      .where('program_id', '=', programId)
      .where('member_id', '=', memberId)
      .executeTakeFirst();
    if (!row) return null;
    const program = await db
      .selectFrom('rm_programs')
      .select(['points_expiry_days', 'points_expiry_mode'])
      .where('program_id', '=', programId)
      .executeTakeFirst();
    return { ...memberView(row), next_expiry: nextExpiryOf(row, program) };
  },

  async members(
    programId: string,
    filter: {
      cursor?: string;
      limit: number;
      tier?: string;
      email?: string;
      externalId?: string;
      q?: string;
    },
  ) {
    let query = db.selectFrom('rm_members').selectAll().where('program_id', '=', programId);
    if (filter.cursor) query = query.where('seq', '>', Number(filter.cursor));
    if (filter.tier !== undefined) query = query.where('tier', '=', filter.tier);
    const email = filter.email?.toLowerCase();
    if (email !== undefined) query = query.where((eb) => eb(eb.fn('lower', ['email']), '=', email));
    if (filter.externalId !== undefined) query = query.where('external_id', '=', filter.externalId);
    if (filter.q) {
      const like = `%${filter.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      query = query.where((eb) => eb.or([eb('name', 'ilike', like), eb('email', 'ilike', like)]));
    }
    const rows = await query
      .orderBy('seq')
      .limit(filter.limit + 1)
      .execute();
    return pageOf(rows, filter.limit, memberView);
  },

  /** Ids of the members shown with this email (in any letter case) or external id, oldest first. */
  async memberIdsWith(programId: string, kind: 'email' | 'externalId', value: string) {
    const rows = await db
      .selectFrom('rm_members')
      .select('member_id')
      .where('program_id', '=', programId)
      .where((eb) =>
        kind === 'email'
          ? eb(eb.fn('lower', ['email']), '=', value.toLowerCase())
          : eb('external_id', '=', value),
      )
      .orderBy('seq')
      .limit(10)
      .execute();
    return rows.map((row) => row.member_id);
  },

  async ledger(programId: string, memberId: string, filter: { cursor?: string; limit: number }) {
    let query = db
      .selectFrom('rm_ledger')
      .selectAll()
      .where('program_id', '=', programId)
      .where('member_id', '=', memberId);
    if (filter.cursor) query = query.where('seq', '<', Number(filter.cursor));
    const rows = await query
      .orderBy('seq', 'desc')
      .limit(filter.limit + 1)
      .execute();
    return pageOf(rows, filter.limit, (row) => ({
      transaction_id: row.transaction_id,
      kind: row.kind,
      points: row.points,
      reason: row.reason,
      reference: row.reference,
      balance: row.balance_after,
      created_at: row.occurred_at.toISOString(),
    }));
  },

  /** The member a transaction of the program belongs to, or null. */
  async transactionOwner(programId: string, transactionId: string) {
    const row = await db
      .selectFrom('rm_ledger')
      .select('member_id')
      .where('transaction_id', '=', transactionId)
      .where('program_id', '=', programId)
      .executeTakeFirst();
    return row?.member_id ?? null;
  },
});

/** Rewards and orders. */
const catalogueQueries = (db: Kysely<ReadModelTables>) => ({
  async reward(programId: string, rewardId: string) {
    const row = await db
      .selectFrom('rm_rewards')
      .selectAll()
      .where('program_id', '=', programId)
      .where('reward_id', '=', rewardId)
      .executeTakeFirst();
    return row ? rewardView(row) : null;
  },

  async rewards(programId: string, filter: { cursor?: string; limit: number }) {
    let query = db.selectFrom('rm_rewards').selectAll().where('program_id', '=', programId);
    if (filter.cursor) query = query.where('seq', '>', Number(filter.cursor));
    const rows = await query
      .orderBy('seq')
      .limit(filter.limit + 1)
      .execute();
    return pageOf(rows, filter.limit, rewardView);
  },

  async order(programId: string, orderId: string) {
    const row = await db
      .selectFrom('rm_orders')
      .selectAll()
      .where('program_id', '=', programId)
      .where('order_id', '=', orderId)
      .executeTakeFirst();
    return row ? orderView(row) : null;
  },

  /**
   * A page of the program's orders, oldest first (the order they were placed in: `seq`); the
   * cursor is the last order's seq. By status it is a fulfilment queue: a shipped order leaves
   * the `redeemed` page, so a queue read page by page skips nothing still waiting.
   */
  async orders(
    programId: string,
    filter: { cursor?: string; limit: number; memberId?: string; status?: Order['status'] },
  ) {
    let query = db.selectFrom('rm_orders').selectAll().where('program_id', '=', programId);
    if (filter.memberId !== undefined) query = query.where('member_id', '=', filter.memberId);
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    if (filter.cursor) query = query.where('seq', '>', Number(filter.cursor));
    const rows = await query
      .orderBy('seq')
      .limit(filter.limit + 1)
      .execute();
    return pageOf(rows, filter.limit, orderView);
  },

  async memberOrders(programId: string, memberId: string) {
    const rows = await db
      .selectFrom('rm_orders')
      .selectAll()
      .where('program_id', '=', programId)
      .where('member_id', '=', memberId)
      .orderBy('created_at', 'desc')
      .limit(100)
      .execute();
    return rows.map(orderView);
  },
});

/** Leaderboards, their standings and past periods. */
const leaderboardQueries = (db: Kysely<ReadModelTables>) => ({
  async leaderboard(programId: string, leaderboardId: string) {
    const row = await db
      .selectFrom('rm_leaderboards')
      .selectAll()
      .where('program_id', '=', programId)
      .where('leaderboard_id', '=', leaderboardId)
      .executeTakeFirst();
    return row ? leaderboardView(row) : null;
  },

  async leaderboards(programId: string) {
    const rows = await db
      .selectFrom('rm_leaderboards')
      .selectAll()
      .where('program_id', '=', programId)
      .orderBy('seq')
      .execute();
    return rows.map(leaderboardView);
  },

  /**
   * The current period ranked as the domain ranks it: points descending, equal points sharing
   * a place (1, 2, 2, 4), whoever reached the score first listed first. Ranked here, not stored:
   * an award moves everyone below its scorer, and no event says so for each of them.
   */
  async standings(leaderboardId: string) {
    const rows = await db
      .selectFrom('rm_standings')
      .select((eb) => [
        'member_id',
        'points',
        eb.fn
          .agg<number>('rank')
          .over((ob) => ob.orderBy('points', 'desc'))
          .as('position'),
      ])
      .where('leaderboard_id', '=', leaderboardId)
      .where('withdrawn', '=', false)
      .orderBy('points', 'desc')
      .orderBy('reached_seq')
      .limit(1000)
      .execute();
    return rows.map((row) => ({
      position: Number(row.position),
      member_id: row.member_id,
      points: row.points,
    }));
  },

  /**
   * The board's ended periods, newest first: each with the top ten it was published with, and
   * the corrections (reversed awards) made since; its standings page has them applied.
   */
  async periods(leaderboardId: string) {
    const rows = await db
      .selectFrom('rm_leaderboard_periods')
      .selectAll()
      .where('leaderboard_id', '=', leaderboardId)
      .orderBy('period_start', 'desc')
      .execute();
    const corrections = await periodCorrections(db, leaderboardId);
    return rows.map((row) => ({
      ...periodView(row),
      corrections: corrections.get(row.period_start.toISOString()) ?? [],
    }));
  },

  /** One ended period of the board, by its start instant (what its id names). */
  async period(leaderboardId: string, periodStart: string) {
    const row = await db
      .selectFrom('rm_leaderboard_periods')
      .selectAll()
      .where('leaderboard_id', '=', leaderboardId)
      .where('period_start', '=', new Date(periodStart))
      .executeTakeFirst();
    return row ? periodView(row) : null;
  },

  /** A page of an ended period's complete final ranking; the cursor is the last place's ordinal. */
  async periodStandings(
    leaderboardId: string,
    periodStart: string,
    page: { cursor?: string; limit: number },
  ) {
    let query = db
      .selectFrom('rm_period_standings')
      .select(['ordinal as seq', 'position', 'member_id', 'points'])
      .where('leaderboard_id', '=', leaderboardId)
      .where('period_start', '=', new Date(periodStart));
    if (page.cursor) query = query.where('ordinal', '>', Number(page.cursor));
    const rows = await query
      .orderBy('ordinal')
      .limit(page.limit + 1)
      .execute();
    return pageOf(rows, page.limit, (row) => ({
      position: row.position,
      member_id: row.member_id,
      points: row.points,
    }));
  },

  /** Leaderboards whose current period has ended by `now`. */
  async dueLeaderboards(now: Date) {
    return db
      .selectFrom('rm_leaderboards')
      .select(['program_id', 'leaderboard_id'])
      .where('period_end', '<=', now)
      .execute();
  },
});

/** What the scheduled jobs and the policy reactor page through. */
const jobQueries = (db: Kysely<ReadModelTables>) => ({
  /** Programs with points expiry, for the expiry sweep. */
  async programsWithExpiry() {
    return db
      .selectFrom('rm_programs')
      .select(['program_id', 'points_expiry_days', 'points_expiry_mode', 'timezone'])
      .where('points_expiry_days', 'is not', null)
      .execute();
  },

  /**
   * Members with points due to expire at `before`'s window: in `inactivity` mode those holding
   * points whose last activity is at or before it (index rm_members_activity), in `per_award`
   * mode those whose oldest lot arrived at or before it (index rm_members_oldest_lot). A page
   * in member id order, after `afterMemberId`.
   */
  async membersDueForExpiry(
    programId: string,
    due: { mode: PointsExpiryMode; before: Date },
    page: { limit: number; afterMemberId: string },
  ) {
    let query = db
      .selectFrom('rm_members')
      .select('member_id')
      .where('program_id', '=', programId)
      // A deactivated member's points are frozen until they are reactivated.
      .where('status', '=', 'active')
      .where('member_id', '>', page.afterMemberId);
    query =
      due.mode === 'per_award'
        ? query.where('oldest_lot_at', '<=', due.before)
        : query.where('balance', '>', 0).where('last_activity_at', '<=', due.before);
    return query.orderBy('member_id').limit(page.limit).execute();
  },

  /** A page of the program's member ids, in id order after `afterMemberId`: a rule-change job. */
  async programMemberIds(programId: string, afterMemberId: string, limit: number) {
    const rows = await db
      .selectFrom('rm_members')
      .select('member_id')
      .where('program_id', '=', programId)
      .where('member_id', '>', afterMemberId)
      .orderBy('member_id')
      .limit(limit)
      .execute();
    return rows.map((row) => row.member_id);
  },

  /** How many members the program has, deactivated ones included. */
  async programMemberCount(programId: string) {
    const row = await db
      .selectFrom('rm_members')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('program_id', '=', programId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  },

  /** Members whose tier override's hold has lapsed by `now`, for the tier job. */
  async lapsedTierLocks(now: Date, limit: number) {
    return db
      .selectFrom('rm_members')
      .select(['program_id', 'member_id'])
      .where('tier_locked_until', '<=', now)
      .orderBy('tier_locked_until')
      .limit(limit)
      .execute();
  },

  /** The member's cancelled orders: a reactivation settles those refunded while frozen. */
  async cancelledOrderIds(programId: string, memberId: string) {
    const rows = await db
      .selectFrom('rm_orders')
      .select('order_id')
      .where('program_id', '=', programId)
      .where('member_id', '=', memberId)
      .where('status', '=', 'cancelled')
      .execute();
    return rows.map((row) => row.order_id);
  },
});

/** Reads from the read models, shaped for the API (snake_case, as the public docs write it). */
export const queries = (db: Kysely<ReadModelTables>) => ({
  ...memberQueries(db),
  ...catalogueQueries(db),
  ...leaderboardQueries(db),
  ...jobQueries(db),
});

export type Queries = ReturnType<typeof queries>;

/**
 * A keyset page: the query fetched one row more than `limit` to learn whether another page
 * follows; the cursor is the last row's seq.
 */
const pageOf = <R extends { seq: number }, V>(rows: R[], limit: number, view: (row: R) => V) => {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    data: page.map(view),
    next_cursor: rows.length > limit && last !== undefined ? String(last.seq) : null,
  };
};

type Row<T extends keyof ReadModelTables> = Selectable<ReadModelTables[T]>;

/**
 * A program's points expiry in both spellings of the API: `points_expiry` ({mode, days} or
 * null) and `points_expiry_days`, the older spelling of `{"mode": "inactivity", "days": N}`,
 * which is null unless the program expires by inactivity.
 */
export const pointsExpiryView = (days: number | null, mode: PointsExpiryMode | undefined) => ({
  points_expiry: days === null ? null : { mode: mode ?? 'inactivity', days },
  points_expiry_days: (mode ?? 'inactivity') === 'inactivity' ? days : null,
});

/**
 * When the member's next points become due and how many: in `per_award` mode the oldest lot
 * (with any lot of the same instant), `days` after it arrived; in `inactivity` mode the whole
 * balance, `days` after the last activity (never for a balance no activity dated, see
 * ExpirePoints). The daily sweep that follows the instant removes them.
 */
const nextExpiryOf = (
  member: Row<'rm_members'>,
  program: { points_expiry_days: number | null; points_expiry_mode: PointsExpiryMode } | undefined,
): { at: string; points: number } | null => {
  const days = program?.points_expiry_days ?? null;
  if (days === null || !program) return null;
  if (program.points_expiry_mode === 'per_award') {
    const first = member.expiry_lots[0];
    if (!first) return null;
    const points = member.expiry_lots
      .filter((lot) => lot.at === first.at)
      .reduce((total, lot) => total + lot.points, 0);
    return { at: lotExpiresAt(first, days).toISOString(), points };
  }
  if (member.balance <= 0 || member.last_activity_at === null) return null;
  return {
    at: new Date(member.last_activity_at.getTime() + days * 86_400_000).toISOString(),
    points: member.balance,
  };
};

const programView = (row: Row<'rm_programs'>) => ({
  id: row.program_id,
  name: row.name,
  tiers: row.tiers.map((t) => ({ name: t.name, min_points: t.minPoints })),
  tier_basis: row.tier_basis,
  ...pointsExpiryView(row.points_expiry_days, row.points_expiry_mode),
  timezone: row.timezone,
  notification_email: row.notification_email,
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
});

const memberView = (row: Row<'rm_members'>) => ({
  id: row.member_id,
  email: row.email,
  name: row.name,
  external_id: row.external_id,
  attributes: row.attributes,
  tier: row.tier,
  balance: row.balance,
  lifetime_points: row.lifetime_points,
  status: row.status,
  tier_locked_until: row.tier_locked_until ? row.tier_locked_until.toISOString() : null,
  last_activity_at: row.last_activity_at ? row.last_activity_at.toISOString() : null,
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
});

const rewardView = (row: Row<'rm_rewards'>) => ({
  id: row.reward_id,
  name: row.name,
  points_cost: row.points_cost,
  stock: row.stock,
  kind: row.kind,
  active: row.active,
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
});

type Order = Row<'rm_orders'>;

const orderView = (row: Row<'rm_orders'>) => ({
  id: row.order_id,
  member_id: row.member_id,
  reward_id: row.reward_id,
  reward_name: row.reward_name,
  kind: row.kind,
  points_spent: row.points_spent,
  status: row.status,
  carrier: row.carrier,
  tracking_number: row.tracking_number,
  history: row.history,
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
});

/** Corrections of the board's ended periods, by period start (ISO), oldest first. */
const periodCorrections = async (db: Kysely<ReadModelTables>, leaderboardId: string) => {
  const rows = await db
    .selectFrom('rm_period_corrections')
    .selectAll()
    .where('leaderboard_id', '=', leaderboardId)
    .orderBy('corrected_at')
    .orderBy('transaction_id')
    .execute();
  const byPeriod = new Map<string, ReturnType<typeof correctionView>[]>();
  for (const row of rows) {
    const key = row.period_start.toISOString();
    byPeriod.set(key, [...(byPeriod.get(key) ?? []), correctionView(row)]);
  }
  return byPeriod;
};

const correctionView = (row: Row<'rm_period_corrections'>) => ({
  transaction_id: row.transaction_id,
  reversal_of: row.reversal_of,
  member_id: row.member_id,
  points: -row.points,
  corrected_at: row.corrected_at.toISOString(),
});

const periodView = (row: Row<'rm_leaderboard_periods'>) => ({
  period_id: periodIdOf(row.period_start.toISOString()),
  period_start: row.period_start.toISOString(),
  period_end: row.period_end.toISOString(),
  standings: row.standings.map((s) => ({
    position: s.position,
    member_id: s.memberId,
    points: s.points,
  })),
});

const leaderboardView = (row: Row<'rm_leaderboards'>) => ({
  id: row.leaderboard_id,
  name: row.name,
  period: row.period,
  timezone: row.timezone,
  top_n: row.top_n,
  period_start: row.period_start.toISOString(),
  period_end: row.period_end.toISOString(),
  created_at: row.created_at.toISOString(),
});
