import type { CommandContext } from '../../../application/commandHandler.ts';
import type { Clock } from '../../../application/ports.ts';
import type { Incentives } from '../../../application/incentives.ts';

/** A clock the test moves: one minute per reading, so every fact has its own moment. */
export const steppingClock = (start = Date.parse('2026-01-05T08:00:00Z'), stepMs = 60_000) => {
  let now = start;
  const clock: Clock & { peek: () => number } = {
    now: () => new Date((now += stepMs)),
    peek: () => now,
  };
  return clock;
};

const context: CommandContext = {
  programId: null,
  actor: 'key_audit',
  correlationId: 'audit-test',
  causationId: null,
};

/** A deterministic pseudo-random sequence (mulberry32), so a failing run can be repeated. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

/**
 * `commands` mixed commands against one program: registrations, awards, deductions, redemptions,
 * shipping, delivery, cancellations, reward and member changes, deactivations, leaderboards and
 * forced period closes. Returns the program and member ids.
 */
export const runScript = async (
  incentives: Incentives,
  commands: number,
  seed = 42,
): Promise<{ programId: string; memberIds: string[] }> => {
  const next = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const created = await incentives.createProgram(
    {
      name: 'Audit program',
      tiers: [
        { name: 'Bronze', minPoints: 0 },
        { name: 'Silver', minPoints: 2000 },
        { name: 'Gold', minPoints: 6000 },
      ],
      tierBasis: 'lifetime',
      pointsExpiryDays: 365,
      timezone: 'Europe/Berlin',
      notificationEmail: 'ops@example.com',
    },
    context,
  );
  if (!created.ok) throw new Error(created.message);
  const first = created.value.events[0]!;
  if (first.type !== 'ProgramCreated') throw new Error('no program');
  const programId = first.data.programId;
  const ctx = { ...context, programId };
  const memberIds: string[] = [];
  const rewardIds: string[] = [];
  const leaderboardIds: string[] = [];
  const orderIds: string[] = [];

  for (let i = 0; i < commands; i++) {
    const roll = next();
    // Few members and one board: every award re-ranks the board (a PositionChanged for the scorer
    // and for whoever crosses the top 10).
    if (memberIds.length < 20 || (roll < 0.04 && memberIds.length < 60)) {
      const outcome = await incentives.registerMember(
        programId,
        { email: `m${i}@example.com`, name: `Member ${i}`, externalId: `ext${i}`, attributes: {} },
        ctx,
      );
      if (outcome.ok) {
        const e = outcome.value.events[0];
        if (e?.type === 'MemberRegistered') memberIds.push(e.data.memberId);
      }
    } else if (rewardIds.length < 3 || roll < 0.05) {
      const outcome = await incentives.createReward(
        programId,
        {
          name: `Reward ${i}`,
          pointsCost: 100 + Math.floor(next() * 900),
          stock: next() < 0.5 ? 50 : null,
          kind: next() < 0.5 ? 'physical' : 'digital',
        },
        ctx,
      );
      if (outcome.ok) {
        const e = outcome.value.events[0];
        if (e?.type === 'RewardCreated') rewardIds.push(e.data.rewardId);
      }
    } else if (leaderboardIds.length < 1) {
      const outcome = await incentives.createLeaderboard(
        programId,
        { name: `Board ${i}`, period: 'weekly', topN: 10 },
        ctx,
      );
      if (outcome.ok) {
        const e = outcome.value.events[0];
        if (e?.type === 'LeaderboardCreated') leaderboardIds.push(e.data.leaderboardId);
      }
    } else if (roll < 0.6) {
      await incentives.movePoints(
        programId,
        pick(memberIds),
        {
          direction: 'award',
          points: 10 + Math.floor(next() * 500),
          reason: 'sale',
          reference: `inv${i}`,
        },
        ctx,
      );
    } else if (roll < 0.72) {
      await incentives.movePoints(
        programId,
        pick(memberIds),
        {
          direction: 'deduct',
          points: 5 + Math.floor(next() * 200),
          reason: 'fix',
          reference: null,
        },
        ctx,
      );
    } else if (roll < 0.82) {
      const outcome = await incentives.redeem(programId, pick(memberIds), pick(rewardIds), ctx);
      if (outcome.ok) orderIds.push(outcome.value.orderId);
    } else if (roll < 0.87 && orderIds.length > 0) {
      await incentives.shipOrder(
        programId,
        pick(orderIds),
        { carrier: 'DHL', trackingNumber: `T${i}` },
        ctx,
      );
    } else if (roll < 0.9 && orderIds.length > 0) {
      await incentives.deliverOrder(programId, pick(orderIds), ctx);
    } else if (roll < 0.92 && orderIds.length > 0) {
      await incentives.cancelOrder(programId, pick(orderIds), 'changed mind', ctx);
    } else if (roll < 0.95) {
      await incentives.updateMember(
        programId,
        pick(memberIds),
        { name: `Renamed ${i}`, attributes: { region: pick(['north', 'south']), rank: i } },
        ctx,
      );
    } else if (roll < 0.96) {
      await incentives.changeReward(
        programId,
        pick(rewardIds),
        { pointsCost: 100 + Math.floor(next() * 900) },
        ctx,
      );
    } else if (roll < 0.965) {
      await incentives.deactivateMember(programId, pick(memberIds), ctx);
    } else if (roll < 0.97) {
      await incentives.closePeriod(programId, pick(leaderboardIds), true, ctx);
    } else {
      await incentives.movePoints(
        programId,
        pick(memberIds),
        { direction: 'award', points: 1000, reason: 'bonus', reference: null },
        ctx,
      );
    }
  }
  return { programId, memberIds };
};
