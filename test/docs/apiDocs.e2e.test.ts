import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startTestApp, settle, type TestApp } from '../support/api.ts';
import { skipWithoutPostgres } from '../support/postgres.ts';

const hasTools = spawnSync('sh', ['-c', 'command -v curl && command -v jq']).status === 0;

/** The ```bash blocks of docs/api.md, in order: the page's examples, run as one script. */
const examples = (): string =>
  [
    ...readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8').matchAll(
      /```bash\n([\s\S]*?)```/g,
    ),
  ]
    .map((match) => match[1])
    .join('\n');

describe('docs/api.md', { skip: skipWithoutPostgres || (!hasTools && 'needs curl and jq') }, () => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp();
  });
  after(async () => {
    await app?.stop();
  });

  it('runs every example as written, and they do what the page says', async () => {
    const script = `set -euo pipefail\n${examples()}\necho "RESULT $PROGRAM $MEMBER $ORDER $BOARD $ENDPOINT_ID"\n`;
    // Asynchronously: the server under test runs in this process and must keep answering.
    const run = await new Promise<{ status: number | null; stdout: string; stderr: string }>(
      (resolve) => {
        const child = spawn('bash', ['-c', script], {
          env: { ...process.env, BASE: app.url, ADMIN_KEY: app.rootKey },
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.on('close', (status) => {
          clearTimeout(timer);
          resolve({ status, stdout, stderr });
        });
      },
    );
    assert.equal(run.status, 0, `the examples failed:\n${run.stdout}\n${run.stderr}`);
    const ids = /RESULT (\S+) (\S+) (\S+) (\S+) (\S+)/.exec(run.stdout);
    assert.ok(ids, run.stdout);
    const [, program, member, order, board, endpoint] = ids;
    assert.match(program!, /^prg_/);
    assert.match(endpoint!, /^we_/);
    assert.match(run.stdout, /"code": "insufficient_points"/);
    assert.ok(
      run.stdout.includes(
        '{"points_expiry":{"mode":"per_award","days":365},"points_expiry_days":null}',
      ),
      run.stdout,
    );
    assert.match(run.stdout, /^\{"at":"\d{4}-\d\d-\d\dT[\d:.]+Z","points":5000\}$/m);
    assert.ok(
      run.stdout.includes(`{"code":"member_exists","field":"email","member_id":"${member}"}`),
      run.stdout,
    );

    await settle(app.runtime);
    const m = await app.api.get<{ balance: number; tier: string; name: string }>(
      `/v1/programs/${program}/members/${member}`,
    );
    // 5,500 awarded, 500 deducted, 2,500 spent on the gift card, 300 awarded for the demo;
    // the leaderboard, made after the first award, counts only the 300.
    assert.equal(m.body.balance, 2_800);
    assert.equal(m.body.tier, 'Gold');
    assert.equal(m.body.name, 'Ana Silva-Costa');
    const o = await app.api.get<{ status: string }>(`/v1/programs/${program}/orders/${order}`);
    assert.equal(o.body.status, 'delivered');
    const periods = await app.api.get<{
      data: { standings: { member_id: string; points: number }[] }[];
    }>(`/v1/programs/${program}/leaderboards/${board}/periods`);
    assert.deepEqual(
      periods.body.data[0]?.standings.map((s) => [s.member_id, s.points]),
      [[member, 300]],
    );
  });
});
