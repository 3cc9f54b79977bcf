import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../../adapters/db/schema.ts';
import { comparePositions } from '../../../domain/recordedEvent.ts';
import {
  award,
  createMember,
  createProgram,
  expectStatus,
  settle,
  startTestApp,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres, waitFor } from '../../support/postgres.ts';
import * as rfc from '../../support/rfc9162.ts';
import { recomputeEverything } from './attacker.ts';

const root = new URL('../../../', import.meta.url).pathname;
const origin = 'cli.test.example/incentable';

/**
 * The auditors' commands as a user runs them (`npx incentable audit …`, real child processes)
 * against a live installation's database: its key, checkpoints on demand, consistency between two
 * saved checkpoints, a statement checked offline, `audit verify --checkpoints`; and what they say
 * once an attacker has truncated or reordered the log and recomputed everything.
 */
describe('audit CLI: checkpoints and proofs', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let db: Kysely<Database>;
  let dir: string;
  let checkpointDir: string;
  let programId: string;
  let memberIds: string[];
  let verifierKey: string;
  const signingKey = randomBytes(32).toString('base64');

  /**
   * A CLI run in a child process, awaited without blocking this process: the service under test
   * runs here, and a blocked event loop would expire its keep-alive sockets under the client.
   */
  const cli = (args: string[]) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['bin/incentable.js', ...args],
        {
          cwd: root,
          encoding: 'utf8',
          env: {
            ...process.env,
            DATABASE_URL: app.database.url,
            LOG_LEVEL: 'silent',
            AUDIT_SIGNING_KEY: signingKey,
            AUDIT_ORIGIN: origin,
            AUDIT_CHECKPOINT_DIR: checkpointDir,
          },
        },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
          resolve({ status: code, stdout, stderr });
        },
      );
    });

  const treeCaughtUp = async () => {
    await settle(app.runtime);
    const row = (
      await sql<{ commit: string; prepare: string }>`
        select transaction_id::text as commit, global_position::text as prepare
        from incentable_events order by transaction_id desc, global_position desc limit 1`.execute(
        db,
      )
    ).rows[0]!;
    const last = { commit: BigInt(row.commit), prepare: BigInt(row.prepare) };
    await waitFor('the audit tree to catch up', () => {
      const reached = app.runtime.audit.tree?.checkpoint();
      return reached !== null && reached !== undefined && comparePositions(reached, last) >= 0;
    });
  };

  /** `audit checkpoint` after the tree caught up, saved to `name` in the test's folder. */
  const checkpoint = async (name: string): Promise<string> => {
    await treeCaughtUp();
    const made = await cli(['audit', 'checkpoint']);
    assert.equal(made.status, 0, made.stderr);
    const path = join(dir, name);
    await writeFile(path, made.stdout);
    return path;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'incentable-audit-cli-'));
    checkpointDir = join(dir, 'checkpoints');
    app = await startTestApp({
      env: { AUDIT_SIGNING_KEY: signingKey, AUDIT_ORIGIN: origin },
    });
    db = app.runtime.database.db;
    programId = (await createProgram(app.api)).id;
    memberIds = [];
    for (let i = 0; i < 2; i++) memberIds.push((await createMember(app.api, programId)).id);
    for (let i = 0; i < 6; i++) await award(app.api, programId, memberIds[i % 2]!, 5 + i);
  });

  after(async () => {
    await app?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('prints the public key the API publishes', async () => {
    const printed = await cli(['audit', 'public-key']);
    assert.equal(printed.status, 0, printed.stderr);
    verifierKey = printed.stdout.trim();
    const published = (await app.api.get<{ verifier_key: string }>('/v1/audit/public-key')).body;
    assert.equal(verifierKey, published.verifier_key);
    assert.equal(rfc.parseVerifierKey(verifierKey).name, origin);
  });

  it('signs checkpoints on demand and proves the log only grew between two of them', async () => {
    const first = await checkpoint('first.checkpoint');
    assert.equal(
      (await cli(['audit', 'checkpoint'])).stderr.trim(),
      'nothing changed since the newest checkpoint',
    );
    for (let i = 0; i < 3; i++) await award(app.api, programId, memberIds[0]!, 9);
    const second = await checkpoint('second.checkpoint');
    const proved = await cli([
      'audit',
      'prove-consistency',
      first,
      second,
      '--public-key',
      verifierKey,
      '--json',
    ]);
    assert.equal(proved.status, 0, proved.stdout + proved.stderr);
    assert.equal((JSON.parse(proved.stdout) as { ok: boolean }).ok, true);
    // Swapped: the newer is not a prefix of the older.
    assert.equal((await cli(['audit', 'prove-consistency', second, first])).status, 2);
  });

  it('checks a statement offline with a verifier key or a PEM, and refuses a doctored one', async () => {
    const statement = expectStatus(
      await app.api.get<{ balance: number }>(
        `/v1/programs/${programId}/members/${memberIds[0]}/statement`,
      ),
      200,
    ).body;
    const path = join(dir, 'statement.json');
    await writeFile(path, JSON.stringify(statement));
    const checked = await cli(['audit', 'verify-statement', path, '--public-key', verifierKey]);
    assert.equal(checked.status, 0, checked.stdout + checked.stderr);
    const pem = (await app.api.get<{ public_key_pem: string }>('/v1/audit/public-key')).body;
    const pemFile = join(dir, 'key.pem');
    await writeFile(pemFile, pem.public_key_pem);
    assert.equal(
      (await cli(['audit', 'verify-statement', path, '--public-key', pemFile])).status,
      0,
    );
    await writeFile(path, JSON.stringify({ ...statement, balance: statement.balance + 1 }));
    const doctored = await cli(['audit', 'verify-statement', path, '--public-key', verifierKey]);
    assert.equal(doctored.status, 1, doctored.stdout);
    assert.match(doctored.stdout, /BROKEN balance/);
    const otherKey = `${origin}+00000000+${Buffer.concat([Buffer.of(1), randomBytes(32)]).toString('base64')}`;
    assert.equal(
      (await cli(['audit', 'verify-statement', path, '--public-key', otherKey])).status,
      2,
    );
  });

  it('passes audit verify --checkpoints on the untouched log', async () => {
    const verified = await cli([
      'audit',
      'verify',
      '--checkpoints',
      checkpointDir,
      '--public-key',
      verifierKey,
    ]);
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /no breaks/);
  });

  it('fails consistency and verify --checkpoints once two events are reordered', async () => {
    const saved = join(dir, 'second.checkpoint');
    // Two events of different streams and transactions trade places in the global order (their
    // transaction ids swapped); the tree is rebuilt in the new order. Chains are per stream, so
    // they still hold.
    const [a, b] = (
      await sql<{ event_id: string; transaction_id: string }>`
        select event_id::text, transaction_id::text from incentable_events
        order by transaction_id, global_position`.execute(db)
    ).rows.filter((row, i, all) => i > 0 && row.transaction_id !== all[i - 1]!.transaction_id);
    const swap = async () => {
      await sql`update incentable_events set transaction_id = case event_id
          when ${a!.event_id}::uuid then ${b!.transaction_id}::xid8
          else ${a!.transaction_id}::xid8 end
        where event_id in (${a!.event_id}::uuid, ${b!.event_id}::uuid)`.execute(db);
      await recomputeEverything(db, sql`e.transaction_id, e.global_position`);
    };
    await swap();
    const plain = await cli(['audit', 'verify']);
    assert.equal(plain.status, 0, plain.stdout);
    await sql`delete from incentable_audit_checkpoints`.execute(db);
    const resigned = await checkpoint('reordered.checkpoint');
    const proved = await cli([
      'audit',
      'prove-consistency',
      saved,
      resigned,
      '--public-key',
      verifierKey,
    ]);
    assert.equal(proved.status, 1, proved.stdout + proved.stderr);
    assert.match(proved.stdout, /INCONSISTENT/);
    const verified = await cli([
      'audit',
      'verify',
      '--checkpoints',
      saved,
      '--public-key',
      verifierKey,
    ]);
    assert.equal(verified.status, 1, verified.stdout);
    // Put back, for the next test: the original order again.
    [a!.transaction_id, b!.transaction_id] = [b!.transaction_id, a!.transaction_id];
    await swap();
    assert.equal(
      (await cli(['audit', 'verify', '--checkpoints', saved, '--public-key', verifierKey])).status,
      0,
    );
  });

  it('fails consistency once the log is truncated, even after it grew past the old size', async () => {
    const saved = join(dir, 'second.checkpoint');
    const last = (
      await sql<{ event_id: string; stream_name: string }>`
        select e.event_id::text, e.stream_name from incentable_audit_leaves l
        join incentable_events e on e.event_id = l.event_id
        order by l.leaf_index desc limit 2`.execute(db)
    ).rows;
    await sql`delete from incentable_events where event_id = any(${last.map((r) => r.event_id)}::uuid[])`.execute(
      db,
    );
    await sql`delete from incentable_audit_leaves where event_id = any(${last.map((r) => r.event_id)}::uuid[])`.execute(
      db,
    );
    await sql`update incentable_streams s set revision = coalesce((select max(stream_revision)
      from incentable_events e where e.stream_name = s.stream_name), -1)`.execute(db);
    await recomputeEverything(db);
    const truncated = await cli([
      'audit',
      'verify',
      '--checkpoints',
      saved,
      '--public-key',
      verifierKey,
    ]);
    assert.equal(truncated.status, 1, truncated.stdout);
    for (let i = 0; i < 4; i++) await award(app.api, programId, memberIds[1]!, 3);
    await sql`delete from incentable_audit_checkpoints`.execute(db);
    const grown = await checkpoint('grown.checkpoint');
    const proved = await cli([
      'audit',
      'prove-consistency',
      saved,
      grown,
      '--public-key',
      verifierKey,
    ]);
    assert.equal(proved.status, 1, proved.stdout + proved.stderr);
  });
});
