// Issue 16: "benchmarks must not rot". Every bench under bench/ runs here in its smoke mode
// (BENCH_QUICK=1: tiny sizes, short runs), so a bench that no longer matches the code fails CI
// instead of failing the next person who measures. Only that it runs to the end and prints its
// table is checked: the figures of a smoke run on a loaded CI machine mean nothing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { skipWithoutPostgres } from '../support/postgres.ts';

const root = new URL('../../', import.meta.url).pathname;

/** Runs `node [args]` from the repository root; resolves with its exit code and output. */
const run = async (
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> => {
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
};

const tail = (text: string) => text.split('\n').slice(-30).join('\n');

/** The benches that measure on PostgreSQL, and a line each prints only once it has finished. */
const benches: { file: string; printed: RegExp; env?: Record<string, string> }[] = [
  // Phases shorter than the quick mode's where a bench's time is mostly fixed-length phases: CI
  // runs all of these in one file, the longest of its run (334 s on a quiet 2-vCPU machine).
  { file: 'bench/eventstore/run.ts', printed: /^total \d+ s$/m, env: { BENCH_SECONDS: '0.5' } },
  {
    file: 'bench/eventstore/diagnose.ts',
    printed: /\| .+ \|/,
    env: { BENCH_SECONDS: '0.5' },
  },
  // Group commit on only: off is the same code path with one env value, and halves the run.
  {
    file: 'bench/api/run.ts',
    printed: /\| API awards\/s/,
    env: { BENCH_GROUP_COMMIT: 'on', BENCH_SECONDS: '2', BENCH_STORE_SECONDS: '1' },
  },
  {
    file: 'bench/webhooks/run.ts',
    printed: /\| ours: /,
    env: { BENCH_EVENTS: '1000', BENCH_BASELINE_EVENTS: '500', BENCH_LATENCY_SECONDS: '2' },
  },
  { file: 'bench/webhooks/cpu.ts', printed: /^got \(the baseline's client\), \d+ POSTs: /m },
  { file: 'bench/webhooks/diagnose.ts', printed: /^record transaction, \d+ rows: p50 /m },
  { file: 'bench/audit/run.ts', printed: /^export jsonl to \/dev\/null: /m },
  { file: 'bench/audit/checkpoints.ts', printed: /^audit verify --checkpoints, in-process: \d/m },
  { file: 'bench/leaderboards/run.ts', printed: /\| .+ \|/ },
  // test/adapters/http/fuzz.e2e.test.ts sends 10,000 cases: here only that the bench runs.
  { file: 'bench/fuzz/run.ts', printed: /\| .+ \|/, env: { BENCH_CASES: '2000' } },
  { file: 'bench/reliability/soak.ts', printed: /^no problems$/m },
  { file: 'bench/destinations/run.ts', printed: /^nats +[\d,]+ +[\d,]+ /m },
  {
    file: 'bench/telemetry/run.ts',
    printed: /^deliveries +json +[\d,]+ deliveries\/s +[\d,]+ /m,
  },
];

describe('every bench runs in its smoke mode', { skip: skipWithoutPostgres }, () => {
  for (const { file, printed, env } of benches)
    it(file, { timeout: 300_000 }, async () => {
      const { code, stdout, stderr } = await run(['--import', 'tsx', file], {
        BENCH_QUICK: '1',
        ...env,
      });
      assert.equal(code, 0, `${file} exited ${code}:\n${tail(stderr)}\n${tail(stdout)}`);
      assert.match(stdout, printed, `${file} did not print its figures:\n${tail(stdout)}`);
    });

  it('bench/api/profile.ts summarises a CPU profile', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'incentable-profile-'));
    try {
      const profiled = await run([
        '--cpu-prof',
        `--cpu-prof-dir=${dir}`,
        '-e',
        'let x = 0; for (let i = 0; i < 3e7; i++) x += i % 7; JSON.stringify({ x });',
      ]);
      assert.equal(profiled.code, 0, profiled.stderr);
      const [profile] = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
      assert.ok(profile, 'node wrote a profile');
      const { code, stdout, stderr } = await run([
        '--import',
        'tsx',
        'bench/api/profile.ts',
        join(dir, profile),
      ]);
      assert.equal(code, 0, stderr);
      assert.match(stdout, /\d/, `no figures:\n${tail(stdout)}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
