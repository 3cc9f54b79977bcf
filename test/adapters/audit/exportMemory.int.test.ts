// Issue 7: "export of 1M events stays under 150 MB RSS", with the real CLI in a child process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { openDatabase } from '../../../adapters/db/database.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  type TestDatabase,
} from '../../support/postgres.ts';

const root = new URL('../../../', import.meta.url).pathname;
const total = 1_000_000;
const limitBytes = 150 * 1024 * 1024;

/**
 * One statement per half fills the log: points events, 50 per member stream, with data and
 * metadata shaped (and sized, ~400 bytes together) like the store's. Ids and streams ascend with
 * `i`, so every index grows at its right edge (random uuids and interleaved streams fill slower).
 * The hashes only look like hashes: the export does not check them, `audit verify` would.
 */
const fill = (from: number, to: number) => `
  insert into incentable_events (event_id, stream_name, stream_revision, type, data, metadata, hash)
  select ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
    'points-prg_memtest-mem_' || lpad((i / 50)::text, 20, '0'),
    i % 50,
    'PointsAwarded',
    jsonb_build_object(
      'at', to_char(t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'points', 10 + i % 490,
      'reason', 'purchase at store ' || (i % 97) || ', "receipt" ' || md5(i::text),
      'memberId', 'mem_' || lpad((i % 20000)::text, 20, '0'),
      'reference', 'inv_' || i,
      'newBalance', (i / 20000) * 250,
      'transactionId', 'txn_' || lpad(i::text, 20, '0'),
      'lifetimePoints', (i / 20000) * 250),
    jsonb_build_object(
      'actor', 'key_' || substr(md5((i % 7)::text), 1, 20),
      'programId', 'prg_memtest',
      'recordedAt', to_char(t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'causationId', null,
      'correlationId', gen_random_uuid()),
    md5(i::text) || md5((i + 1)::text)
  from generate_series(${from}, ${to}) as i,
    lateral (select timestamptz '2025-01-01 00:00:00+00' + i * interval '1 second' as t) as moment`;

type Peak = { rssKb: number; hwmKb: number };

/** Reads VmRSS and VmHWM (peak) of a live process, in kB; null once it has gone. */
const memoryOf = (pid: number): Peak | null => {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch {
    return null;
  }
};

describe('export of 1M events', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  let fillMs = 0;

  before(async () => {
    database = await createTestDatabase();
    const handle = await openDatabase({ kind: 'postgres', url: database.url });
    const started = performance.now();
    // The log's durability is not under test: no WAL for a million rows.
    await sql`alter table incentable_events set unlogged`.execute(handle.db);
    await handle.close();
    const half = total / 2;
    await Promise.all(
      [fill(0, half - 1), fill(half, total - 1)].map(async (statement) => {
        const client = new pg.Client({ connectionString: database.url });
        await client.connect();
        try {
          await client.query(statement);
        } finally {
          await client.end();
        }
      }),
    );
    fillMs = performance.now() - started;
  });
  after(async () => {
    await database?.drop();
  });

  it('stays under 150 MB RSS and writes every event, one line each', async (t) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['bin/incentable.js', 'export'], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: database.url, LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let lines = 0;
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    let peak: Peak = { rssKb: 0, hwmKb: 0 };
    const sample = () => {
      const now = memoryOf(child.pid!);
      // A process that has exited but is not yet reaped has no memory lines: skip it.
      if (now && Number.isFinite(now.rssKb) && Number.isFinite(now.hwmKb))
        peak = { rssKb: Math.max(peak.rssKb, now.rssKb), hwmKb: Math.max(peak.hwmKb, now.hwmKb) };
    };
    const sampler = setInterval(sample, 50);
    const [code] = (await once(child, 'close')) as [number | null];
    clearInterval(sampler);
    const exportS = (performance.now() - started) / 1000;
    t.diagnostic(
      `fill ${(fillMs / 1000).toFixed(1)} s; export ${exportS.toFixed(1)} s, peak RSS ${(peak.hwmKb / 1024).toFixed(0)} MB (VmHWM), max sampled VmRSS ${(peak.rssKb / 1024).toFixed(0)} MB`,
    );
    assert.equal(code, 0, stderr);
    assert.equal(lines, total);
    assert.ok(peak.hwmKb > 0, 'the child was sampled');
    assert.ok(
      peak.hwmKb * 1024 < limitBytes,
      `peak RSS ${(peak.hwmKb / 1024).toFixed(0)} MB is over 150 MB`,
    );
  });
});
