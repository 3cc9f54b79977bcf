// Issue 7: "replay of 1M events stays under 300 MB RSS", with the real CLI in a child process.
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
const members = 20_000;
const limitBytes = 300 * 1024 * 1024;

/**
 * Events `from` to `to`, one stream each, shaped like a program's history so that a replay keeps
 * entities as well as writing ledger rows: the first 20,000 register members (ids as long as
 * the service's), then out of every 20 events 14 award points, 4 record leaderboard scores
 * (4 boards), one places an order and the next ships it. Data of the fold's shapes, metadata
 * with the program id; the hashes only look like hashes (a replay does not check them).
 */
const fill = (from: number, to: number) => `
  insert into incentable_events (event_id, stream_name, stream_revision, type, data, metadata, hash)
  select ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
    'replay-prg_memtest-' || i, 0, kind.type,
    case kind.type
      when 'MemberRegistered' then jsonb_build_object('memberId', m.member,
        'programId', 'prg_memtest', 'email', m.member || '@example.com',
        'name', 'Member ' || (i % ${members}), 'externalId', null,
        'attributes', jsonb_build_object('region', 'north'), 'tier', 'Bronze', 'at', m.at)
      when 'ScoreRecorded' then jsonb_build_object('leaderboardId', 'ldb_board' || (i % 4),
        'memberId', m.member, 'points', 10, 'score', i / 100, 'transactionId', 'txn_' || i,
        'at', m.at)
      when 'OrderPlaced' then jsonb_build_object('orderId', 'ord_' || lpad(i::text, 20, '0'),
        'memberId', m.member, 'rewardId', 'rwd_' || (i % 50), 'rewardName', 'Reward ' || (i % 50),
        'kind', 'physical', 'pointsSpent', 100, 'transactionId', 'txn_' || i, 'at', m.at)
      when 'OrderShipped' then jsonb_build_object(
        'orderId', 'ord_' || lpad((i - 1)::text, 20, '0'), 'memberId', m.member,
        'rewardId', 'rwd_' || ((i - 1) % 50), 'carrier', 'DHL', 'trackingNumber', 'T' || i,
        'at', m.at)
      else jsonb_build_object('transactionId', 'txn_' || lpad(i::text, 20, '0'),
        'memberId', m.member, 'points', 10 + i % 490, 'reason', 'purchase at store ' || (i % 97),
        'reference', 'inv_' || i, 'newBalance', i / 100, 'lifetimePoints', i / 100, 'at', m.at)
    end,
    jsonb_build_object('programId', 'prg_memtest', 'actor', 'key_memtest',
      'recordedAt', m.at, 'causationId', null, 'correlationId', gen_random_uuid()),
    md5(i::text) || md5((i + 1)::text)
  from generate_series(${from}, ${to}) as i,
    lateral (select 'mem_' || lpad((i % ${members})::text, 20, '0') as member,
      to_char((timestamptz '2025-01-01 00:00:00+00' + i * interval '1 second') at time zone 'UTC',
        'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as at) as m,
    lateral (select case
      when i < ${members} then 'MemberRegistered'
      when i % 20 between 14 and 17 then 'ScoreRecorded'
      when i % 20 = 18 then 'OrderPlaced'
      when i % 20 = 19 then 'OrderShipped'
      else 'PointsAwarded' end as type) as kind`;

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

describe('replay of 1M events', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  let fillMs = 0;

  before(async () => {
    database = await createTestDatabase();
    const handle = await openDatabase({ kind: 'postgres', url: database.url });
    const started = performance.now();
    // The log's durability is not under test: no WAL for a million rows.
    await sql`alter table incentable_events set unlogged`.execute(handle.db);
    await handle.close();
    const run = async (statement: string) => {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        await client.query(statement);
      } finally {
        await client.end();
      }
    };
    // Members first, in a transaction of their own: registered before anything refers to them.
    await run(fill(0, members - 1));
    const half = Math.floor((members + total) / 2);
    await Promise.all([run(fill(members, half - 1)), run(fill(half, total - 1))]);
    fillMs = performance.now() - started;
  });
  after(async () => {
    await database?.drop();
  });

  it('stays under 300 MB RSS and rebuilds every member, order and ledger row', async (t) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['bin/incentable.js', 'replay', '--json'], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: database.url, LOG_LEVEL: 'silent' },
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
    assert.equal(code, 0, stderr);
    const report = JSON.parse(stdout) as {
      events: number;
      eventsPerSecond: number;
      schema: string;
    };
    t.diagnostic(
      `fill ${(fillMs / 1000).toFixed(1)} s; replay ${((performance.now() - started) / 1000).toFixed(1)} s (${report.eventsPerSecond} events/s), peak RSS ${(peak.hwmKb / 1024).toFixed(0)} MB (VmHWM), max sampled VmRSS ${(peak.rssKb / 1024).toFixed(0)} MB`,
    );
    assert.equal(report.events, total);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const counted = await client.query<{ members: number; orders: number; ledger: number }>(`
        select (select count(*)::int from ${report.schema}.rm_members) as members,
          (select count(*)::int from ${report.schema}.rm_orders) as orders,
          (select count(*)::int from ${report.schema}.rm_ledger) as ledger`);
      const expected = await client.query<{ orders: number; ledger: number }>(`
        select count(*) filter (where type = 'OrderPlaced')::int as orders,
          count(*) filter (where type = 'PointsAwarded')::int as ledger
        from incentable_events`);
      assert.deepEqual(counted.rows[0], { members, ...expected.rows[0] });
    } finally {
      await client.end();
    }
    assert.ok(peak.hwmKb > 0, 'the child was sampled');
    assert.ok(
      peak.hwmKb * 1024 < limitBytes,
      `peak RSS ${(peak.hwmKb / 1024).toFixed(0)} MB is over 300 MB`,
    );
  });
});
