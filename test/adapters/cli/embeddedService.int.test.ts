import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { lockFileName } from '../../../adapters/db/dataDirLock.ts';
import { apiClient } from '../../support/api.ts';
import { waitFor } from '../../support/postgres.ts';

const root = new URL('../../../', import.meta.url).pathname;
const rootKey = 'embedded-lock-root-key-0123456789';
/** Nothing listens there: a command that got past the lock would fail on it, not hang. */
const noEsdb = 'esdb://127.0.0.1:1?tls=false';
/**
 * How long a step may take: a start of the service (PGlite's initdb and the migrations) took
 * over 60 s on a machine running other suites beside this one; ~5 s when idle. Each wait ends
 * as soon as its condition holds: the bounds only stop a hang.
 */
const boundMs = 180_000;

/**
 * Every CLI command that opens the database, with arguments that would make it do its work.
 * `opensDatabase` and `skipped` together must name every command the CLI has (checked below), so
 * a new command is tested here or said not to open the database.
 */
const opensDatabase: Record<string, string[][]> = {
  'jobs run': [
    ['jobs', 'run', 'expiry'],
    ['jobs', 'run', 'leaderboards'],
    ['jobs', 'run', 'tiers'],
  ],
  'jobs status': [['jobs', 'status']],
  'audit verify': [['audit', 'verify']],
  'audit checkpoint': [['audit', 'checkpoint']],
  replay: [['replay', '--verify', '--swap']],
  export: [['export'], ['export', '--output', '<file>']],
  'history member': [['history', 'member', 'mem_1']],
  'eventstore copy': [
    ['eventstore', 'copy', '--to', 'esdb', '--esdb', noEsdb],
    ['eventstore', 'copy', '--to', 'postgres', '--esdb', noEsdb],
  ],
  'keys list': [['keys', 'list']],
  'keys create': [['keys', 'create', '--label', 'beside the service']],
  'keys revoke': [['keys', 'revoke', 'key_1']],
};
const skipped: Record<string, string> = {
  'subscriptions parked': 'talks to EventStoreDB only',
  'subscriptions replay-parked': 'talks to EventStoreDB only',
  'audit public-key': 'reads the signing key only, never the database',
  'audit verify-statement': 'offline: reads a statement file, never the database',
  'audit prove-consistency':
    'refuses before opening the database unless given two checkpoints signed by the key (test/adapters/audit/auditCli.int.test.ts)',
  listen: 'talks to a running service over HTTP only (test/adapters/cli/listen.e2e.test.ts)',
};

type Run = { code: number | null; stdout: string; stderr: string };

/** The environment of a user on the embedded database: no DATABASE_URL, our DATA_DIR. */
const embeddedEnv = (dataDir: string): NodeJS.ProcessEnv => {
  const {
    DATABASE_URL: _url,
    EVENTSTORE: _store,
    ESDB_CONNECTION_STRING: _esdb,
    ROLES: _roles,
    ...inherited
  } = process.env;
  return {
    ...inherited,
    DATA_DIR: dataDir,
    PORT: '0',
    HOST: '127.0.0.1',
    ADMIN_API_KEY: rootKey,
    LOG_LEVEL: 'warn',
    NODE_ENV: 'test',
  };
};

const children: ChildProcess[] = [];

const exited = (child: ChildProcess): Promise<number | null> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((resolve) => child.once('exit', resolve));

/** `node <argv…>` in the repository, to its end. */
const run = (argv: string[], env: NodeJS.ProcessEnv): Promise<Run> => {
  const child = spawn(process.execPath, argv, { cwd: root, env });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
};

/** The leaf commands of the CLI (`jobs run`, `audit verify`, …), read from its own help. */
const cliCommands = async (env: NodeJS.ProcessEnv): Promise<string[]> => {
  const subcommandsOf = async (path: string[]): Promise<string[]> => {
    const { stdout } = await run(['bin/incentable.js', ...path, '--help'], env);
    const section = stdout.split('\nCommands:\n')[1];
    if (section === undefined) return [];
    return [...section.matchAll(/^ {2}(\S+)/gm)]
      .map((match) => match[1]!)
      .filter((name) => name !== 'help');
  };
  const leaves: string[] = [];
  let level: string[][] = [[]];
  while (level.length > 0) {
    const next: string[][] = [];
    const found = await Promise.all(level.map(subcommandsOf));
    level.forEach((path, i) => {
      if (found[i]!.length === 0) leaves.push(path.join(' '));
      else next.push(...found[i]!.map((name) => [...path, name]));
    });
    level = next;
  }
  return leaves.sort();
};

describe('the service on the embedded database', () => {
  let workDir: string;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let service: ChildProcess;
  let serviceUrl: string;
  let serviceOutput = '';

  before(
    async () => {
      workDir = mkdtempSync(join(tmpdir(), 'incentable-held-'));
      dataDir = join(workDir, 'data');
      env = embeddedEnv(dataDir);
      // As `npm start` runs it.
      service = spawn(process.execPath, ['--import', 'tsx', 'adapters/main.ts'], {
        cwd: root,
        env,
      });
      children.push(service);
      service.stdout!.on('data', (chunk: Buffer) => (serviceOutput += chunk.toString()));
      service.stderr!.on('data', (chunk: Buffer) => (serviceOutput += chunk.toString()));
      await waitFor(
        'the service to listen',
        () => /listening on (\S+)/.test(serviceOutput) || service.exitCode !== null,
        boundMs,
      );
      const url = /listening on (\S+)/.exec(serviceOutput)?.[1];
      if (!url) throw new Error(`the service did not start:\n${serviceOutput}`);
      serviceUrl = url;
    },
    { timeout: 2 * boundMs },
  );

  after(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited(child);
    }
    rmSync(workDir, { recursive: true, force: true });
  });

  it('holds its data directory under its own pid', () => {
    assert.equal(readFileSync(join(dataDir, lockFileName), 'utf8'), String(service.pid));
  });

  it('has no CLI command left out of this test', { timeout: 2 * boundMs }, async () => {
    const tested = [...Object.keys(opensDatabase), ...Object.keys(skipped)].sort();
    assert.deepEqual(await cliCommands(env), tested);
  });

  describe('every CLI command that opens the database, run on the same DATA_DIR', () => {
    const invocations = Object.values(opensDatabase).flat();
    let runs: Run[];
    let exportFile: string;
    before(
      async () => {
        exportFile = join(workDir, 'export.jsonl');
        // At once: each must stop before it opens anything, so none waits for another.
        runs = await Promise.all(
          invocations.map((args) =>
            run(
              ['bin/incentable.js', ...args.map((arg) => (arg === '<file>' ? exportFile : arg))],
              env,
            ),
          ),
        );
      },
      // Nine CLI processes loading at once: 178 s on a machine at load 25.
      { timeout: 3 * boundMs },
    );
    invocations.forEach((args, i) => {
      it(`stops at once with exit code 2 and says what to do: ${args.join(' ')}`, () => {
        const result = runs[i]!;
        assert.equal(result.code, 2, result.stderr);
        assert.ok(
          result.stderr.includes(
            `DATA_DIR ${dataDir} is held by the running service (pid ${service.pid})`,
          ),
          result.stderr,
        );
        assert.match(result.stderr, /Stop the service/);
        assert.match(result.stderr, /DATABASE_URL/);
        assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
        assert.equal(result.stdout, '');
      });
    });

    it('creates no export file', () => {
      assert.equal(existsSync(exportFile), false);
    });

    it('leaves the service holding the directory and answering, reads and writes', async () => {
      assert.equal(readFileSync(join(dataDir, lockFileName), 'utf8'), String(service.pid));
      const api = apiClient(serviceUrl, rootKey);
      const created = await api.post<{ id: string }>('/v1/programs', {
        name: 'After the CLI',
        notification_email: 'ops@example.com',
      });
      assert.equal(created.status, 201, created.text);
      const read = await api.get<{ name: string }>(`/v1/programs/${created.body.id}`);
      assert.equal(read.status, 200, read.text);
      assert.equal(read.body.name, 'After the CLI');
    });
  });

  it(
    'refuses a second `npm start` on the same DATA_DIR with the message, not a stack trace',
    { timeout: boundMs },
    async () => {
      const second = await run(['--import', 'tsx', 'adapters/main.ts'], env);
      assert.equal(second.code, 2, second.stderr);
      assert.ok(
        second.stderr.includes(
          `DATA_DIR ${dataDir} is held by the running service (pid ${service.pid})`,
        ),
        second.stderr,
      );
      assert.doesNotMatch(second.stderr, /^\s+at /m, 'no stack trace');
      assert.doesNotMatch(second.stdout, /listening/);
      assert.equal((await fetch(`${serviceUrl}/healthz`)).status, 200);
    },
  );

  it('lets the CLI in once the service has stopped', { timeout: boundMs }, async () => {
    service.kill('SIGTERM');
    assert.equal(await exited(service), 0, serviceOutput);
    assert.equal(existsSync(join(dataDir, lockFileName)), false);
    const verify = await run(['bin/incentable.js', 'audit', 'verify', '--json'], env);
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal((JSON.parse(verify.stdout) as { ok: boolean }).ok, true);
  });
});
