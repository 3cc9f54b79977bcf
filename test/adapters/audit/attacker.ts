import { createHash } from 'node:crypto';
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database } from '../../../adapters/db/schema.ts';
import * as rfc from '../../support/rfc9162.ts';

/**
 * An attacker with write access to the database, for the verifiable-history tests: after changing
 * the log they recompute everything the database holds that depends on it, consistently, with the
 * independent RFC implementation. Only the signing key is out of their reach.
 */

/** Every event's chain hash in the tree's order, as the independent implementation hashes it. */
export const logLeaves = async (db: Kysely<Database>): Promise<Buffer[]> =>
  (
    await sql<{ hash: string }>`
      select e.hash from incentable_audit_leaves l
      join incentable_events e on e.event_id = l.event_id order by l.leaf_index`.execute(db)
  ).rows.map((row) => rfc.leafHash(Buffer.from(row.hash, 'hex')));

/**
 * What an attacker with write access to the database does after changing the log: recomputes
 * every stream's hash chain and the whole stored tree from the events, consistently, in the order
 * `orderBy` gives (commit order unless they reorder).
 */
export const recomputeEverything = async (
  db: Kysely<Database>,
  order: RawBuilder<unknown> = sql`l.leaf_index`,
) => {
  const rows = (
    await sql<{ event_id: string; stream_name: string; canonical: string }>`
      select e.event_id::text, e.stream_name,
        incentable_canonical(e.event_id, e.stream_name, e.type, e.data, e.metadata) as canonical
      from incentable_events e order by e.stream_name, e.stream_revision`.execute(db)
  ).rows;
  const previous = new Map<string, string>();
  for (const row of rows) {
    const hash = createHash('sha256')
      .update(previous.get(row.stream_name) ?? '')
      .update(row.canonical)
      .digest('hex');
    previous.set(row.stream_name, hash);
    await sql`update incentable_events set hash = ${hash} where event_id = ${row.event_id}::uuid`.execute(
      db,
    );
  }
  for (const [stream, hash] of previous)
    await sql`update incentable_streams set last_hash = ${hash} where stream_name = ${stream}`.execute(
      db,
    );
  const ordered = (
    await sql<{ event_id: string; hash: string }>`
      select e.event_id::text, e.hash from incentable_audit_leaves l
      join incentable_events e on e.event_id = l.event_id order by ${order}`.execute(db)
  ).rows;
  await sql`truncate incentable_audit_leaves, incentable_audit_nodes`.execute(db);
  let level = ordered.map((row) => rfc.leafHash(Buffer.from(row.hash, 'hex')));
  for (const [i, row] of ordered.entries())
    await sql`insert into incentable_audit_leaves (leaf_index, event_id, hash)
      values (${i}, ${row.event_id}::uuid, ${level[i]!})`.execute(db);
  for (let height = 1; level.length > 1; height++) {
    const up: Buffer[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) up.push(rfc.nodeHash(level[i]!, level[i + 1]!));
    for (const [i, hash] of up.entries())
      await sql`insert into incentable_audit_nodes (level, node_index, hash)
        values (${height}, ${i}, ${hash})`.execute(db);
    level = up;
  }
};
