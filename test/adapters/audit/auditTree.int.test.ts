import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import {
  createAuditTreeBuilder,
  inclusionProofs,
  rootAt,
  treeSize,
} from '../../../adapters/audit/auditTree.ts';
import {
  checkpointCovering,
  createCheckpointer,
  listCheckpoints,
} from '../../../adapters/audit/checkpoints.ts';
import { noteSigner } from '../../../adapters/audit/signedNote.ts';
import { openDatabase, type DatabaseHandle } from '../../../adapters/db/database.ts';
import { PostgresEventStore } from '../../../adapters/eventstore/postgresEventStore.ts';
import type { RecordedEvent } from '../../../domain/recordedEvent.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  type TestDatabase,
} from '../../support/postgres.ts';
import * as rfc from '../../support/rfc9162.ts';

/**
 * The tree builder keeps the tree's right edge between batches: it must notice when that edge is
 * stale (its batch's transaction rolled back; another process took the lease and appended) and
 * read the edge again, never append onto a wrong one.
 */
describe('the audit tree builder', { skip: skipWithoutPostgres }, () => {
  let database: TestDatabase;
  let handle: DatabaseHandle;
  let events: RecordedEvent[];

  before(async () => {
    database = await createTestDatabase();
    handle = await openDatabase({ kind: 'postgres', url: database.url });
    const store = new PostgresEventStore(handle);
    for (let i = 0; i < 40; i++)
      await store.append(
        `points-prg_t-m${i % 7}`,
        [
          {
            id: randomUUID(),
            type: 'Noted',
            data: { i },
            metadata: {
              programId: 'prg_t',
              correlationId: 'c',
              causationId: null,
              actor: 'key_t',
              recordedAt: '2026-01-01T00:00:00.000Z',
            },
          },
        ],
        'any',
      );
    events = await store.readAll({ after: null, limit: 100 });
    await store.close();
  });

  after(async () => {
    await handle?.close();
    await database?.drop();
  });

  const batch = (builder: ReturnType<typeof createAuditTreeBuilder>, from: number, to: number) =>
    handle.db.transaction().execute((tx) => builder(events.slice(from, to), tx));

  it('survives a rolled-back batch and a second builder, and the tree is the RFC tree', async () => {
    const first = createAuditTreeBuilder();
    const second = createAuditTreeBuilder();
    await batch(first, 0, 5);
    // A batch whose transaction rolls back after the builder ran: the first's edge is ahead.
    await assert.rejects(
      handle.db.transaction().execute(async (tx) => {
        await first(events.slice(5, 9), tx);
        throw new Error('rolled back');
      }),
    );
    assert.equal(await treeSize(handle.db), 5);
    await batch(first, 5, 12);
    // Another process takes over for a while, then the first comes back.
    await batch(second, 12, 23);
    await batch(first, 23, 31);
    // A batch handed over again (a checkpoint moved back) adds nothing twice.
    await batch(second, 20, 40);
    const leaves = events.map((e) => rfc.leafHash(Buffer.from(e.hash, 'hex')));
    assert.equal(await treeSize(handle.db), events.length);
    const stored = await sql<{ event_id: string }>`
      select event_id::text from incentable_audit_leaves order by leaf_index`.execute(handle.db);
    assert.deepEqual(
      stored.rows.map((r) => r.event_id),
      events.map((e) => e.id),
    );
    for (const size of [1, 5, 12, 31, 40])
      assert.equal(
        (await rootAt(handle.db, size)).toString('hex'),
        rfc.merkleRoot(leaves.slice(0, size)).toString('hex'),
        `root at ${size}`,
      );
    const proofs = await inclusionProofs(handle.db, [0, 17, 39], 40);
    [0, 17, 39].forEach((index, i) =>
      assert.ok(
        rfc.verifyInclusion({
          leafIndex: index,
          treeSize: 40,
          leafHash: leaves[index]!,
          proof: proofs[i]!,
          root: rfc.merkleRoot(leaves),
        }),
      ),
    );
  });

  // The sizes were selected as text under their own name, so `order by size` sorted them as text:
  // from ten checkpoints on, "9" was the newest, a new one of a size already signed was inserted
  // again (a 500 from the statement route under the fuzz), and listings came out of order.
  it('orders checkpoints by size as numbers, and concurrent makers make one per size', async () => {
    const signer = noteSigner(randomBytes(32).toString('base64'), 'test.example/log');
    for (let size = 1; size <= 12; size++)
      await sql`insert into incentable_audit_checkpoints (size, root_hash, note, created_at)
        values (${size}::bigint, ${await rootAt(handle.db, size)}, ${'note ' + size}, now())`.execute(
        handle.db,
      );
    const listed = await listCheckpoints(handle.db, { limit: 20 });
    assert.deepEqual(
      listed.map((c) => c.size),
      [12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1],
    );
    assert.deepEqual(
      (await listCheckpoints(handle.db, { limit: 3, beforeSize: 11 })).map((c) => c.size),
      [10, 9, 8],
    );
    assert.equal((await checkpointCovering(handle.db, 9))?.size, 9);
    const checkpointer = createCheckpointer({ db: handle.db, signer, dir: null });
    const made = await Promise.all(Array.from({ length: 6 }, () => checkpointer.make()));
    assert.deepEqual(made.map((view) => view?.size ?? null).sort(), [
      40,
      null,
      null,
      null,
      null,
      null,
    ]);
    assert.equal((await listCheckpoints(handle.db, { limit: 1 }))[0]?.size, 40);
  });
});
