import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { canonicalEvent, chainHash } from '../../adapters/eventstore/canonical.ts';
import type { EventMetadata } from '../../domain/recordedEvent.ts';

/**
 * Writes a realistic, hash-chained history straight into incentable_events / incentable_streams:
 * one program, `members` members, rewards, orders, leaderboards, and points movements with their
 * scores, until `total` events. Deterministic apart from uuids. Rows go in with multi-row inserts
 * (unnest), 5,000 per statement, each statement its own transaction as the store would commit.
 */
export const seedHistory = async (
  url: string,
  options: { total: number; members?: number; onProgress?: (n: number) => void },
): Promise<{ events: number; programId: string }> => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const programId = 'prg_bench';
  const memberCount = options.members ?? 20_000;
  const heads = new Map<string, { revision: number; hash: string | null }>();
  let seed = 7;
  const next = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  let clock = Date.parse('2025-01-01T00:00:00Z');
  const at = () => new Date((clock += 1000)).toISOString();
  type Row = [string, string, number, string, string, string, string];
  let rows: Row[] = [];
  let events = 0;

  const flush = async () => {
    if (rows.length === 0) return;
    const columns = [0, 1, 2, 3, 4, 5, 6].map((i) => rows.map((r) => r[i]));
    await client.query(
      `insert into incentable_events (event_id, stream_name, stream_revision, type, data, metadata, hash)
       select * from unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::jsonb[], $6::jsonb[], $7::text[])`,
      columns,
    );
    rows = [];
    options.onProgress?.(events);
  };
  const append = async (stream: string, type: string, data: Record<string, unknown>) => {
    const head = heads.get(stream) ?? { revision: -1, hash: null };
    const id = randomUUID();
    const metadata: EventMetadata = {
      programId,
      correlationId: id,
      causationId: null,
      actor: 'key_bench',
      recordedAt: data.at as string,
    };
    const hash = chainHash(
      head.hash,
      canonicalEvent({ id, streamName: stream, type, data, metadata }),
    );
    head.revision += 1;
    head.hash = hash;
    heads.set(stream, head);
    rows.push([
      id,
      stream,
      head.revision,
      type,
      JSON.stringify(data),
      JSON.stringify(metadata),
      hash,
    ]);
    events++;
    if (rows.length >= 5000) await flush();
  };

  await append(`program-${programId}-${programId}`, 'ProgramCreated', {
    programId,
    name: 'Bench',
    tiers: [
      { name: 'Bronze', minPoints: 0 },
      { name: 'Silver', minPoints: 5000 },
      { name: 'Gold', minPoints: 20000 },
    ],
    tierBasis: 'lifetime',
    pointsExpiryDays: null,
    timezone: 'UTC',
    notificationEmail: 'ops@example.com',
    at: at(),
  });
  const boards = ['lb_a', 'lb_b', 'lb_c', 'lb_d'];
  for (const leaderboardId of boards)
    await append(`leaderboard-${programId}-${leaderboardId}`, 'LeaderboardCreated', {
      leaderboardId,
      name: leaderboardId,
      period: 'weekly',
      timezone: 'UTC',
      periodStart: '2024-12-30T00:00:00.000Z',
      periodEnd: '2025-01-06T00:00:00.000Z',
      at: at(),
    });
  const rewards = Array.from({ length: 50 }, (_, i) => `rwd_${i}`);
  const stock = new Map<string, number>();
  for (const rewardId of rewards) {
    stock.set(rewardId, 1_000_000);
    await append(`reward-${programId}-${rewardId}`, 'RewardCreated', {
      rewardId,
      name: `Reward ${rewardId}`,
      pointsCost: 100,
      stock: 1_000_000,
      kind: 'physical',
      at: at(),
    });
  }
  const balances = new Map<string, { balance: number; lifetime: number; tier: string | null }>();
  const scores = new Map<string, number>();
  const orders: { orderId: string; memberId: string; rewardId: string; status: string }[] = [];
  let registered = 0;
  let txn = 0;

  while (events < options.total) {
    const roll = next();
    if (registered < memberCount && (registered < 100 || roll < 0.05)) {
      const memberId = `mem_${registered++}`;
      balances.set(memberId, { balance: 0, lifetime: 0, tier: 'Bronze' });
      await append(`member-${programId}-${memberId}`, 'MemberRegistered', {
        memberId,
        programId,
        email: `${memberId}@example.com`,
        name: `Member ${memberId}`,
        externalId: null,
        attributes: { region: 'north' },
        tier: 'Bronze',
        at: at(),
      });
      continue;
    }
    const memberId = `mem_${Math.floor(next() * registered)}`;
    const account = balances.get(memberId)!;
    const transactionId = `txn_${txn++}`;
    const points = `points-${programId}-${memberId}`;
    if (roll < 0.55) {
      const amount = 10 + Math.floor(next() * 500);
      account.balance += amount;
      account.lifetime += amount;
      const time = at();
      await append(points, 'PointsAwarded', {
        transactionId,
        memberId,
        points: amount,
        reason: 'sale',
        reference: `inv_${txn}`,
        newBalance: account.balance,
        lifetimePoints: account.lifetime,
        at: time,
      });
      const leaderboardId = boards[txn % boards.length]!;
      const key = `${leaderboardId}/${memberId}`;
      const score = (scores.get(key) ?? 0) + amount;
      scores.set(key, score);
      await append(`leaderboard-${programId}-${leaderboardId}`, 'ScoreRecorded', {
        leaderboardId,
        memberId,
        points: amount,
        score,
        transactionId,
        at: time,
      });
      await append(`leaderboard-${programId}-${leaderboardId}`, 'PositionChanged', {
        leaderboardId,
        memberId,
        previousPosition: null,
        newPosition: 1 + Math.floor(next() * 100),
        points: score,
        at: time,
      });
      const tier =
        account.lifetime >= 20000 ? 'Gold' : account.lifetime >= 5000 ? 'Silver' : 'Bronze';
      if (tier !== account.tier) {
        await append(`member-${programId}-${memberId}`, 'MemberTierChanged', {
          memberId,
          previousTier: account.tier,
          newTier: tier,
          reason: 'tier policy',
          at: time,
        });
        account.tier = tier;
      }
    } else if (roll < 0.7 && account.balance >= 50) {
      const amount = 1 + Math.floor(next() * Math.min(200, account.balance));
      account.balance -= amount;
      await append(points, 'PointsDeducted', {
        transactionId,
        memberId,
        points: amount,
        reason: 'correction',
        reference: null,
        newBalance: account.balance,
        lifetimePoints: account.lifetime,
        at: at(),
      });
    } else if (roll < 0.82 && account.balance >= 100) {
      const rewardId = rewards[Math.floor(next() * rewards.length)]!;
      const orderId = `ord_${txn}`;
      const time = at();
      account.balance -= 100;
      const totals = { newBalance: account.balance, lifetimePoints: account.lifetime, at: time };
      await append(points, 'PointsDeducted', {
        transactionId,
        memberId,
        points: 100,
        reason: `Redeemed: Reward ${rewardId}`,
        reference: orderId,
        ...totals,
      });
      await append(points, 'RewardRedeemed', {
        transactionId,
        orderId,
        memberId,
        rewardId,
        rewardName: `Reward ${rewardId}`,
        pointsSpent: 100,
        ...totals,
      });
      const remaining = stock.get(rewardId)! - 1;
      stock.set(rewardId, remaining);
      await append(`reward-${programId}-${rewardId}`, 'StockReserved', {
        rewardId,
        orderId,
        remaining,
        at: time,
      });
      await append(`order-${programId}-${orderId}`, 'OrderPlaced', {
        orderId,
        memberId,
        rewardId,
        rewardName: `Reward ${rewardId}`,
        kind: 'physical',
        pointsSpent: 100,
        transactionId,
        at: time,
      });
      orders.push({ orderId, memberId, rewardId, status: 'redeemed' });
    } else if (roll < 0.92 && orders.length > 0) {
      const order = orders[Math.floor(next() * orders.length)]!;
      const stream = `order-${programId}-${order.orderId}`;
      const base = { orderId: order.orderId, memberId: order.memberId, rewardId: order.rewardId };
      if (order.status === 'redeemed') {
        order.status = 'shipped';
        await append(stream, 'OrderShipped', {
          ...base,
          carrier: 'DHL',
          trackingNumber: `T${txn}`,
          at: at(),
        });
      } else if (order.status === 'shipped') {
        order.status = 'delivered';
        await append(stream, 'OrderDelivered', { ...base, at: at() });
      }
    } else {
      await append(`member-${programId}-${memberId}`, 'MemberUpdated', {
        memberId,
        changes: { name: `Renamed ${txn}`, attributes: { region: 'south', n: txn } },
        at: at(),
      });
    }
  }
  await flush();
  const names = [...heads.keys()];
  for (let start = 0; start < names.length; start += 5000) {
    const chunk = names.slice(start, start + 5000);
    await client.query(
      `insert into incentable_streams (stream_name, revision, last_hash)
       select * from unnest($1::text[], $2::bigint[], $3::text[])`,
      [chunk, chunk.map((n) => heads.get(n)!.revision), chunk.map((n) => heads.get(n)!.hash)],
    );
  }
  await client.end();
  return { events, programId };
};
