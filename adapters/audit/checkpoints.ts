import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import { systemClock, type Clock } from '../../application/ports.ts';
import { envelopeIdFor, serializeEnvelope } from '../../delivery/envelope.ts';
import type { Database } from '../db/schema.ts';
import { newTimeOrderedId } from '../ids.ts';
import { rootAt, treeSize } from './auditTree.ts';
import { checkpointText, parseCheckpointText, type NoteSigner } from './signedNote.ts';

/** One signed checkpoint as the API lists it. */
export type CheckpointView = {
  size: number;
  root_hash: string;
  created_at: string;
  /** The signed note, exact text. */
  note: string;
};

type Db = Kysely<Database>;

const viewOf = (row: {
  size: string;
  root_hash: string;
  note: string;
  created_at: Date | string;
}): CheckpointView => ({
  size: Number(row.size),
  root_hash: row.root_hash,
  created_at: new Date(row.created_at).toISOString(),
  note: row.note,
});

/**
 * Checkpoints, newest first, below `beforeSize` when given. The order names the table's column:
 * a bare `size` would be the text the select list gives that name, ordered as text.
 */
export const listCheckpoints = async (
  db: Db,
  options: { limit: number; beforeSize?: number; atLeastSize?: number },
): Promise<CheckpointView[]> => {
  const result = await sql<{ size: string; root_hash: string; note: string; created_at: Date }>`
    select size::text, encode(root_hash, 'hex') as root_hash, note, created_at
    from incentable_audit_checkpoints
    where (${options.beforeSize ?? null}::bigint is null or size < ${options.beforeSize ?? null}::bigint)
      and size >= ${options.atLeastSize ?? 0}::bigint
    order by incentable_audit_checkpoints.size desc limit ${options.limit}`.execute(db);
  return result.rows.map(viewOf);
};

/** The smallest checkpoint of at least `size` leaves, or null. */
export const checkpointCovering = async (db: Db, size: number): Promise<CheckpointView | null> => {
  const result = await sql<{ size: string; root_hash: string; note: string; created_at: Date }>`
    select size::text, encode(root_hash, 'hex') as root_hash, note, created_at
    from incentable_audit_checkpoints where size >= ${size}::bigint
    order by incentable_audit_checkpoints.size limit 1`.execute(db);
  const row = result.rows[0];
  return row ? viewOf(row) : null;
};

const checkpointType = 'audit.checkpoint';

/**
 * One `audit.checkpoint` envelope per program with an enabled endpoint that lists the type (never
 * through `*`), and a delivery to each such endpoint; in the checkpoint's transaction. The
 * envelope id derives from the origin, size and program, so a webhook-id names one checkpoint.
 */
const enqueueCheckpointWebhooks = async (
  tx: Db,
  checkpoint: { origin: string; view: CheckpointView; now: Date },
): Promise<number> => {
  const endpoints = await sql<{ endpoint_id: string; program_id: string }>`
    select endpoint_id, program_id from webhook_endpoints
    where enabled and ${checkpointType} = any(events) order by program_id, endpoint_id`.execute(tx);
  const { origin, view, now } = checkpoint;
  const data = { origin, ...view };
  const programs = [...new Set(endpoints.rows.map((row) => row.program_id))];
  for (const programId of programs) {
    const id = envelopeIdFor(`${checkpointType}:${origin}:${view.size}:${programId}`);
    await tx
      .insertInto('webhook_envelopes')
      .values({
        envelope_id: id,
        program_id: programId,
        type: checkpointType,
        body: serializeEnvelope({ id, type: checkpointType, createdAt: now, data }),
        source_event_id: null,
        is_test: false,
        created_at: now,
      })
      .onConflict((oc) => oc.column('envelope_id').doNothing())
      .execute();
    const rows = endpoints.rows.filter((row) => row.program_id === programId);
    await tx
      .insertInto('webhook_deliveries')
      .values(
        rows.map((row) => ({
          delivery_id: newTimeOrderedId('webhookDelivery', now.getTime()),
          program_id: programId,
          endpoint_id: row.endpoint_id,
          envelope_id: id,
          series: 0,
          status: 'pending' as const,
          next_attempt_at: now,
          created_at: now,
          updated_at: now,
        })),
      )
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
  return endpoints.rows.length;
};

/** A tile index as tlog-tiles spells it: 3-digit groups, all but the last prefixed with x. */
export const tilePath = (level: number, index: number, width: number): string => {
  const digits = String(index).padStart(3, '0');
  const groups: string[] = [];
  for (let end = digits.length; end > 0; end -= 3)
    groups.unshift(digits.slice(Math.max(0, end - 3), end).padStart(3, '0'));
  const name = groups.map((group, i) => (i < groups.length - 1 ? `x${group}` : group)).join('/');
  return `tile/${level}/${name}${width === 256 ? '' : `.p/${width}`}`;
};

const writeAtomically = async (path: string, content: string | Buffer): Promise<void> => {
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, content);
  await rename(temporary, path);
};

/** The hashes of tree level `treeLevel` from `first` up to (not including) `end`, in order. */
const levelHashes = async (
  db: Db,
  treeLevel: number,
  first: number,
  end: number,
): Promise<Buffer[]> => {
  const result =
    treeLevel === 0
      ? await sql<{ hash: Buffer | Uint8Array }>`
          select hash from incentable_audit_leaves
          where leaf_index >= ${first}::bigint and leaf_index < ${end}::bigint
          order by leaf_index`.execute(db)
      : await sql<{ hash: Buffer | Uint8Array }>`
          select hash from incentable_audit_nodes
          where level = ${treeLevel} and node_index >= ${first}::bigint
            and node_index < ${end}::bigint
          order by node_index`.execute(db);
  return result.rows.map((row) => Buffer.from(row.hash));
};

/**
 * The checkpoint and the tree's hash tiles of c2sp.org/tlog-tiles under `dir`: `checkpoint` (the
 * newest), `checkpoints/<size>` (each), `tile/<L>/<N>[.p/<W>]`. The tiles written before (up to
 * the previous `checkpoint` file's size) are not written again.
 */
export const writeCheckpointDir = async (
  db: Db,
  dir: string,
  view: CheckpointView,
): Promise<void> => {
  const previous = await dirSize(dir);
  const size = view.size;
  for (let level = 0; 256 ** level <= size; level++) {
    const perHash = 256 ** level;
    const hashes = Math.floor(size / perHash);
    const firstTile = Math.floor(Math.floor(previous / perHash) / 256);
    const lastTile = Math.floor((hashes - 1) / 256);
    const read = await levelHashes(db, 8 * level, firstTile * 256, hashes);
    for (let tile = firstTile; tile <= lastTile; tile++) {
      const from = (tile - firstTile) * 256;
      const slice = read.slice(from, from + 256);
      await writeAtomically(join(dir, tilePath(level, tile, slice.length)), Buffer.concat(slice));
    }
  }
  await writeAtomically(join(dir, 'checkpoints', String(size).padStart(12, '0')), view.note);
  await writeAtomically(join(dir, 'checkpoint'), view.note);
};

/** The size of the newest checkpoint in `dir`, 0 when there is none. */
const dirSize = async (dir: string): Promise<number> =>
  readFile(join(dir, 'checkpoint'), 'utf8').then(
    (note) => parseCheckpointText(note.slice(0, note.indexOf('\n\n') + 1))?.size ?? 0,
    () => 0,
  );

const catchUpDir = async (db: Db, dir: string): Promise<void> => {
  const [newest] = await listCheckpoints(db, { limit: 1 });
  if (newest && (await dirSize(dir)) < newest.size) await writeCheckpointDir(db, dir, newest);
};

export type Checkpointer = {
  /** Signs a checkpoint of the tree as it stands, unless the newest one already has its size. */
  make: () => Promise<CheckpointView | null>;
};

/**
 * Makes checkpoints: signs the tree's size and root, keeps the note, queues its webhooks in the
 * same transaction, then writes it and the tiles to `dir` when set. Checkpoints of one size are
 * one (the size is the key): two processes making one at once make one.
 */
export const createCheckpointer = (deps: {
  db: Db;
  signer: NoteSigner;
  dir: string | null;
  clock?: Clock;
  /** Told after commit how many webhook deliveries a checkpoint queued. */
  onQueued?: (deliveries: number) => void;
}): Checkpointer => {
  const clock = deps.clock ?? systemClock;
  const { db, signer } = deps;
  return {
    make: async () => {
      const made = await db.transaction().execute(async (tx) => {
        await sql`select pg_advisory_xact_lock(hashtext('incentable.audit.checkpoint'))`.execute(
          tx,
        );
        const size = await treeSize(tx);
        const newest = await listCheckpoints(tx, { limit: 1 });
        if (size === 0 || (newest[0]?.size ?? 0) >= size) return null;
        const root = await rootAt(tx, size);
        const note = signer.sign(checkpointText({ origin: signer.name, size, root }));
        const now = clock.now();
        await sql`insert into incentable_audit_checkpoints (size, root_hash, note, created_at)
          values (${size}::bigint, decode(${root.toString('hex')}, 'hex'), ${note}, ${now})`.execute(
          tx,
        );
        const view: CheckpointView = {
          size,
          root_hash: root.toString('hex'),
          created_at: now.toISOString(),
          note,
        };
        const queued = await enqueueCheckpointWebhooks(tx, { origin: signer.name, view, now });
        return { view, queued };
      });
      if (made === null) {
        // A directory write that failed before (a full disk) is made good once it can be.
        if (deps.dir !== null) await catchUpDir(db, deps.dir);
        return null;
      }
      if (made.queued > 0) deps.onQueued?.(made.queued);
      if (deps.dir !== null) await writeCheckpointDir(db, deps.dir, made.view);
      return made.view;
    },
  };
};
