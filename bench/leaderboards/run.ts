/**
 * Leaderboard webhooks per award on real PostgreSQL (issue 14): one board with BENCH_MEMBERS
 * (1,000) members and an endpoint subscribed to `leaderboard.position_changed` on a loopback
 * receiver, then single awards, each counted once everything it causes is queued:
 *   - the member in last place jumps to #1 (everyone else moves down one place),
 *   - the new last jumps to the middle of the board,
 *   - #1 extends the lead (nobody else moves).
 * The members are seeded in descending order, so each newcomer enters last and moves nobody: the
 * seeding costs the same in every version, and the bench runs unchanged on the code before the
 * change (copy this file into a checkout of it) for the "before" figures.
 *
 *   npx tsx bench/leaderboards/run.ts
 *   BENCH_QUICK=1 npx tsx bench/leaderboards/run.ts        (smoke run: 200 members)
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import type { Runtime } from '../../adapters/runtime.ts';
import { cpuPressure, fmtInt, fmtMs } from '../eventstore/support.ts';
import {
  adminApiKey,
  databases,
  pool,
  printMachine,
  startBenchRuntime,
  tuningEnv,
} from '../webhooks/harness.ts';

const memberCount = Number(
  process.env.BENCH_MEMBERS ?? (process.env.BENCH_QUICK === '1' ? 200 : 1000),
);

const dbs = databases();

type Counts = { webhooks: number; events: number };

const counts = async (runtime: Runtime): Promise<Counts> => {
  const db = runtime.database.db;
  const webhooks = await sql<{ n: number }>`
    select count(*)::int as n from webhook_deliveries d join webhook_envelopes v using (envelope_id)
    where v.type = 'leaderboard.position_changed'`.execute(db);
  const events = await sql<{ n: number }>`
    select count(*)::int as n from incentable_events where type = 'PositionChanged'`.execute(db);
  return { webhooks: webhooks.rows[0]!.n, events: events.rows[0]!.n };
};

/** Until the award is scored and every webhook it causes is queued. */
const settle = async (runtime: Runtime): Promise<void> => {
  for (let i = 0; i < 2; i++) {
    await runtime.policies!.caughtUp();
    await runtime.readModels!.caughtUp();
    await runtime.webhookProjection!.caughtUp();
  }
};

const main = async () => {
  await printMachine(`leaderboard webhooks per award, ${fmtInt(memberCount)} members`);
  let received = 0;
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received++;
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

  const db = await dbs.create();
  const runtime = await startBenchRuntime(db.url, { ...tuningEnv(), LOG_LEVEL: 'warn' });
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const response = await fetch(`${runtime.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${adminApiKey}`, 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return JSON.parse(text) as T;
  };
  try {
    const program = await call<{ id: string }>('POST', '/v1/programs', {
      name: 'Leaderboard bench',
      notification_email: 'ops@example.com',
    });
    const p = (path: string) => `/v1/programs/${program.id}${path}`;
    const board = await call<{ id: string }>('POST', p('/leaderboards'), {
      name: 'Monthly',
      period: 'monthly',
    });
    await call('POST', p('/webhook-endpoints'), {
      url: receiverUrl,
      events: ['leaderboard.position_changed'],
    });
    const members: string[] = new Array<string>(memberCount);
    const seedStarted = performance.now();
    await pool(memberCount, 8, async (i) => {
      const member = await call<{ id: string }>('POST', p('/members'), {
        email: `bench${i}@example.com`,
        name: `Bench ${i}`,
      });
      members[i] = member.id;
    });
    await settle(runtime);
    // Descending: member i scores 10 × (count - i) and enters in place i + 1.
    for (let i = 0; i < memberCount; i++) {
      await call('POST', p(`/members/${members[i]}/points/award`), {
        points: 10 * (memberCount - i),
        reason: 'seed',
      });
    }
    await settle(runtime);
    const seeded = await counts(runtime);
    console.log(
      `seeded ${fmtInt(memberCount)} members in ${fmtMs(performance.now() - seedStarted)} ms: ` +
        `${fmtInt(seeded.webhooks)} position_changed webhooks, ${fmtInt(seeded.events)} PositionChanged events`,
    );

    const top = 10 * memberCount;
    const scenarios = [
      { what: 'last place jumps to #1', member: members[memberCount - 1]!, points: top },
      {
        what: 'new last place jumps to the middle',
        member: members[memberCount - 2]!,
        points: 10 * Math.floor(memberCount / 2),
      },
      { what: '#1 extends the lead', member: members[memberCount - 1]!, points: 10 },
    ];
    const rows: string[] = [];
    for (const scenario of scenarios) {
      const before = await counts(runtime);
      await call('POST', p(`/members/${scenario.member}/points/award`), {
        points: scenario.points,
        reason: 'bench',
      });
      await settle(runtime);
      const after = await counts(runtime);
      rows.push(
        `| ${scenario.what} | ${fmtInt(after.webhooks - before.webhooks)} | ${fmtInt(after.events - before.events)} |`,
      );
    }
    const standings = await call<{ standings: { member_id: string; position: number }[] }>(
      'GET',
      p(`/leaderboards/${board.id}/standings`),
    );
    if (standings.standings[0]?.member_id !== members[memberCount - 1])
      throw new Error('the jump to #1 is not on the board');
    console.log(`\nCPU pressure at the end (PSI cpu some avg10): ${cpuPressure()}%`);
    console.log('\n| award | position_changed webhooks | PositionChanged events recorded |');
    console.log('| --- | --- | --- |');
    for (const row of rows) console.log(row);
    console.log(`\n(the receiver has had ${fmtInt(received)} POSTs so far)`);
  } finally {
    await runtime.stop();
    receiver.close();
    await dbs.dropAll();
  }
};

await main();
