import { linkSync, readFileSync, realpathSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Another live process holds the data directory. Thrown before anything in the directory is
 * opened: the embedded database's files were not touched.
 */
export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError';
  /** The holder's pid, as its lock file names it. */
  readonly pid: number;
  readonly dir: string;

  constructor(options: { dir: string; pid: number }) {
    super(
      `DATA_DIR ${options.dir} is held by the running service (pid ${options.pid}), or by another ` +
        `incentable command: the embedded database (PGlite) is opened by one process at a time, ` +
        `because a second one corrupts it, so nothing was opened. Stop the service (pid ` +
        `${options.pid}) and run this again, or set DATABASE_URL to use PostgreSQL, which any ` +
        `number of processes can share.`,
    );
    this.pid = options.pid;
    this.dir = options.dir;
  }
}

/** A held lock; `release` is idempotent and runs by itself when the process exits normally. */
export type DataDirLock = { release: () => void };

export const lockFileName = 'incentable.lock';

/** The lock files this process holds (real paths): a second open in the same process is refused. */
const heldHere = new Set<string>();

/**
 * Deep enough for a takeover guard left by a process that died inside a takeover, itself left by
 * one that died inside its own: each level needs a crash within a few system calls.
 */
const maxGuardDepth = 4;

/**
 * Takes `dir`'s lock file, `incentable.lock`, holding this process's pid (the directory must
 * exist). One live process at a time holds it; a lock whose pid is dead (or that names no pid) is
 * stale and taken over.
 * Throws DataDirLockedError when a live process holds it, this one included.
 *
 * Atomic: the file appears with its content by link(2), which fails if the name exists, so there
 * is never a lock file without a pid, nor two holders. A stale file is removed only by the holder
 * of its takeover guard (`incentable.lock.takeover`, taken by the same rule), after it has checked
 * under the guard that the file still names the dead pid; the new holder then creates the file
 * like anyone else, and whoever links first wins.
 */
export const lockDataDir = (dir: string): DataDirLock => {
  const path = join(realpathSync(dir), lockFileName);
  if (heldHere.has(path)) throw new DataDirLockedError({ dir, pid: process.pid });
  claim(path, dir, 0);
  heldHere.add(path);
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.removeListener('exit', release);
    heldHere.delete(path);
    // Only a file naming this pid is ours to remove; no one else replaces it while we live.
    if (readHolder(path) === String(process.pid)) unlinkIfPresent(path);
  };
  process.on('exit', release);
  return { release };
};

const claim = (path: string, dir: string, depth: number): void => {
  for (;;) {
    if (createHolding(path)) return;
    const holder = readHolder(path);
    // Released between our link and our read: try again.
    if (holder === null) continue;
    const pid = parsePid(holder);
    // Our own pid here is stale too: this process holds no such file (heldHere, and a guard is
    // never claimed twice), so an earlier process with our pid left it, as pid 1 in a container.
    if (pid !== null && pid !== process.pid && isAlive(pid))
      throw new DataDirLockedError({ dir, pid });
    if (depth >= maxGuardDepth)
      throw new Error(`cannot take over the stale lock ${path}: remove it and its .takeover files`);
    const guard = `${path}.takeover`;
    claim(guard, dir, depth + 1);
    try {
      if (readHolder(path) === holder) unlinkIfPresent(path);
    } finally {
      unlinkIfPresent(guard);
    }
  }
};

/** Links a complete file holding our pid to `path`; false when `path` exists. */
const createHolding = (path: string): boolean => {
  const draft = `${path}.${process.pid}.tmp`;
  writeFileSync(draft, String(process.pid), { mode: 0o600 });
  try {
    linkSync(draft, path);
    return true;
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  } finally {
    unlinkIfPresent(draft);
  }
};

/** The lock file's content, or null when there is none. */
const readHolder = (path: string): string | null => {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return null;
    throw error;
  }
};

const parsePid = (content: string): number | null =>
  /^[1-9][0-9]*$/.test(content.trim()) ? Number(content.trim()) : null;

/** Signal 0 checks without signalling: ESRCH means no such process; EPERM, someone else's. */
const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) !== 'ESRCH';
  }
};

const unlinkIfPresent = (path: string): void => {
  try {
    unlinkSync(path);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
};

const errorCode = (error: unknown): string | undefined =>
  error instanceof Error && 'code' in error ? String(error.code) : undefined;
