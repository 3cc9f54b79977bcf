import { onTables } from '../../../adapters/db/schema.ts';
import type { ApplicationTables } from '../../../application/policyTables.ts';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Kysely } from 'kysely';
import { CommandHandler } from '../../../application/commandHandler.ts';
import { policiesSubscription, policyReactor } from '../../../application/policyReactor.ts';
import type { Subscription } from '../../../application/ports.ts';
import { projectReadModels, readModelsProjection } from '../../../projections/readModels.ts';
import type { ReadModelTables } from '../../../projections/readModelTables.ts';
import {
  award,
  createMember,
  createProgram,
  expectStatus,
  settle,
  startTestApp,
  type MemberView,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';

/** Issue 14 item 6: ?after_position covers the tier the policy reactor moves, and says so. */
describe('reading your write with ?after_position', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let programId: string;
  /** Subscriptions this test started in place of the runtime's, stopped before the app. */
  const replacements: Subscription[] = [];

  const readMember = async (memberId: string, position?: string) => {
    const query = position === undefined ? '' : `?after_position=${position}`;
    const response = expectStatus(
      await app.api.get<MemberView>(`/v1/programs/${programId}/members/${memberId}${query}`),
      200,
    );
    return {
      tier: response.body.tier,
      balance: response.body.balance,
      reached: response.headers.get('incentable-position-reached'),
    };
  };

  /** The runtime's own policy reactor, subscribed again (the runtime's stays stopped). */
  const restartReactor = async () => {
    const { runtime, clock } = app;
    replacements.push(
      await runtime.store.subscribe({
        name: policiesSubscription,
        transactional: false,
        handle: onTables<ApplicationTables>(
          policyReactor({
            handler: new CommandHandler({ store: runtime.store }),
            incentives: runtime.incentives,
            clock,
          }),
        ),
      }),
    );
  };

  before(async () => {
    // A held-back projection answers after this long; short, so the test is quick.
    app = await startTestApp({ env: { READ_WAIT_TIMEOUT_MS: '1000' } });
    // Bronze 0, Silver 500, Gold 1000, on lifetime points.
    programId = (await createProgram(app.api)).id;
  });

  after(async () => {
    for (const subscription of replacements) await subscription.stop();
    await app?.stop();
  });

  it('has the tier an award reached, right after it, and says the position was reached', async () => {
    for (const points of [600, 1200, 500]) {
      const member = await createMember(app.api, programId);
      const awarded = await award(app.api, programId, member.id, points);
      assert.deepEqual(await readMember(member.id, awarded.position), {
        tier: points >= 1000 ? 'Gold' : 'Silver',
        balance: points,
        reached: 'true',
      });
    }
  });

  it('sends no Incentable-Position-Reached without after_position', async () => {
    const member = await createMember(app.api, programId);
    assert.equal((await readMember(member.id, member.position)).reached, 'true');
    assert.equal((await readMember(member.id)).reached, null);
  });

  it('answers 200 with Incentable-Position-Reached: false while the policy reactor is held back', async () => {
    await settle(app.runtime);
    await app.runtime.policies!.stop();
    const member = await createMember(app.api, programId);
    const awarded = await award(app.api, programId, member.id, 700);
    // The read models have the balance, but no reactor has moved the tier: not reached.
    assert.deepEqual(await readMember(member.id, awarded.position), {
      tier: 'Bronze',
      balance: 700,
      reached: 'false',
    });
    await restartReactor();
    assert.deepEqual(await readMember(member.id, awarded.position), {
      tier: 'Silver',
      balance: 700,
      reached: 'true',
    });
  });

  it('answers 200 with Incentable-Position-Reached: false while the read models are held back', async () => {
    // The runtime's reactor is stopped (a replacement runs): wait on the API, not its checkpoint.
    const member = await createMember(app.api, programId);
    assert.equal((await readMember(member.id, member.position)).reached, 'true');
    await app.runtime.readModels!.stop();
    const awarded = await award(app.api, programId, member.id, 300);
    assert.deepEqual(await readMember(member.id, awarded.position), {
      tier: 'Bronze',
      balance: 0,
      reached: 'false',
    });
    replacements.push(
      await app.runtime.store.subscribe({
        name: readModelsProjection,
        handle: (events, tx) => projectReadModels(events, tx as unknown as Kysely<ReadModelTables>),
      }),
    );
    assert.deepEqual(await readMember(member.id, awarded.position), {
      tier: 'Bronze',
      balance: 300,
      reached: 'true',
    });
  });
});
