import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import {
  DataDirLockedError,
  lockDataDir,
  lockFileName,
  type DataDirLock,
} from '../../../adapters/db/dataDirLock.ts';
import { waitFor } from '../../support/postgres.ts';

const root = new URL('../../../', import.meta.url).pathname;
const holderScript = new URL('./dataDirLockHolder.ts', import.meta.url).pathname;

type Holder = {
  pid: number;
  send: (line: string) => void;
  /** The next line the holder prints. */
  answer: () => Promise<string>;
  exited: Promise<number | null>;
};

const children: ChildProcess[] = [];

/** Another process running dataDirLockHolder.ts on `dir`, loaded and waiting for commands. */
const startHolder = async (dir: string): Promise<Holder> => {
  const child = spawn(process.execPath, ['--import', 'tsx', holderScript, dir], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let read = 0;
  const answer = async () => {
    // Generous: six tsx children loading at once on a busy machine took over 20 s to say ready.
    await waitFor(
      'the holder to answer',
      () => lines.length > read || child.exitCode !== null,
      60_000,
    );
    const line = lines[read++];
    if (line === undefined) throw new Error(`the holder exited with ${child.exitCode}`);
    return line;
  };
  assert.equal(await answer(), 'ready');
  return { pid: child.pid!, send: (line) => child.stdin.write(`${line}\n`), answer, exited };
};

/** A pid that was a process and no longer is (reaped, so not even a zombie). */
const deadPid = async (): Promise<number> => {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
};

const lockFile = (dir: string) => join(dir, lockFileName);
const holderOf = (dir: string) => readFileSync(lockFile(dir), 'utf8');

describe('data directory lock', () => {
  let dir: string;
  const held: DataDirLock[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'incentable-lock-'));
  });
  afterEach(() => {
    for (const lock of held.splice(0)) lock.release();
    rmSync(dir, { recursive: true, force: true });
  });
  after(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    }
  });

  it('refuses a second process while the first holds it', async () => {
    const holder = await startHolder(dir);
    holder.send('lock');
    assert.equal(await holder.answer(), 'held');
    assert.throws(
      () => held.push(lockDataDir(dir)),
      (error: unknown) =>
        error instanceof DataDirLockedError && error.pid === holder.pid && error.dir === dir,
    );
    assert.equal(holderOf(dir), String(holder.pid));
  });

  it('refuses a second open in the same process', () => {
    held.push(lockDataDir(dir));
    assert.throws(
      () => held.push(lockDataDir(dir)),
      (error: unknown) => error instanceof DataDirLockedError && error.pid === process.pid,
    );
  });

  it('lets the next process in once the holder releases it', async () => {
    const holder = await startHolder(dir);
    holder.send('lock');
    assert.equal(await holder.answer(), 'held');
    holder.send('release');
    assert.equal(await holder.answer(), 'released');
    assert.equal(existsSync(lockFile(dir)), false);
    held.push(lockDataDir(dir));
    assert.equal(holderOf(dir), String(process.pid));
  });

  it('removes its file on release, and a release twice is harmless', () => {
    const lock = lockDataDir(dir);
    assert.equal(holderOf(dir), String(process.pid));
    lock.release();
    lock.release();
    assert.deepEqual(readdirSync(dir), []);
    held.push(lockDataDir(dir));
  });

  it('is released when its process exits normally without releasing it', async () => {
    const holder = await startHolder(dir);
    holder.send('lock');
    assert.equal(await holder.answer(), 'held');
    holder.send('exit');
    assert.equal(await holder.exited, 0);
    assert.equal(existsSync(lockFile(dir)), false);
  });

  it('takes over a stale lock whose process is dead', async () => {
    writeFileSync(lockFile(dir), String(await deadPid()));
    held.push(lockDataDir(dir));
    assert.equal(holderOf(dir), String(process.pid));
    assert.deepEqual(readdirSync(dir), [lockFileName]);
  });

  it('takes over a lock an earlier process with its pid left (pid 1 in a container)', () => {
    writeFileSync(lockFile(dir), String(process.pid));
    held.push(lockDataDir(dir));
    assert.equal(holderOf(dir), String(process.pid));
  });

  it('leaves a stale lock alone while another live process is taking it over', async () => {
    const stale = String(await deadPid());
    writeFileSync(lockFile(dir), stale);
    // The takeover guard, held by a live process in the middle of its takeover.
    const taker = await startHolder(dir);
    writeFileSync(`${lockFile(dir)}.takeover`, String(taker.pid));
    assert.throws(
      () => held.push(lockDataDir(dir)),
      (error: unknown) => error instanceof DataDirLockedError && error.pid === taker.pid,
    );
    assert.equal(holderOf(dir), stale);
  });

  it('takes over a takeover guard left by a process that died in its takeover', async () => {
    writeFileSync(lockFile(dir), String(await deadPid()));
    writeFileSync(`${lockFile(dir)}.takeover`, String(await deadPid()));
    held.push(lockDataDir(dir));
    assert.equal(holderOf(dir), String(process.pid));
    assert.deepEqual(readdirSync(dir), [lockFileName]);
  });

  it('gives a stale lock to exactly one of many processes racing for it', async () => {
    writeFileSync(lockFile(dir), String(await deadPid()));
    const racers = await Promise.all(Array.from({ length: 6 }, () => startHolder(dir)));
    for (const racer of racers) racer.send('lock');
    const answers = await Promise.all(racers.map((racer) => racer.answer()));
    const winners = racers.filter((_, i) => answers[i] === 'held');
    assert.equal(winners.length, 1, `answers: ${answers.join(', ')}`);
    const winner = winners[0]!;
    assert.equal(holderOf(dir), String(winner.pid));
    for (const answer of answers.filter((a) => a !== 'held')) {
      // A loser names the winner, or a racer that held the takeover guard at that moment.
      const pid = Number(answer.replace('locked ', ''));
      assert.ok(
        racers.some((racer) => racer.pid === pid),
        `${answer} names a racer`,
      );
    }
  });
});
