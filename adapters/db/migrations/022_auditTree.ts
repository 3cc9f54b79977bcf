import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Verifiable history (adapters/audit/auditTree.ts, docs/audit.md): the RFC 9162 Merkle tree over
 * every event in global order, and the signed checkpoints of it.
 *
 * - `incentable_audit_leaves`: leaf `leaf_index` is the event `event_id`; `hash` is its leaf hash,
 *   SHA-256(0x00 || the event's 32-byte chain hash). The node of level 0.
 * - `incentable_audit_nodes`: every complete subtree above the leaves, by level (1 = two leaves)
 *   and index within the level; any root or proof folds from O(log n) of them.
 * - `incentable_audit_checkpoints`: each signed tree head (a C2SP signed note), by size.
 */
export const auditTreeMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`create table incentable_audit_leaves (
      leaf_index bigint primary key,
      event_id uuid not null unique,
      hash bytea not null
    )`.execute(db);
    await sql`create table incentable_audit_nodes (
      level smallint not null,
      node_index bigint not null,
      hash bytea not null,
      primary key (level, node_index)
    )`.execute(db);
    await sql`create table incentable_audit_checkpoints (
      size bigint primary key,
      root_hash bytea not null,
      note text not null,
      created_at timestamptz not null
    )`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop table incentable_audit_checkpoints`.execute(db);
    await sql`drop table incentable_audit_nodes`.execute(db);
    await sql`drop table incentable_audit_leaves`.execute(db);
  },
};
