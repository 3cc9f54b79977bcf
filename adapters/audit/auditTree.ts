import { sql, type Kysely } from 'kysely';
import type { RecordedEvent } from '../../domain/recordedEvent.ts';
import type { SubscriptionHandler } from '../../application/ports.ts';
import type { Database } from '../db/schema.ts';
import {
  appendLeaves,
  consistencyRanges,
  foldRange,
  frontierRefs,
  inclusionRanges,
  leafHash,
  rangeNodes,
  type Frontier,
  type LeafRange,
  type NodeRef,
} from './merkle.ts';

/** The subscription that builds the tree: its checkpoint key and its single-active lock. */
export const auditTreeSubscription = 'audit-tree';

/**
 * The leaf of an event: SHA-256(0x00 || its chain hash as 32 bytes). The chain hash already
 * covers the event's canonical bytes and the hash before it in its stream (canonical.ts), so the
 * leaf fixes both the event and its place in its stream.
 */
export const leafOfEvent = (chainHash: string): Buffer => leafHash(Buffer.from(chainHash, 'hex'));

const refKey = (ref: NodeRef): string => `${ref.level}:${ref.index}`;

type Db = Kysely<Database>;

/** How many leaves the tree has. */
export const treeSize = async (db: Db): Promise<number> => {
  const result = await sql<{ size: string }>`
    select coalesce(max(leaf_index) + 1, 0)::text as size from incentable_audit_leaves`.execute(db);
  return Number(result.rows[0]?.size ?? 0);
};

/** The stored hashes of these nodes; a node missing from the store is missing from the map. */
export const readNodes = async (db: Db, refs: readonly NodeRef[]): Promise<Map<string, Buffer>> => {
  const found = new Map<string, Buffer>();
  if (refs.length === 0) return found;
  const leaves = refs.filter((ref) => ref.level === 0).map((ref) => String(ref.index));
  const inner = refs.filter((ref) => ref.level > 0);
  const result = await sql<{ level: number; node_index: string; hash: string }>`
    select 0 as level, leaf_index::text as node_index, encode(hash, 'hex') as hash
      from incentable_audit_leaves where leaf_index = any(${leaves}::bigint[])
    union all
    select n.level, n.node_index::text, encode(n.hash, 'hex') from incentable_audit_nodes n
      join unnest(${inner.map((r) => r.level)}::smallint[], ${inner.map((r) => String(r.index))}::bigint[])
        as want(level, node_index)
        on n.level = want.level and n.node_index = want.node_index`.execute(db);
  for (const row of result.rows)
    found.set(`${row.level}:${row.node_index}`, Buffer.from(row.hash, 'hex'));
  return found;
};

export class TreeIncompleteError extends Error {
  override readonly name = 'TreeIncompleteError';
}

/** The MTH of each range, from the stored nodes, in one read. */
export const rangeHashes = async (db: Db, ranges: readonly LeafRange[]): Promise<Buffer[]> => {
  const plans = ranges.map((range) => rangeNodes(range));
  const unique = new Map<string, NodeRef>();
  for (const ref of plans.flat()) unique.set(refKey(ref), ref);
  const nodes = await readNodes(db, [...unique.values()]);
  return plans.map((plan) =>
    foldRange(
      plan.map((ref) => {
        const hash = nodes.get(refKey(ref));
        if (!hash) throw new TreeIncompleteError(`tree node ${refKey(ref)} is missing`);
        return hash;
      }),
    ),
  );
};

/** The root of the tree as it was at `size` leaves (any size up to the current one). */
export const rootAt = async (db: Db, size: number): Promise<Buffer> => {
  const [root] = await rangeHashes(db, [{ start: 0, end: size }]);
  return root as Buffer;
};

/** RFC 9162 inclusion proofs of several leaves in the tree of `size`, read together. */
export const inclusionProofs = async (
  db: Db,
  indexes: readonly number[],
  size: number,
): Promise<Buffer[][]> => {
  const paths = indexes.map((index) => inclusionRanges(index, size));
  const hashes = await rangeHashes(db, paths.flat());
  let at = 0;
  return paths.map((path) => {
    const proof = hashes.slice(at, at + path.length);
    at += path.length;
    return proof;
  });
};

/** The RFC 9162 consistency proof from the tree of `from` leaves to the tree of `to`. */
export const consistencyProof = async (db: Db, from: number, to: number): Promise<Buffer[]> =>
  rangeHashes(db, consistencyRanges(from, to));

/** The right edge of the stored tree, to append to. */
const readFrontier = async (db: Db, size: number): Promise<Frontier> => {
  const refs = frontierRefs(size);
  const nodes = await readNodes(db, refs);
  return {
    size,
    nodes: refs.map((ref) => {
      const hash = nodes.get(refKey(ref));
      if (!hash) throw new TreeIncompleteError(`tree node ${refKey(ref)} is missing`);
      return { ref, hash };
    }),
  };
};

/** Rows per INSERT: bounds one statement's arrays. */
const rowsPerStatement = 5_000;

/**
 * The tree builder, a subscription handler: appends each batch's events as leaves, in the global
 * order the subscription hands them over, with every node they complete, in the batch's
 * transaction beside the subscription's checkpoint (so a crash loses both or neither). Events
 * already in the tree (a checkpoint moved back by hand) are skipped, never added twice.
 *
 * One builder per database: it keeps the tree's right edge between batches, and uses it while the
 * stored tree still has the size it left (a batch rolled back, or another process that took the
 * lease and appended, changes the size, and the edge is read again).
 */
export const createAuditTreeBuilder = (): SubscriptionHandler<Db> => {
  let edge: Frontier | null = null;
  return async (events: readonly RecordedEvent[], tx: Db): Promise<void> => {
    if (events.length === 0) return;
    const state = await sql<{ size: string; present: string[] }>`
      select coalesce((select max(leaf_index) + 1 from incentable_audit_leaves), 0)::text as size,
        array(select event_id::text from incentable_audit_leaves
          where event_id = any(${events.map((e) => e.id)}::uuid[])) as present`.execute(tx);
    const row = state.rows[0];
    const size = Number(row?.size ?? 0);
    const skip = new Set(row?.present ?? []);
    const fresh = events.filter((event) => !skip.has(event.id));
    if (fresh.length === 0) return;
    // Everything written here derives from the events: a lost commit is rebuilt from them.
    await sql`set local synchronous_commit = off`.execute(tx);
    const frontier =
      edge?.size === size ? { size, nodes: [...edge.nodes] } : await readFrontier(tx, size);
    edge = null;
    const made = appendLeaves(
      frontier,
      fresh.map((event) => leafOfEvent(event.hash)),
    );
    await writeNodes(tx, made, (index) => fresh[index - size]?.id);
    edge = frontier;
  };
};

/** Leaves and inner nodes in one statement per chunk: a batch costs one round trip to write. */
const writeNodes = async (
  tx: Db,
  made: { ref: NodeRef; hash: Buffer }[],
  eventOf: (leafIndex: number) => string | undefined,
): Promise<void> => {
  const leaves = made.filter((node) => node.ref.level === 0);
  const inner = made.filter((node) => node.ref.level > 0);
  for (let i = 0; i < Math.max(leaves.length, inner.length); i += rowsPerStatement) {
    const l = leaves.slice(i, i + rowsPerStatement);
    const n = inner.slice(i, i + rowsPerStatement);
    await sql`
      with leaves as (
        insert into incentable_audit_leaves (leaf_index, event_id, hash)
        select i, e, decode(h, 'hex')
        from unnest(${l.map((x) => String(x.ref.index))}::bigint[],
          ${l.map((x) => eventOf(x.ref.index))}::uuid[],
          ${l.map((x) => x.hash.toString('hex'))}::text[]) as u(i, e, h)
      )
      insert into incentable_audit_nodes (level, node_index, hash)
      select v, i, decode(h, 'hex')
      from unnest(${n.map((x) => x.ref.level)}::smallint[],
        ${n.map((x) => String(x.ref.index))}::bigint[],
        ${n.map((x) => x.hash.toString('hex'))}::text[]) as u(v, i, h)`.execute(tx);
  }
};
