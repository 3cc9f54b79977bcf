import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { verifyChains } from '../../../adapters/audit/verify.ts';
import {
  readCheckpointSources,
  verifyCheckpoints,
  type CheckpointBreak,
} from '../../../adapters/audit/verifyCheckpoints.ts';
import { checkConsistency, verifyStatement } from '../../../adapters/audit/proofCheck.ts';
import { parseVerifier } from '../../../adapters/audit/signedNote.ts';
import { createCheckpointer } from '../../../adapters/audit/checkpoints.ts';
import type { Database } from '../../../adapters/db/schema.ts';
import { comparePositions } from '../../../domain/recordedEvent.ts';
import {
  award,
  createMember,
  createProgram,
  expectStatus,
  runningClock,
  settle,
  startTestApp,
  type Api,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';
import {
  always,
  headerOf,
  startReceiver,
  stringHeaders,
  type Receiver,
} from '../../support/receiver.ts';
import * as rfc from '../../support/rfc9162.ts';
import { docsSnippetAccepts, standardWebhooksAccepts } from '../../support/docsSnippet.ts';
import { logLeaves, recomputeEverything } from './attacker.ts';

type CheckpointItem = { size: number; root_hash: string; created_at: string; note: string };
type PublicKey = { origin: string; verifier_key: string; public_key_pem: string };
type Statement = {
  balance: number;
  ledger: { event_id: string; balance_after: number }[];
  checkpoint: CheckpointItem;
  events: {
    event_id: string;
    leaf_index: number;
    leaf_hash: string;
    hash: string;
    inclusion_proof: string[];
  }[];
};

const origin = 'audit.test.example/incentable';

describe(
  'verifiable history: checkpoints, proofs, statements',
  { skip: skipWithoutPostgres },
  () => {
    let app: TestApp;
    let api: Api;
    let db: Kysely<Database>;
    let programId: string;
    let memberIds: string[];
    let checkpointDir: string;
    let savedDir: string;
    let key: PublicKey;
    let receiver: Receiver;
    let witnessSecret: string;
    let everythingId: string;

    /** Waits until the tree has every event of the log. */
    const treeCaughtUp = async () => {
      await settle(app.runtime);
      const last = await sql<{ commit: string; prepare: string }>`
      select transaction_id::text as commit, global_position::text as prepare
      from incentable_events order by transaction_id desc, global_position desc limit 1`.execute(
        db,
      );
      const row = last.rows[0]!;
      const position = { commit: BigInt(row.commit), prepare: BigInt(row.prepare) };
      await waitFor('the audit tree to catch up', () => {
        const reached = app.runtime.audit.tree?.checkpoint();
        return (
          reached !== null && reached !== undefined && comparePositions(reached, position) >= 0
        );
      });
    };

    const checkpointNow = async (): Promise<CheckpointItem> => {
      await treeCaughtUp();
      await app.runtime.audit.checkpointer.make();
      const listed = expectStatus(
        await api.get<{ data: CheckpointItem[] }>('/v1/audit/checkpoints'),
        200,
      );
      return listed.body.data[0]!;
    };

    before(async () => {
      checkpointDir = await mkdtemp(join(tmpdir(), 'incentable-checkpoints-'));
      savedDir = await mkdtemp(join(tmpdir(), 'incentable-witness-'));
      receiver = await startReceiver(always(200));
      app = await startTestApp({
        clock: runningClock(),
        env: {
          AUDIT_SIGNING_KEY: crypto.randomBytes(32).toString('base64'),
          AUDIT_ORIGIN: origin,
          AUDIT_CHECKPOINT_DIR: checkpointDir,
        },
      });
      api = app.api;
      db = app.runtime.database.db;
      programId = (await createProgram(api)).id;
      const witness = expectStatus(
        await api.post<{ secret: string }>(`/v1/programs/${programId}/webhook-endpoints`, {
          url: `${receiver.origin}/witness`,
          events: ['audit.checkpoint'],
        }),
        201,
      );
      witnessSecret = witness.body.secret;
      everythingId = expectStatus(
        await api.post<{ id: string }>(`/v1/programs/${programId}/webhook-endpoints`, {
          url: `${receiver.origin}/everything`,
          events: ['*'],
        }),
        201,
      ).body.id;
      expectStatus(
        await api.post(`/v1/programs/${programId}/webhook-endpoints`, {
          url: `${receiver.origin}/both`,
          events: ['*', 'audit.checkpoint'],
        }),
        201,
      );
      memberIds = [];
      for (let i = 0; i < 3; i++) memberIds.push((await createMember(api, programId)).id);
      for (let i = 0; i < 9; i++) await award(api, programId, memberIds[i % 3]!, 10 + i);
      key = expectStatus(await api.get<PublicKey>('/v1/audit/public-key'), 200).body;
    });

    after(async () => {
      await app?.stop();
      await receiver?.close();
      await rm(checkpointDir, { recursive: true, force: true });
      await rm(savedDir, { recursive: true, force: true });
    });

    it('publishes its key as a signed-note verifier key and a PEM of the same key', () => {
      assert.equal(key.origin, origin);
      const parsed = rfc.parseVerifierKey(key.verifier_key);
      assert.equal(parsed.name, origin);
      const pem = crypto.createPublicKey(key.public_key_pem).export({ format: 'jwk' });
      assert.equal(
        Buffer.from(pem.x!, 'base64url').toString('hex'),
        parsed.publicKey.toString('hex'),
      );
    });

    it('signs a checkpoint of the whole log that an independent implementation verifies', async () => {
      const checkpoint = await checkpointNow();
      const opened = rfc.verifyNote(checkpoint.note, key.verifier_key);
      assert.ok(opened, checkpoint.note);
      const parsed = rfc.parseCheckpoint(opened.text)!;
      const leaves = await logLeaves(db);
      const events = Number(
        (await sql<{ n: string }>`select count(*)::text as n from incentable_events`.execute(db))
          .rows[0]!.n,
      );
      assert.equal(leaves.length, events);
      assert.equal(Number(parsed.size), events);
      assert.equal(checkpoint.size, events);
      assert.equal(parsed.origin, origin);
      assert.equal(parsed.root.toString('hex'), rfc.merkleRoot(leaves).toString('hex'));
      assert.equal(checkpoint.root_hash, parsed.root.toString('hex'));
      // The tree's order is the log's commit order.
      const order = await sql<{ same: boolean }>`
      select bool_and(a.event_id = b.event_id) as same from
        (select event_id, row_number() over (order by leaf_index) as n from incentable_audit_leaves) a
        join (select event_id, row_number() over (order by transaction_id, global_position) as n
          from incentable_events) b on a.n = b.n`.execute(db);
      assert.equal(order.rows[0]!.same, true);
      // Out of the database: the newest note, and the leaf hashes as tlog-tiles.
      assert.equal(await readFile(join(checkpointDir, 'checkpoint'), 'utf8'), checkpoint.note);
      const tile = await readFile(join(checkpointDir, `tile/0/000.p/${events}`));
      assert.equal(tile.toString('hex'), Buffer.concat(leaves).toString('hex'));
    });

    it('makes no checkpoint when nothing changed', async () => {
      const before = await checkpointNow();
      assert.equal(await app.runtime.audit.checkpointer.make(), null);
      const listed = (await api.get<{ data: CheckpointItem[] }>('/v1/audit/checkpoints')).body.data;
      assert.equal(listed[0]!.size, before.size);
    });

    it('sends the checkpoint to endpoints that picked audit.checkpoint, signed like any webhook', async () => {
      await receiver.waitForCount(1, { path: '/witness' });
      const got = receiver.at('/witness')[0]!;
      assert.equal(headerOf(got, 'x-incentable-event'), 'audit.checkpoint');
      const signature = headerOf(got, 'x-incentable-signature');
      assert.ok(docsSnippetAccepts(got.body, signature, witnessSecret), 'the docs snippet');
      assert.ok(standardWebhooksAccepts(witnessSecret, got.body, stringHeaders(got)), 'standard');
      assert.equal(docsSnippetAccepts(`${got.body} `, signature, witnessSecret), false);
      const body = JSON.parse(got.body) as {
        type: string;
        data: CheckpointItem & { origin: string };
      };
      assert.equal(body.type, 'audit.checkpoint');
      assert.ok(rfc.verifyNote(body.data.note, key.verifier_key));
      // "*" does not include an opt-in type.
      const sentToAll = await sql<{ n: string }>`
      select count(*)::text as n from webhook_deliveries d
      join webhook_envelopes v on v.envelope_id = d.envelope_id
      join webhook_endpoints p on p.endpoint_id = d.endpoint_id
      where v.type = 'audit.checkpoint' and p.url like '%/everything'`.execute(db);
      assert.equal(sentToAll.rows[0]!.n, '0');
      // Beside "*", by name: it gets them too.
      await waitFor('a checkpoint at the endpoint that named it beside "*"', () =>
        receiver.at('/both').some((r) => headerOf(r, 'x-incentable-event') === 'audit.checkpoint'),
      );
      // A replay of everything to the "*" endpoint leaves them out as well.
      expectStatus(
        await api.post(`/v1/programs/${programId}/webhook-endpoints/${everythingId}/replay`, {
          since: '2000-01-01T00:00:00Z',
        }),
        202,
      );
      const replayed = await sql<{ n: string }>`
        select count(*)::text as n from webhook_deliveries d
        join webhook_envelopes v on v.envelope_id = d.envelope_id
        where d.endpoint_id = ${everythingId} and v.type = 'audit.checkpoint'`.execute(db);
      assert.equal(replayed.rows[0]!.n, '0');
    });

    it('writes a checkpoint the directory missed (a failed write) once it can', async () => {
      await award(api, programId, memberIds[0]!, 1);
      await treeCaughtUp();
      const unwritable = createCheckpointer({
        db,
        signer: app.runtime.audit.signer,
        dir: join(checkpointDir, 'checkpoint', 'not-a-directory'),
      });
      await assert.rejects(unwritable.make());
      const missed = (await api.get<{ data: CheckpointItem[] }>('/v1/audit/checkpoints')).body
        .data[0]!;
      assert.notEqual(await readFile(join(checkpointDir, 'checkpoint'), 'utf8'), missed.note);
      assert.equal(await app.runtime.audit.checkpointer.make(), null);
      assert.equal(await readFile(join(checkpointDir, 'checkpoint'), 'utf8'), missed.note);
    });

    it('proves consistency between checkpoints, checked independently', async () => {
      const older = await checkpointNow();
      for (let i = 0; i < 5; i++) await award(api, programId, memberIds[i % 3]!, 7);
      const newer = await checkpointNow();
      const response = expectStatus(
        await api.get<{ proof: string[]; from_root: string; to_root: string }>(
          `/v1/audit/proofs/consistency?from=${older.size}&to=${newer.size}`,
        ),
        200,
      );
      const proof = response.body.proof.map((h) => Buffer.from(h, 'hex'));
      const leaves = await logLeaves(db);
      assert.deepEqual(
        proof.map((h) => h.toString('hex')),
        rfc.consistencyProof(leaves.slice(0, newer.size), older.size).map((h) => h.toString('hex')),
      );
      assert.ok(
        rfc.verifyConsistency({
          oldSize: older.size,
          newSize: newer.size,
          oldRoot: Buffer.from(older.root_hash, 'hex'),
          newRoot: Buffer.from(newer.root_hash, 'hex'),
          proof,
        }),
      );
      const verifier = parseVerifier(key.verifier_key)!;
      assert.equal(
        checkConsistency({ oldNote: older.note, newNote: newer.note, proof, verifier }).ok,
        true,
      );
    });

    it('refuses a consistency query it cannot answer with a typed 400', async () => {
      for (const [query, field] of [
        ['from=2&to=999999', 'to'],
        ['from=5&to=2', 'from'],
        ['from=-1&to=2', 'from'],
        ['from=1', 'to'],
        ['from=01&to=2', 'from'],
      ] as const) {
        const response = await api.get<unknown>(`/v1/audit/proofs/consistency?${query}`);
        assert.equal(response.status, 400, `${query}: ${response.text}`);
        assert.equal(response.body.error?.field, field, `${query}: ${response.text}`);
      }
    });

    it("gives a member's statement whose every event is proven against a signed checkpoint", async () => {
      const memberId = memberIds[0]!;
      await treeCaughtUp();
      const response = expectStatus(
        await api.get<Statement>(`/v1/programs/${programId}/members/${memberId}/statement`),
        200,
      );
      const statement = response.body;
      const opened = rfc.parseCheckpoint(
        rfc.verifyNote(statement.checkpoint.note, key.verifier_key)!.text,
      )!;
      assert.ok(statement.events.length >= 4);
      for (const event of statement.events) {
        assert.equal(event.leaf_hash, rfc.leafHash(Buffer.from(event.hash, 'hex')).toString('hex'));
        assert.ok(
          rfc.verifyInclusion({
            leafIndex: event.leaf_index,
            treeSize: opened.size,
            leafHash: Buffer.from(event.leaf_hash, 'hex'),
            proof: event.inclusion_proof.map((h) => Buffer.from(h, 'hex')),
            root: opened.root,
          }),
          `event ${event.event_id}`,
        );
      }
      const member = (
        await api.get<{ balance: number }>(`/v1/programs/${programId}/members/${memberId}`)
      ).body;
      assert.equal(statement.balance, member.balance);
      const verifier = parseVerifier(key.verifier_key)!;
      assert.deepEqual(verifyStatement(statement, verifier).problems, []);
      // Tampered in transit: the balance, a proof hash.
      const inflated = structuredClone(statement);
      inflated.balance += 1000;
      assert.equal(verifyStatement(inflated, verifier).ok, false);
      const bent = structuredClone(statement);
      const path = bent.events.find((e) => e.inclusion_proof.length > 0)!.inclusion_proof;
      path[0] = `${path[0]!.slice(0, 63)}${path[0]!.endsWith('0') ? '1' : '0'}`;
      assert.equal(verifyStatement(bent, verifier).ok, false);
    });

    it("runs docs/audit.md's verifier on a real statement, and it refuses doctored ones", async () => {
      const docs = await readFile(new URL('../../../docs/audit.md', import.meta.url), 'utf8');
      const code = /```js\n([\s\S]*?)```/.exec(docs)?.[1];
      assert.ok(code, 'docs/audit.md has a js block');
      const work = await mkdtemp(join(tmpdir(), 'incentable-docs-verifier-'));
      try {
        const script = join(work, 'verify.mjs');
        await writeFile(script, code);
        const statement = expectStatus(
          await api.get<Statement>(`/v1/programs/${programId}/members/${memberIds[2]}/statement`),
          200,
        ).body;
        const run = async (document: Statement) => {
          const file = join(work, 'statement.json');
          await writeFile(file, JSON.stringify(document));
          return new Promise<{ code: number | null; out: string }>((resolve) => {
            execFile(process.execPath, [script, file, key.verifier_key], (error, stdout, stderr) =>
              resolve({
                code: error === null ? 0 : typeof error.code === 'number' ? error.code : null,
                out: stdout + stderr,
              }),
            );
          });
        };
        const good = await run(statement);
        assert.equal(good.code, 0, good.out);
        assert.match(
          good.out,
          new RegExp(`^OK: ${statement.events.length} events and balance ${statement.balance}`),
        );
        assert.equal((await run({ ...statement, balance: statement.balance + 1 })).code, 1);
        const bent = structuredClone(statement);
        const withPath = bent.events.find((e) => e.inclusion_proof.length > 0)!;
        withPath.inclusion_proof.reverse();
        withPath.inclusion_proof.push(withPath.inclusion_proof[0]!);
        assert.equal((await run(bent)).code, 1);
        const forged = structuredClone(statement);
        forged.checkpoint.note = forged.checkpoint.note.replace(
          /\n\d+\n/,
          (m) => `\n${Number(m.trim()) + 1}\n`,
        );
        assert.equal((await run(forged)).code, 1);
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    });

    it('catches an attacker who rewrites an event and recomputes the chain and the tree', async () => {
      const witnessed = await checkpointNow();
      await cp(checkpointDir, savedDir, { recursive: true });
      const memberId = memberIds[1]!;
      const victim = (
        await sql<{ event_id: string; stream_name: string; stream_revision: string }>`
        select event_id::text, stream_name, stream_revision::text from incentable_events
        where stream_name like ${`points-${programId}-${memberId}`} and type = 'PointsAwarded'
        order by stream_revision limit 1`.execute(db)
      ).rows[0]!;
      await sql`update incentable_events set data = jsonb_set(data, '{points}', '100000')
      where event_id = ${victim.event_id}::uuid`.execute(db);
      await recomputeEverything(db);

      // Plain verify sees nothing: every chain is consistent.
      assert.equal((await verifyChains(db)).ok, true);

      // The witnessed checkpoint directory names the first changed event.
      const verifier = parseVerifier(key.verifier_key)!;
      const saved = await readCheckpointSources(savedDir);
      const found: CheckpointBreak[] = [];
      const report = await verifyCheckpoints(db, {
        ...saved,
        verifier,
        onBreak: (b) => void found.push(b),
      });
      assert.equal(report.ok, false);
      assert.equal(found[0]?.kind, 'leaf_mismatch');
      assert.equal(found[0]?.event?.id, victim.event_id);
      // One saved checkpoint file alone still fails.
      const single = await readCheckpointSources(join(savedDir, 'checkpoint'));
      assert.equal((await verifyCheckpoints(db, { ...single, verifier })).ok, false);

      // The member's statement is proven against the witnessed checkpoint, and now fails.
      const statement = expectStatus(
        await api.get<Statement>(`/v1/programs/${programId}/members/${memberId}/statement`),
        200,
      ).body;
      assert.equal(statement.checkpoint.size, witnessed.size);
      assert.equal(verifyStatement(statement, verifier).ok, false);

      // A checkpoint signed after the rewrite does not extend the witnessed one.
      await sql`delete from incentable_audit_checkpoints`.execute(db);
      const resigned = await checkpointNow();
      const proof = (
        await api.get<{ proof: string[] }>(
          `/v1/audit/proofs/consistency?from=${witnessed.size}&to=${resigned.size}`,
        )
      ).body.proof.map((h) => Buffer.from(h, 'hex'));
      assert.equal(
        checkConsistency({ oldNote: witnessed.note, newNote: resigned.note, proof, verifier }).ok,
        false,
      );
    });
  },
);
