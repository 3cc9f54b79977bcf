import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CommandHandler } from '../../application/commandHandler.ts';
import { openDatabase, type DatabaseHandle } from '../../adapters/db/database.ts';
import { PostgresEventStore } from '../../adapters/eventstore/postgresEventStore.ts';
import { pointsAccount } from '../../domain/pointsAccount.ts';
import { createTestDatabase, skipWithoutPostgres, type TestDatabase } from '../support/postgres.ts';

const context = { programId: 'prg_t', actor: 'key_test', correlationId: 'c', causationId: null };
const movement = (type: 'AwardPoints' | 'DeductPoints', points: number, n: number) =>
  ({
    type,
    data: {
      transactionId: `txn_${type}${n}`,
      memberId: 'mem_a',
      points,
      reason: 'test',
      reference: null,
      now: new Date('2026-01-01T00:00:00Z'),
    },
  }) as const;

describe('command handler on PostgreSQL', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  const handles: DatabaseHandle[] = [];
  const stores: PostgresEventStore[] = [];
  before(async () => {
    database = await createTestDatabase();
  });
  after(async () => {
    for (const store of stores) await store.close();
    for (const handle of handles) await handle.close();
    await database?.drop();
  });

  /** Two handlers over two connection pools: two processes racing on one stream. */
  const twoProcesses = async () => {
    const made: CommandHandler[] = [];
    for (let i = 0; i < 2; i++) {
      const handle = await openDatabase({ kind: 'postgres', url: database.url });
      const store = new PostgresEventStore(handle);
      handles.push(handle);
      stores.push(store);
      made.push(new CommandHandler({ store, maxAttempts: 50 }));
    }
    return made;
  };

  describe('with 100 points in an account', () => {
    it('lets exactly 10 of 50 concurrent deductions of 10 succeed, from two processes, and refuses 40', async () => {
      const [a, b] = await twoProcesses();
      const stream = 'points-prg_t-mem_a';
      const funded = await a!.handle(pointsAccount, stream, movement('AwardPoints', 100, 0), {
        ...context,
        now: new Date(),
      });
      assert.equal(funded.ok, true);
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, n) =>
          (n % 2 === 0 ? a! : b!).handle(pointsAccount, stream, movement('DeductPoints', 10, n), {
            ...context,
            now: new Date(),
          }),
        ),
      );
      const accepted = results.filter((r) => r.ok);
      const refused = results.filter((r) => !r.ok);
      assert.equal(accepted.length, 10);
      assert.equal(refused.length, 40);
      for (const r of refused) assert.equal(!r.ok && r.rejection, 'insufficient_points');
      const events = await stores[0]!.readStream(stream);
      assert.equal(events.length, 11, 'one award and exactly ten deductions were appended');
      const { state } = await new CommandHandler({ store: stores[0]! }).load(pointsAccount, stream);
      assert.equal(state.balance, 0);
    });
  });
  describe('with a cached fold that another process has outdated', () => {
    it("does not refuse on the stale fold: a deduction covered by the other process's award succeeds", async () => {
      const [a, b] = await twoProcesses();
      const stream = 'points-prg_t-mem_b';
      const now = { ...context, now: new Date() };
      assert.equal(
        (await a!.handle(pointsAccount, stream, movement('AwardPoints', 10, 100), now)).ok,
        true,
      );
      // B awards 90 more; A's cache still says 10.
      await b!.load(pointsAccount, stream);
      assert.equal(
        (await b!.handle(pointsAccount, stream, movement('AwardPoints', 90, 101), now)).ok,
        true,
      );
      const deducted = await a!.handle(
        pointsAccount,
        stream,
        movement('DeductPoints', 50, 102),
        now,
      );
      assert.ok(deducted.ok, 'the deduction is decided on the fresh balance of 100');
      assert.equal(deducted.state.balance, 50);
    });

    it('appends nothing twice when its stale fold accepts: the expected revision sends it back to read', async () => {
      const [a, b] = await twoProcesses();
      const stream = 'points-prg_t-mem_c';
      const now = { ...context, now: new Date() };
      await a!.handle(pointsAccount, stream, movement('AwardPoints', 100, 200), now);
      await b!.load(pointsAccount, stream);
      await b!.handle(pointsAccount, stream, movement('DeductPoints', 80, 201), now);
      // A still believes 100: its deduction of 50 must now be refused, on the real balance of 20.
      const refused = await a!.handle(
        pointsAccount,
        stream,
        movement('DeductPoints', 50, 202),
        now,
      );
      assert.equal(!refused.ok && refused.rejection, 'insufficient_points');
      assert.equal((await stores[0]!.readStream(stream)).length, 2);
    });
  });
});
