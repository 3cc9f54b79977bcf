import { sql, type Kysely, type Migration } from 'kysely';
import {
  addLot,
  lotsAfter,
  type PointsAccountEvent,
  type PointsLot,
} from '../../../domain/pointsAccount.ts';

/**
 * Read-model columns for points expiry by award (issue 14, item 8), as DDL on top of 002's and
 * 010's, unqualified like them: the replay (adapters/audit/replay.ts) runs every list under
 * `set local search_path` to build the same tables in its own schema.
 *
 * - `rm_programs.points_expiry_mode`: `inactivity` (what `points_expiry_days` always meant, and
 *   what every program made before this migration has) or `per_award`.
 * - `rm_members.expiry_lots`: the balance split by arrival, oldest first, as the points account
 *   folds it (domain/pointsAccount.ts `PointsLot`); `oldest_lot_at` is the first lot's arrival,
 *   indexed per program so the expiry sweep finds the members whose oldest lot is past the
 *   program's days without reading any other row. The migration fills both for the members
 *   that already hold points by folding their ledger rows (`backfillExpiryLots`).
 */
export const expiryLotsStatements: readonly string[] = [
  `alter table rm_programs add column points_expiry_mode text not null default 'inactivity'`,
  `alter table rm_members add column expiry_lots jsonb not null default '[]'`,
  `alter table rm_members add column oldest_lot_at timestamptz`,
  `create index rm_members_oldest_lot on rm_members (program_id, oldest_lot_at)
    where oldest_lot_at is not null`,
];

type LedgerRow = {
  member_id: string;
  seq: string;
  kind: string;
  points: string;
  transaction_id: string;
  reference: string | null;
  balance_after: string;
  occurred_at: Date | string;
};

/**
 * The points event a ledger row records, as far as `lotsAfter` reads one: its kind, signed
 * points, balance after, time, and (for a reversal) the transaction it undid.
 */
const eventOf = (row: LedgerRow): PointsAccountEvent => {
  const signed = Number(row.points);
  const data = {
    transactionId: row.transaction_id,
    memberId: row.member_id,
    points: Math.abs(signed),
    newBalance: Number(row.balance_after),
    lifetimePoints: 0,
    reason: '',
    reference: row.reference,
    at: new Date(row.occurred_at).toISOString(),
  };
  if (row.kind === 'reversed')
    return {
      type: 'PointsReversed',
      data: {
        ...data,
        reversalOf: row.reference ?? '',
        reversed: signed < 0 ? 'award' : 'deduction',
      },
    };
  if (row.kind === 'expired') return { type: 'PointsExpired', data };
  if (row.kind === 'refunded')
    return { type: 'PointsRefunded', data: { ...data, orderId: row.reference ?? '' } };
  return signed > 0 ? { type: 'PointsAwarded', data } : { type: 'PointsDeducted', data };
};

/** Members whose lots one round of the backfill folds: ~35 ledger rows each in a replay's test. */
const defaultMembersPerPage = 250;

/**
 * domain/pointsAccount.ts `lotsAfter` for the replay and the backfill, changing the member's own array instead of
 * copying it: a history of a million events holds hundreds of thousands of lots, and a copy per
 * award made the replay's garbage (and its peak RSS) grow with the square of a member's lots.
 * The arrays and lot objects are the replay's alone. The same rows result (`replay --verify`).
 */
export const foldLotInPlace = (lots: PointsLot[], event: PointsAccountEvent): PointsLot[] => {
  // Rare: a reversal, or points arriving while a reversal holds the balance below zero (they pay
  // it off first). The domain's own fold, with its copy.
  if (
    event.type === 'PointsReversed' ||
    ((event.type === 'PointsAwarded' || event.type === 'PointsRefunded') &&
      event.data.newBalance < event.data.points)
  )
    return lotsAfter(lots, event);
  if (
    event.type !== 'PointsAwarded' &&
    event.type !== 'PointsRefunded' &&
    event.type !== 'PointsDeducted' &&
    event.type !== 'PointsExpired'
  )
    return lotsAfter(lots, event);
  const { transactionId, at, points } = event.data;
  if (event.type === 'PointsAwarded' || event.type === 'PointsRefunded') {
    const last = lots[lots.length - 1];
    if (last && last.at > at) return addLot(lots, { transactionId, at, points });
    lots.push({ transactionId, at, points });
    return lots;
  }
  let left = points;
  let emptied = 0;
  for (let lot = lots[emptied]; left > 0 && lot !== undefined; lot = lots[emptied]) {
    if (lot.points > left) {
      lots[emptied] = { ...lot, points: lot.points - left };
      left = 0;
    } else {
      left -= lot.points;
      emptied++;
    }
  }
  if (emptied > 0) lots.splice(0, emptied);
  return lots;
};

/**
 * Sets every member's `expiry_lots` and `oldest_lot_at` from its `rm_ledger` rows, which are its
 * points events in order (one row per award, deduction, expiry or refund, signed): the fold of
 * domain/pointsAccount.ts `lotsAfter`, so the rows are those the projector would have written.
 *
 * A page of members at a time (by primary key), each page's ledger rows read through
 * `rm_ledger_member` and written back in one statement. Paging the ledger itself by
 * (member_id, seq) could not use that index (its seq is descending), so each page sorted the rest
 * of the ledger: a replay of a million events spent 65 of its 90 s here (BENCHMARKS.md, "Replay
 * memory and rate"). The replay builds its indexes before calling this.
 */
export const backfillExpiryLots = async (
  db: Kysely<unknown>,
  { membersPerPage = defaultMembersPerPage }: { membersPerPage?: number } = {},
): Promise<void> => {
  let after = '';
  for (;;) {
    const members = (
      await sql<{ member_id: string }>`
        select member_id from rm_members where member_id > ${after}
        order by member_id limit ${membersPerPage}`.execute(db)
    ).rows.splice(0);
    const last = members.at(-1);
    if (last === undefined) return;
    after = last.member_id;
    // The select hands seq back as text (a bigint beyond 2^53 stays exact); ORDER BY names the
    // table's column, since a bare `seq` would be the text alias and sort 10 before 2.
    const ledger = (
      await sql<LedgerRow>`
        select member_id, seq::text as seq, kind, points::text as points, transaction_id,
          reference, balance_after::text as balance_after, occurred_at
        from rm_ledger where member_id = any(${members.map((m) => m.member_id)}::text[])
        order by rm_ledger.member_id, rm_ledger.seq`.execute(db)
    ).rows.splice(0);
    const folded = new Map<string, PointsLot[]>();
    for (const row of ledger)
      folded.set(row.member_id, foldLotInPlace(folded.get(row.member_id) ?? [], eventOf(row)));
    const lotsOf = members.map(({ member_id }) => {
      const lots = folded.get(member_id) ?? [];
      return { member_id, expiry_lots: lots, oldest_lot_at: lots[0]?.at ?? null };
    });
    await sql`update rm_members as m
      set expiry_lots = v.expiry_lots, oldest_lot_at = v.oldest_lot_at
      from json_to_recordset(${JSON.stringify(lotsOf)}::json)
        as v(member_id text, expiry_lots jsonb, oldest_lot_at timestamptz)
      where m.member_id = v.member_id`.execute(db);
    if (members.length < membersPerPage) return;
  }
};

export const expiryLotsMigration: Migration = {
  async up(db: Kysely<unknown>) {
    for (const statement of expiryLotsStatements) await sql.raw(statement).execute(db);
    await backfillExpiryLots(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop index rm_members_oldest_lot`.execute(db);
    await sql`alter table rm_members drop column oldest_lot_at`.execute(db);
    await sql`alter table rm_members drop column expiry_lots`.execute(db);
    await sql`alter table rm_programs drop column points_expiry_mode`.execute(db);
  },
};
