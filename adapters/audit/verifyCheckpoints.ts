import { hash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { tilePath } from './checkpoints.ts';
import { openCheckpoint, type Checkpoint, type Verifier } from './signedNote.ts';

/**
 * `audit verify --checkpoints`: recomputes every leaf from the events' stored chain hashes (which
 * plain verify proves match the events), in the log's global order (the order the tree was built
 * in), and the tree's root at each saved checkpoint's size, and compares it with the signed root.
 * Trusts nothing in the database but the events: the tree's tables are not read. With a
 * checkpoint directory holding hash tiles (AUDIT_CHECKPOINT_DIR), the first leaf that differs
 * from its saved tile names the first altered event.
 */

export type CheckpointBreak = {
  kind: 'bad_checkpoint' | 'root_mismatch' | 'leaf_mismatch' | 'truncated';
  /** The checkpoint concerned (its size), when one is. */
  size: number | null;
  /** The leaf concerned, when one is; for root_mismatch without tiles, the first leaf it covers. */
  leafIndex: number | null;
  event: { id: string; stream: string; revision: string } | null;
  message: string;
};

export type CheckpointReport = {
  ok: boolean;
  checkpoints: number;
  leaves: number;
  breaks: number;
  elapsedMs: number;
  leavesPerSecond: number;
};

export type CheckpointSource = { source: string; note: string };

/** The checkpoints under a path: a file holding one note, or a directory (checkpoint, checkpoints/). */
export const readCheckpointSources = async (
  path: string,
): Promise<{ sources: CheckpointSource[]; tilesDir: string | null }> => {
  const info = await stat(path);
  if (!info.isDirectory())
    return { sources: [{ source: path, note: await readFile(path, 'utf8') }], tilesDir: null };
  const files: string[] = [];
  const top = await readdir(path);
  for (const name of top)
    if (name === 'checkpoint' || name.endsWith('.checkpoint')) files.push(join(path, name));
  if (top.includes('checkpoints'))
    for (const name of await readdir(join(path, 'checkpoints')))
      if (!name.endsWith('.tmp')) files.push(join(path, 'checkpoints', name));
  const sources = await Promise.all(
    files.map(async (file) => ({ source: file, note: await readFile(file, 'utf8') })),
  );
  return { sources, tilesDir: top.includes('tile') ? path : null };
};

/** A level-0 tile of a checkpoint directory (the saved leaf hashes), full or widest partial. */
const readTile = async (dir: string | null, tile: number): Promise<Buffer | null> => {
  if (dir === null) return null;
  const full = join(dir, tilePath(0, tile, 256));
  const whole = await readFile(full).catch(() => null);
  if (whole) return whole;
  const partials = await readdir(`${full}.p`).catch(() => [] as string[]);
  const widest = Math.max(0, ...partials.map(Number).filter(Number.isInteger));
  return widest === 0 ? null : readFile(join(`${full}.p`, String(widest))).catch(() => null);
};

/** The first 32-byte slot where two runs of leaf hashes differ, or -1. */
const firstDifference = (computed: Buffer, saved: Buffer): number => {
  const slots = Math.min(computed.length, saved.length) / 32;
  for (let i = 0; i < slots; i++)
    if (computed.compare(saved, i * 32, i * 32 + 32, i * 32, i * 32 + 32) !== 0) return i;
  return -1;
};

/**
 * The tree's right edge as bare hashes, for one pass over a million leaves: one-shot hashing into
 * reused buffers, no node objects (merkle.ts's Frontier keeps refs for the store).
 */
const leanFrontier = () => {
  const stack: Buffer[] = [];
  const pair = Buffer.alloc(65);
  pair[0] = 1;
  let size = 0;
  const node = (left: Buffer, right: Buffer): Buffer => {
    left.copy(pair, 1);
    right.copy(pair, 33);
    return hash('sha256', pair, 'buffer');
  };
  return {
    size: () => size,
    push: (leaf: Buffer): void => {
      let h = leaf;
      for (let n = size; n % 2 === 1; n = Math.floor(n / 2)) h = node(stack.pop() as Buffer, h);
      stack.push(h);
      size++;
    },
    root: (): Buffer => {
      if (stack.length === 0) return hash('sha256', Buffer.alloc(0), 'buffer');
      let acc = stack[stack.length - 1] as Buffer;
      for (let i = stack.length - 2; i >= 0; i--) acc = node(stack[i] as Buffer, acc);
      return acc;
    },
  };
};

type LeafRow = { hash: string; commit: string; prepare: string };

/**
 * The events in the log's global order (the order the tree was built in), from a keyset
 * position: the hashes only, the tree's tables not read at all.
 */
const readEventPage = async (
  db: Kysely<Database>,
  after: { commit: string; prepare: string } | null,
  limit: number,
) =>
  (
    await sql<LeafRow>`
      select hash, transaction_id::text as commit, global_position::text as prepare
      from incentable_events
      where ${after === null ? sql`true` : sql`(transaction_id, global_position) > (${after.commit}::xid8, ${after.prepare}::bigint)`}
      order by transaction_id, global_position limit ${limit}`.execute(db)
  ).rows;

const eventAt = async (db: Kysely<Database>, leaf: number): Promise<CheckpointBreak['event']> => {
  const result = await sql<{ id: string; stream: string; revision: string }>`
    select event_id::text as id, stream_name as stream, stream_revision::text as revision
    from incentable_events order by transaction_id, global_position
    offset ${leaf} limit 1`.execute(db);
  return result.rows[0] ?? null;
};

/** The signed checkpoints, opened with the trusted key, smallest first; the bad ones reported. */
const openAll = async (
  sources: CheckpointSource[],
  verifier: Verifier,
  report: (b: CheckpointBreak) => Promise<void>,
): Promise<Checkpoint[]> => {
  const bySize = new Map<number, Checkpoint>();
  for (const { source, note } of sources) {
    const opened = openCheckpoint(note, verifier);
    if (!opened.ok) {
      await report({
        kind: 'bad_checkpoint',
        size: null,
        leafIndex: null,
        event: null,
        message: `${source}: ${opened.reason}`,
      });
      continue;
    }
    const known = bySize.get(opened.checkpoint.size);
    if (known && !known.root.equals(opened.checkpoint.root)) {
      await report({
        kind: 'bad_checkpoint',
        size: opened.checkpoint.size,
        leafIndex: null,
        event: null,
        message: `${source}: two checkpoints signed for size ${opened.checkpoint.size} with different roots (a forked log)`,
      });
    }
    bySize.set(opened.checkpoint.size, opened.checkpoint);
  }
  return [...bySize.values()].sort((a, b) => a.size - b.size);
};

/** Walks the leaves once, checking each checkpoint's root as its size is reached. */
export const verifyCheckpoints = async (
  db: Kysely<Database>,
  options: {
    sources: CheckpointSource[];
    verifier: Verifier;
    tilesDir: string | null;
    pageSize?: number;
    onBreak?: (b: CheckpointBreak) => void | Promise<void>;
    now?: () => number;
  },
): Promise<CheckpointReport> => {
  const now = options.now ?? (() => performance.now());
  const started = now();
  let breaks = 0;
  const report = async (b: CheckpointBreak) => {
    breaks++;
    await options.onBreak?.(b);
  };
  const checkpoints = await openAll(options.sources, options.verifier, report);
  const largest = checkpoints.at(-1)?.size ?? 0;
  const frontier = leanFrontier();
  const limit = options.pageSize ?? 20_000;
  const leaf = Buffer.alloc(33);
  /** This tile's recomputed leaf hashes, compared with the saved tile when it is complete. */
  const tile = Buffer.alloc(256 * 32);
  let firstTileMismatch: number | null = null;
  let lastGood = 0;
  let next = 0;
  const compareTile = async (tileIndex: number, filled: number): Promise<void> => {
    if (firstTileMismatch !== null || options.tilesDir === null) return;
    const saved = await readTile(options.tilesDir, tileIndex);
    if (!saved) return;
    const at = firstDifference(tile.subarray(0, filled * 32), saved);
    if (at !== -1) firstTileMismatch = tileIndex * 256 + at;
  };
  let checkpointAt = 0;
  let failed = false;
  let pending = checkpoints.length > 0 ? readEventPage(db, null, Math.min(limit, largest)) : null;
  while (pending !== null && !failed) {
    const page = await pending;
    const last = page.at(-1);
    const remaining = largest - next - page.length;
    pending = last && remaining > 0 ? readEventPage(db, last, Math.min(limit, remaining)) : null;
    pending?.catch(() => {});
    for (const row of page) {
      leaf.write(row.hash, 1, 'hex');
      const leafHash = hash('sha256', leaf, 'buffer');
      leafHash.copy(tile, (next % 256) * 32);
      frontier.push(leafHash);
      next++;
      if (next % 256 === 0) await compareTile(next / 256 - 1, 256);
      while (checkpointAt < checkpoints.length && checkpoints[checkpointAt]?.size === next) {
        const checkpoint = checkpoints[checkpointAt] as Checkpoint;
        checkpointAt++;
        if (next % 256 !== 0) await compareTile(Math.floor(next / 256), next % 256);
        if (!frontier.root().equals(checkpoint.root)) {
          await report(await rootMismatch(db, checkpoint, lastGood, firstTileMismatch));
          failed = true;
          break;
        }
        lastGood = checkpoint.size;
      }
      if (failed) break;
    }
    if (page.length === 0) break;
  }
  for (const checkpoint of checkpoints)
    if (checkpoint.size > next && breaks === 0)
      await report({
        kind: 'truncated',
        size: checkpoint.size,
        leafIndex: next,
        event: null,
        message: `the log holds ${next} events, the checkpoint signed ${checkpoint.size}: events were removed`,
      });
  const elapsedMs = now() - started;
  return {
    ok: breaks === 0,
    checkpoints: checkpoints.length,
    leaves: next,
    breaks,
    elapsedMs,
    leavesPerSecond: elapsedMs > 0 ? Math.round((next / elapsedMs) * 1000) : next,
  };
};

const rootMismatch = async (
  db: Kysely<Database>,
  checkpoint: Checkpoint,
  lastGood: number,
  firstTileMismatch: number | null,
): Promise<CheckpointBreak> => {
  if (firstTileMismatch !== null && firstTileMismatch < checkpoint.size) {
    const event = await eventAt(db, firstTileMismatch);
    return {
      kind: 'leaf_mismatch',
      size: checkpoint.size,
      leafIndex: firstTileMismatch,
      event,
      message: `the log does not match the checkpoint of size ${checkpoint.size}: the first differing event is leaf ${firstTileMismatch}${event ? `, ${event.id} (${event.stream} @ revision ${event.revision})` : ''}`,
    };
  }
  const event = await eventAt(db, lastGood);
  return {
    kind: 'root_mismatch',
    size: checkpoint.size,
    leafIndex: lastGood,
    event,
    message: `the log does not match the checkpoint of size ${checkpoint.size}: an event among leaves ${lastGood} to ${checkpoint.size - 1} was changed, removed or reordered (the earlier checkpoints match; keep the checkpoint directory's tiles to name the event)`,
  };
};
