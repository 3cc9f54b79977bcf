/**
 * The oldest transaction that may still commit events: the snapshot's in-progress transactions,
 * less those seen running in another database (a transaction never spans databases, so those
 * cannot write here), or the snapshot's xmax when none is left. Plain pg_snapshot_xmin would let
 * any long transaction on the server, in any database, hold every subscriber back. A transaction
 * that ends between the snapshot and the pg_stat_activity read still counts for this read: only
 * transactions positively seen elsewhere are passed over, so no event is ever skipped.
 *
 * Plain SQL text, apart from kysely, for readers that talk to pg directly (the COPY export).
 */
export const readGuardSql = `coalesce(
  (select min(x) from pg_snapshot_xip(pg_current_snapshot()) as x
    where xid(x) not in (
      select a.backend_xid from pg_stat_activity a
      where a.backend_xid is not null
        and a.datid <> (select d.oid from pg_database d where d.datname = current_database()))),
  pg_snapshot_xmax(pg_current_snapshot()))`;
