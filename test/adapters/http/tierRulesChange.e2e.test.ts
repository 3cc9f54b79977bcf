import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import {
  award,
  createMember,
  createProgram,
  expectStatus,
  settle,
  startTestApp,
  type MemberView,
  type TestApp,
  deliveriesSettled,
  replayDifferences,
} from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';
import { startReceiver, type Receiver } from '../../support/receiver.ts';
import { dashboardClient } from '../dashboard/dashboardClient.ts';

type Webhook = { type: string; data: Record<string, unknown> };

const t0 = new Date('2025-04-02T09:00:00.000Z');
const dayMs = 86_400_000;
const root = new URL('../../../', import.meta.url).pathname;
const run = promisify(execFile);

const tiers = (platinum: number, gold = 'Gold') => [
  { name: 'Bronze', min_points: 0 },
  { name: 'Silver', min_points: 500 },
  { name: gold, min_points: 1_000 },
  { name: 'Platinum', min_points: platinum },
];

describe('tier rules that change', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let receiver: Receiver;
  let programId: string;
  const p = (path: string) => `/v1/programs/${programId}${path}`;
  const webhooks = () => receiver.at('/all').map((w) => JSON.parse(w.body) as Webhook);
  const tierOf = async (id: string) => {
    await settle(app.runtime);
    return expectStatus(await app.api.get<MemberView>(p(`/members/${id}`)), 200).body.tier;
  };
  const updateProgram = async (body: Record<string, unknown>) => {
    expectStatus(await app.api.patch(p(''), body), 200);
    await settle(app.runtime);
  };
  const delivered = () => deliveriesSettled(app);
  /** member.tier_changed webhooks with the rules-changed reason, as [member, from, to]. */
  const ruleMoves = async (since: number) => {
    await delivered();
    return webhooks()
      .slice(since)
      .filter((w) => w.type === 'member.tier_changed' && w.data.reason === 'Tier rules changed')
      .map((w) => [w.data.member_id, w.data.previous_tier, w.data.new_tier])
      .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
  };
  /**
   * The real CLI in a child process. Not spawnSync: blocking this process's event loop (the
   * service under test runs in it) lets the server drop kept-alive connections mid-reuse.
   */
  const cli = async (args: string[]) => {
    const { stdout } = await run(process.execPath, ['bin/incentable.js', ...args], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, DATABASE_URL: app.database.url, LOG_LEVEL: 'silent' },
    });
    return stdout;
  };

  before(async () => {
    receiver = await startReceiver();
    app = await startTestApp({ now: t0 });
    programId = (await createProgram(app.api, { tiers: tiers(2_000) })).id;
    expectStatus(
      await app.api.post(p('/webhook-endpoints'), { url: `${receiver.origin}/all`, events: ['*'] }),
      201,
    );
    await settle(app.runtime);
  });

  after(async () => {
    await app?.stop();
    await receiver?.close();
  });

  describe('a raised threshold', () => {
    let ann: string;
    let ben: string;
    let held: string;
    let gone: string;
    let cat: string;

    before(async () => {
      ann = (await createMember(app.api, programId)).id;
      ben = (await createMember(app.api, programId)).id;
      held = (await createMember(app.api, programId)).id;
      gone = (await createMember(app.api, programId)).id;
      cat = (await createMember(app.api, programId)).id;
      await award(app.api, programId, ann, 2_500);
      await award(app.api, programId, ben, 3_500);
      await award(app.api, programId, held, 2_500);
      await award(app.api, programId, gone, 2_200);
      await award(app.api, programId, cat, 1_200);
      const until = new Date(t0.getTime() + 30 * dayMs).toISOString();
      expectStatus(
        await app.api.patch(p(`/members/${held}`), { tier: 'Silver', tier_locked_until: until }),
        200,
      );
      expectStatus(await app.api.post(p(`/members/${gone}/deactivate`), {}), 200);
      assert.equal(await tierOf(ann), 'Platinum');
      assert.equal(await tierOf(gone), 'Platinum');
    });

    it('moves every member below it once the job has run, with a webhook each', async () => {
      const seen = webhooks().length;
      await updateProgram({ tiers: tiers(3_000) });
      const report = await app.runtime.jobs.tiers();
      assert.equal(report.changed, 2);
      assert.deepEqual(report.reevaluations, [
        { programId, handled: 5, total: 5, moved: 2, finished: true },
      ]);
      assert.equal(await tierOf(ann), 'Gold');
      assert.equal(await tierOf(ben), 'Platinum', 'above the new threshold: stays');
      assert.equal(await tierOf(cat), 'Gold', 'not affected: stays');
      const expected = [
        [ann, 'Platinum', 'Gold'],
        [gone, 'Platinum', 'Gold'],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0])));
      assert.deepEqual(await ruleMoves(seen), expected);
      assert.equal((await app.runtime.jobs.tiers()).changed, 0, 'a second run has nothing to do');
    });

    it('re-evaluates a deactivated member, and skips one whose tier an override holds', async () => {
      assert.equal(await tierOf(gone), 'Gold');
      assert.equal(await tierOf(held), 'Silver');
      // The hold's lapse applies the new rules (the tier job's hold handling).
      app.clock.advance(31 * dayMs);
      assert.equal((await app.runtime.jobs.tiers()).changed, 1);
      assert.equal(await tierOf(held), 'Gold');
    });

    it('moves the holders of a renamed tier to the tier the rules give them', async () => {
      const seen = webhooks().length;
      await updateProgram({ tiers: tiers(3_000, 'Gold Star') });
      const report = await app.runtime.jobs.tiers();
      assert.equal(report.changed, 4);
      for (const id of [ann, gone, held, cat]) assert.equal(await tierOf(id), 'Gold Star');
      const moves = await ruleMoves(seen);
      assert.equal(moves.length, 4);
      assert.ok(moves.every(([, from, to]) => from === 'Gold' && to === 'Gold Star'));
    });

    it('applies a switch of the tier basis', async () => {
      // Balance 1,700 of 3,500 lifetime: Platinum on lifetime points, Gold Star on the balance.
      expectStatus(
        await app.api.post(p(`/members/${ben}/points/deduct`), { points: 1_800, reason: 'fix' }),
        201,
      );
      assert.equal(await tierOf(ben), 'Platinum');
      const seen = webhooks().length;
      await updateProgram({ tier_basis: 'balance' });
      assert.equal(await tierOf(ben), 'Platinum', 'nothing moves before the job runs');
      const report = await app.runtime.jobs.tiers();
      assert.equal(report.changed, 1);
      assert.equal(await tierOf(ben), 'Gold Star');
      assert.deepEqual(await ruleMoves(seen), [[ben, 'Platinum', 'Gold Star']]);
    });
  });

  describe('a job stopped half-way', () => {
    let other: string;
    let members: string[];
    const q = (path: string) => `/v1/programs/${other}${path}`;

    before(async () => {
      other = (await createProgram(app.api, { tiers: tiers(2_000) })).id;
      expectStatus(
        await app.api.post(q('/webhook-endpoints'), {
          url: `${receiver.origin}/all`,
          events: ['*'],
        }),
        201,
      );
      members = [];
      for (let i = 0; i < 5; i++) {
        const id = (await createMember(app.api, other)).id;
        await award(app.api, other, id, 1_200);
        members.push(id);
      }
      await settle(app.runtime);
    });

    it('resumes after its last page and moves each member exactly once', async () => {
      const seen = webhooks().length;
      expectStatus(
        await app.api.patch(q(''), {
          tiers: [
            { name: 'Bronze', min_points: 0 },
            { name: 'Silver', min_points: 500 },
            { name: 'Gold', min_points: 5_000 },
          ],
        }),
        200,
      );
      await settle(app.runtime);
      const first = await app.runtime.jobs.tiers({ pageSize: 2, maxPages: 1 });
      assert.equal(first.changed, 2);
      assert.deepEqual(first.reevaluations, [
        { programId: other, handled: 2, total: 5, moved: 2, finished: false },
      ]);

      // Progress while it runs: the CLI and the program's dashboard page.
      assert.match(
        await cli(['jobs', 'status']),
        new RegExp(`program ${other}: 2 of 5 members re-evaluated, 2 moved \\(running\\)`),
      );
      const dashboard = dashboardClient(app.url);
      await dashboard.signIn(app.rootKey);
      await dashboard.get('/dashboard/programs');
      await dashboard.post('/dashboard/program', {
        _csrf: dashboard.csrf(),
        program_id: other,
      });
      const page = await dashboard.get('/dashboard/overview');
      assert.equal(page.status, 200);
      assert.match(
        page.text.replace(/\s+/g, ' '),
        /Re-evaluating tiers after the rules changed: 2 of 5 members/,
      );

      const rest = await app.runtime.jobs.tiers({ pageSize: 2 });
      assert.equal(rest.changed, 3);
      assert.deepEqual(rest.reevaluations, [
        { programId: other, handled: 5, total: 5, moved: 5, finished: true },
      ]);
      const moved = (await ruleMoves(seen)).map(([id]) => id);
      assert.deepEqual([...moved].sort(), [...members].sort(), 'each member moved exactly once');
      for (const id of members) {
        await settle(app.runtime);
        const m = expectStatus(await app.api.get<MemberView>(q(`/members/${id}`)), 200).body;
        assert.equal(m.tier, 'Silver');
      }
      assert.match(await cli(['jobs', 'status']), /no tier re-evaluation is running/);
      const done = await dashboard.get('/dashboard/overview');
      assert.doesNotMatch(done.text, /Re-evaluating tiers/);
    });

    it('starts over when a second change supersedes the first', async () => {
      const seen = webhooks().length;
      const table = (silver: number) => [
        { name: 'Bronze', min_points: 0 },
        { name: 'Silver', min_points: silver },
        { name: 'Gold', min_points: 5_000 },
      ];
      expectStatus(await app.api.patch(q(''), { tiers: table(1_500) }), 200);
      await settle(app.runtime);
      const first = await app.runtime.jobs.tiers({ pageSize: 2, maxPages: 1 });
      assert.equal(first.changed, 2, 'two members down to Bronze');
      expectStatus(await app.api.patch(q(''), { tiers: table(1_000) }), 200);
      await settle(app.runtime);
      const rest = await app.runtime.jobs.tiers({ pageSize: 2 });
      assert.deepEqual(rest.reevaluations, [
        { programId: other, handled: 5, total: 5, moved: 2, finished: true },
      ]);
      // The first two went to Bronze and back to Silver; the other three never moved.
      assert.equal((await ruleMoves(seen)).length, 4);
      for (const id of members) {
        await settle(app.runtime);
        const m = expectStatus(await app.api.get<MemberView>(q(`/members/${id}`)), 200).body;
        assert.equal(m.tier, 'Silver');
      }
    });
  });

  it('replays to the live read models with zero differences', async () => {
    const { differences, total } = await replayDifferences(app);
    assert.deepEqual(differences, []);
    assert.equal(total, 0);
  });
});
