import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { loadConfig } from '../../../adapters/config.ts';
import { startRuntime } from '../../../adapters/runtime.ts';
import { apiClient, runningClock, startTestApp, type Api } from '../../support/api.ts';
import { postgresUrl, waitFor } from '../../support/postgres.ts';

/**
 * The receiver package as a customer gets it: `npm pack` of the workspace (its prepack builds
 * dist/ with tsc), installed offline into an empty project, imported by name from plain Node,
 * and type-checked with the documented typed receivers. A real service (on PostgreSQL, or PGlite
 * without one) then delivers a real award to an express receiver built from the installed
 * tarball, which accepts it and refuses a tampered copy.
 */

const run = promisify(execFile);
const root = new URL('../../../', import.meta.url).pathname;

/** The child's environment without the npm_* settings of an `npm test` around us. */
const cleanEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name))),
  ...extra,
});

const expectedFiles = [
  'README.md',
  'package.json',
  ...['events', 'express', 'index', 'parse', 'verify'].flatMap((name) => [
    `dist/${name}.d.ts`,
    `dist/${name}.js`,
  ]),
].sort();

/** The first TypeScript block under a heading of a Markdown file. */
const snippetOf = (file: string, heading: string): string => {
  const text = readFileSync(join(root, file), 'utf8');
  const at = text.indexOf(heading);
  assert.notEqual(at, -1, `${file} has the heading ${heading}`);
  const block = /```ts\n([\s\S]*?)```/.exec(text.slice(at))?.[1];
  assert.ok(block, `${file} has a ts block under ${heading}`);
  return block;
};

const receiverScript = `
import express from 'express';
import { parseWebhook, verifyWebhook, webhookEventTypes } from '@incentable/webhooks';
import { webhookReceiver } from '@incentable/webhooks/express';

const secret = process.env.WEBHOOK_SECRET;
const app = express();
app.post('/hook', webhookReceiver({ secret }), (req, res) => {
  const event = req.body;
  const seen = { accepted: event.type, id: event.id, known: webhookEventTypes.includes(event.type) };
  if (event.type === 'points.awarded') seen.newBalance = event.data.new_balance;
  seen.headers = req.headers;
  seen.body = res.locals.rawBody.toString('utf8');
  console.log(JSON.stringify(seen));
  res.sendStatus(204);
});
app.post('/verify', express.raw({ type: 'application/json' }), (req, res) => {
  res.json({
    verified: verifyWebhook(req.body, req.headers, secret),
    parsed: parseWebhook(req.body, req.headers, secret),
  });
});
const server = app.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ listening: server.address().port }));
});
`;

type Seen = {
  accepted: string;
  id: string;
  known: boolean;
  newBalance?: number;
  headers: Record<string, string>;
  body: string;
};

describe('the packed receiver package', () => {
  const rootKey = 'pack-root-key-0123456789abcdef0123';
  let dir: string;
  let project: string;
  let files: string[];
  let stopService: (() => Promise<void>) | undefined;
  let api: Api;
  let receiver: ChildProcess | undefined;
  const lines: string[] = [];
  let typesChecked: Promise<unknown>;

  /** npm pack, npm install --offline, the main entry without express, then express linked. */
  const packAndInstall = async () => {
    const packed = await run(
      'npm',
      [
        'pack',
        '--workspace',
        'packages/webhooks',
        '--pack-destination',
        dir,
        '--json',
        '--offline',
      ],
      { cwd: root, env: cleanEnv() },
    );
    const [result] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
    files = result.files.map((file) => file.path).sort();
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'receiver-check', private: true, type: 'module' }),
    );
    await run(
      'npm',
      ['install', '--offline', '--no-audit', '--no-fund', join(dir, result.filename)],
      { cwd: project, env: cleanEnv() },
    );
    // Before express is there: the main entry must not need it.
    const bare = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import { verifyWebhook, webhookEventTypes } from '@incentable/webhooks'; console.log(typeof verifyWebhook, webhookEventTypes.length)",
      ],
      { cwd: project, env: cleanEnv() },
    );
    assert.equal(bare.stdout.trim(), 'function 15');
    // The optional peer and the type packages, from the repository (no registry here).
    symlinkSync(join(root, 'node_modules/express'), join(project, 'node_modules/express'));
    symlinkSync(join(root, 'node_modules/@types'), join(project, 'node_modules/@types'));
  };

  /**
   * The typed receivers of the package's README and docs/webhooks.md, and an exactness check,
   * compiled against the tarball's declarations.
   */
  const typeCheck = async () => {
    writeFileSync(
      join(project, 'typed.ts'),
      `${snippetOf('packages/webhooks/README.md', '## A typed receiver')}
import type { WebhookEventOf } from '@incentable/webhooks';
export const balance: WebhookEventOf<'points.awarded'>['data']['new_balance'] = 1;
// @ts-expect-error the types are exact: a points webhook has no tier (fails if they go loose).
export const tier: WebhookEventOf<'points.awarded'>['data']['new_tier'] = null;
`,
    );
    writeFileSync(
      join(project, 'docs.ts'),
      snippetOf('docs/webhooks.md', '### The receiver package, `@incentable/webhooks`'),
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
        },
        include: ['typed.ts', 'docs.ts'],
      }),
    );
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    await run(process.execPath, [tsc, '-p', project], { cwd: project, env: cleanEnv() }).catch(
      (error: { stdout?: string }) => {
        throw new Error(`the documented receivers do not compile: ${error.stdout ?? ''}`);
      },
    );
  };

  /**
   * A real PostgreSQL when the runner found one (its start is ~1 s against PGlite's ~10 s of
   * WebAssembly migrations, which this file's time budget cannot afford), PGlite otherwise.
   */
  const startService = async () => {
    if (postgresUrl()) {
      const app = await startTestApp({ clock: runningClock() });
      stopService = app.stop;
      api = app.api;
      return;
    }
    const runtime = await startRuntime(
      loadConfig({
        DATA_DIR: join(dir, 'data'),
        PORT: '0',
        ADMIN_API_KEY: rootKey,
        LOG_LEVEL: 'silent',
        NODE_ENV: 'test',
      }),
      { scheduler: false },
    );
    stopService = runtime.stop;
    api = apiClient(runtime.url!, rootKey);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'incentable-pack-'));
    project = join(dir, 'project');
    mkdirSync(project);
    // Independent: the tarball is built and installed while the service opens its database.
    await Promise.all([packAndInstall(), startService()]);
    // tsc takes seconds: it runs while the delivery test does, and is awaited by its own test.
    typesChecked = typeCheck().then(
      () => null,
      (error: unknown) => error,
    );
  });

  after(async () => {
    receiver?.kill();
    await stopService?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('holds the built JavaScript, its declarations and the README, nothing else', () => {
    assert.deepEqual(files, expectedFiles);
  });

  it('verifies a real delivery and refuses it tampered', async () => {
    const program = await api.post<{ id: string }>('/v1/programs', {
      name: 'Packed receiver',
      tiers: [{ name: 'Silver', min_points: 0 }],
      notification_email: 'ops@example.com',
    });
    const p = program.body.id;
    // Created first for its secret; pointed at the receiver once that listens with it.
    const endpoint = await api.post<{ id: string; secret: string }>(
      `/v1/programs/${p}/webhook-endpoints`,
      { url: 'http://127.0.0.1:9/not-yet', events: ['points.awarded'] },
    );
    assert.equal(endpoint.status, 201);
    writeFileSync(join(project, 'receiver.mjs'), receiverScript);
    receiver = spawn(process.execPath, ['receiver.mjs'], {
      cwd: project,
      env: cleanEnv({ WEBHOOK_SECRET: endpoint.body.secret }),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buffered = '';
    receiver.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const complete = buffered.split('\n');
      buffered = complete.pop() ?? '';
      lines.push(...complete.filter((line) => line !== ''));
    });
    const parsedLines = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    let port: unknown;
    await waitFor('the receiver to listen', () => {
      port = parsedLines().find((line) => 'listening' in line)?.listening;
      return port !== undefined;
    });
    const origin = `http://127.0.0.1:${String(port)}`;
    const patched = await api.patch(`/v1/programs/${p}/webhook-endpoints/${endpoint.body.id}`, {
      url: `${origin}/hook`,
    });
    assert.equal(patched.status, 200);

    const member = await api.post<{ id: string }>(`/v1/programs/${p}/members`, {
      email: 'packed@example.com',
      name: 'Packed',
    });
    const award = await api.post(`/v1/programs/${p}/members/${member.body.id}/points/award`, {
      points: 120,
      reason: 'Packed receiver',
    });
    assert.equal(award.status, 201);
    let seen: Seen | undefined;
    await waitFor('the receiver to accept the delivery', () => {
      seen = parsedLines().find((line) => 'accepted' in line) as Seen | undefined;
      return seen !== undefined;
    });
    assert.equal(seen!.accepted, 'points.awarded');
    assert.equal(seen!.known, true);
    assert.equal(seen!.newBalance, 120);
    assert.match(seen!.id, /^evt_/);

    // The delivery again, by hand, with the service's own signature headers.
    const signed = Object.fromEntries(
      ['content-type', 'webhook-id', 'webhook-timestamp', 'webhook-signature'].map((name) => [
        name,
        seen!.headers[name]!,
      ]),
    );
    const tampered = seen!.body.replace('"points":120', '"points":12000');
    assert.notEqual(tampered, seen!.body);
    const post = (path: string, body: string) =>
      fetch(`${origin}${path}`, { method: 'POST', headers: signed, body });

    const refused = await post('/hook', tampered);
    assert.equal(refused.status, 401);
    assert.deepEqual(await refused.json(), {
      error: 'invalid_webhook',
      reason: 'invalid_signature',
    });
    const plain = (await (await post('/verify', seen!.body)).json()) as {
      verified: unknown;
      parsed: { ok: boolean; event?: { type: string } };
    };
    assert.deepEqual(plain.verified, { ok: true, scheme: 'standard' });
    assert.equal(plain.parsed.event?.type, 'points.awarded');
    const plainTampered = (await (await post('/verify', tampered)).json()) as { verified: unknown };
    assert.deepEqual(plainTampered.verified, { ok: false, reason: 'invalid_signature' });
    assert.equal(
      parsedLines().filter((line) => 'accepted' in line).length,
      1,
      'the tampered copy reached no handler',
    );
  });

  it('types the documented receivers with the declarations it ships', async () => {
    const error = await typesChecked;
    assert.ifError(error);
  });
});
