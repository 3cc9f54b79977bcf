// Runs the test files of a scope with node:test. Node 20 has no glob expansion in `node --test`,
// so this finds the files. It also decides, once, whether a real PostgreSQL is reachable: without
// one it runs the PGlite subset and says loudly what it skipped; with CI=true it fails instead.
// The reliability files (test/reliability/, each with its own PostgreSQL cluster and service
// processes) run one at a time, in their own scope (`npm run test:reliability`): two at once on a
// 2-core machine would measure each other's CPU, not the time to recover. They need no server at
// 5432. `all` runs them last, after the other files have finished, for the same reason.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import pg from 'pg';
import { fingerprint } from '../bin/sources.mjs';

const scope = process.argv[2] ?? 'all';
const suffixes = {
  unit: ['.unit.test.ts'],
  int: ['.int.test.ts'],
  e2e: ['.e2e.test.ts'],
  browser: ['.browser.test.ts'],
  reliability: ['.reliability.test.ts'],
  all: [
    '.unit.test.ts',
    '.int.test.ts',
    '.e2e.test.ts',
    '.browser.test.ts',
    '.reliability.test.ts',
  ],
}[scope];
if (!suffixes) {
  console.error(`unknown scope ${scope}: use unit, int, e2e, browser, reliability or all`);
  process.exit(2);
}
const reliabilitySuffix = '.reliability.test.ts';

const root = new URL('..', import.meta.url).pathname;
const walk = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
const filter = process.env.TEST_FILTER;
const files = walk(join(root, 'test'))
  .filter((f) => suffixes.some((s) => f.endsWith(s)))
  .filter((f) => !filter || f.includes(filter))
  .map((f) => relative(root, f))
  .sort();

// The browser tests need Chromium: installed here when it is missing (as root, with apt-get), or
// the run stops before any test with what to install. A skipped browser test is not a pass.
// `npm test` has checked already, before typecheck and lint.
if (
  files.some((f) => f.endsWith('.browser.test.ts')) &&
  process.env.npm_lifecycle_event !== 'test'
) {
  const chromium = spawnSync('bash', [join(root, 'test', 'ensureChromium.sh')], {
    stdio: 'inherit',
  });
  if (chromium.status !== 0) process.exit(chromium.status ?? 1);
}

// The CLI's memory tests (test/adapters/audit/*Memory*) measure the CLI as it is installed:
// bin/incentable.js runs the compiled dist/ while it matches the sources, and tsx's loader
// thread otherwise (~40 MB more). `npm ci` builds it; after an edit it is rebuilt here, once, so
// a run in a working tree measures what CI measures.
const distIsFresh = () => {
  try {
    return readFileSync(join(root, 'dist', '.sources'), 'utf8') === fingerprint(root);
  } catch {
    return false;
  }
};
if (files.some((f) => f.endsWith('.int.test.ts')) && !distIsFresh()) {
  console.log('== dist/ is older than the sources: rebuilding it (npm run build)');
  spawnSync(process.execPath, [join(root, 'bin', 'build.mjs'), '--if-possible'], {
    stdio: 'inherit',
  });
}

const reliabilityFiles = files.filter((f) => f.endsWith(reliabilitySuffix));
// The longest files start first (longest first, as measured in CI on 2 vCPUs): started late in
// name order, one of them ran alone at the end while the other slot had nothing left. The rest
// follow in name order.
const longestFirst = [
  'test/bench/benchSmoke.int.test.ts', // 310 s
  'test/adapters/audit/audit.int.test.ts', // 188 s
  'test/adapters/audit/replayMemory.int.test.ts', // 111 s
  'test/adapters/http/fuzz.e2e.test.ts', // 78 s
  'test/adapters/cli/embeddedService.int.test.ts', // 53 s
  'test/adapters/audit/exportMemory.int.test.ts', // 50 s
  'test/adapters/audit/auditCli.int.test.ts', // 48 s
  'test/adapters/audit/exportReplay.int.test.ts', // 37 s
  'test/adapters/webhooks/orderedEndpoints.e2e.test.ts', // 34 s
];
const rank = (f) => {
  const i = longestFirst.indexOf(f);
  return i === -1 ? longestFirst.length : i;
};
const otherFiles = files
  .filter((f) => !f.endsWith(reliabilitySuffix))
  .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));

/** The URL of a reachable PostgreSQL, or 'none' (after a loud banner; with CI=true, exits 1). */
const probePostgres = async () => {
  const url = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return url;
  } catch (error) {
    const why = `no PostgreSQL reachable at ${url.replace(/:[^:@/]*@/, ':***@')} (${error.message})`;
    if (process.env.CI === 'true') {
      console.error(`FAIL: ${why}. With CI=true a missing PostgreSQL is a failure, not a skip.`);
      process.exit(1);
    }
    const bar = '!'.repeat(100);
    console.warn(
      `${bar}\n${why}.\nRunning the PGlite subset only: every test that needs a real PostgreSQL is SKIPPED.\n${bar}`,
    );
    return 'none';
  } finally {
    await client.end().catch(() => {});
  }
};
const postgres = otherFiles.length > 0 ? await probePostgres() : 'none';

const testArgs = (list, concurrency) => [
  '--import',
  'tsx',
  '--test',
  `--test-concurrency=${concurrency}`,
  '--test-reporter=spec',
  ...list,
];
const testEnv = { ...process.env, INCENTABLE_TEST_PG: postgres };

/** Runs test files with this Node; resolves with the exit status. Output goes straight through. */
const runFiles = (list, concurrency) =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, testArgs(list, concurrency), {
      stdio: 'inherit',
      cwd: root,
      env: testEnv,
    });
    child.on('close', (code) => resolve(code ?? 1));
  });

// TEST_SECOND_NODE=/path/to/node (CI sets it to a Node 24 binary: package.json promises 20 to
// 24) runs the unit and integration files again with that Node, one file at a time, beside the
// main run, whose files mostly wait on PostgreSQL commits. Left out, to keep CI inside its time:
// the files that take twenty seconds or more of work (the benches' smoke run, the 1M-event replay,
// the CLI's runs, the audit, order, canonical-bytes and PGlite-delivery suites). The
// 1M-event export stays: it holds the CLI to its memory target, which Node 24 missed until
// bin/incentable.js set the young generation's size. Measured on 2 vCPUs: all 88 files took
// 973 s beside the main run and slowed it from ~840 s to 1,238 s; leaving out seven, the pass took
// 446 s and the whole of CI 1,256 s, still over its 20 minutes, so twelve are left out.
// Its output is kept apart and printed after the main run, so the two reports do not interleave.
const secondNode = process.env.TEST_SECOND_NODE;
const secondLeftOut = [
  'test/bench/benchSmoke.int.test.ts',
  'test/adapters/audit/replayMemory.int.test.ts',
  'test/adapters/audit/audit.int.test.ts',
  'test/adapters/audit/auditCli.int.test.ts',
  'test/adapters/cli/embeddedService.int.test.ts',
  'test/adapters/db/embeddedDataDir.int.test.ts',
  'test/adapters/eventstore/globalOrder.postgres.int.test.ts',
  'test/adapters/audit/exportReplay.int.test.ts',
  'test/adapters/cli/keys.int.test.ts',
  'test/adapters/audit/verify.int.test.ts',
  'test/adapters/eventstore/canonical.int.test.ts',
  'test/adapters/webhooks/webhookPglite.int.test.ts',
];
const secondFiles = secondNode
  ? otherFiles.filter(
      (f) =>
        (f.endsWith('.unit.test.ts') || f.endsWith('.int.test.ts')) && !secondLeftOut.includes(f),
    )
  : [];
const secondVersion = secondNode
  ? spawnSync(secondNode, ['--version'], { encoding: 'utf8' }).stdout?.trim()
  : undefined;
if (secondNode && !secondVersion) {
  console.error(`TEST_SECOND_NODE=${secondNode} does not run (\`${secondNode} --version\` failed)`);
  process.exit(1);
}
const runSecond = () =>
  new Promise((resolve) => {
    const child = spawn(secondNode, testArgs(secondFiles, 1), {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: root,
      env: testEnv,
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', (error) => resolve({ status: 1, output: `${output}\n${error.message}` }));
    child.on('close', (code) => resolve({ status: code ?? 1, output }));
  });
const secondReport = ({ status, output }) => {
  console.log(
    `\n== the same ${secondFiles.length} unit and integration files under Node ${secondVersion} (TEST_SECOND_NODE; ${secondLeftOut.length} left out, see test/run.mjs)`,
  );
  // The whole report when something failed; its summary otherwise.
  const summary = output.lastIndexOf('\u2139 tests ');
  console.log(status === 0 && summary >= 0 ? output.slice(summary) : output);
  return status;
};

let status = 0;
if (otherFiles.length > 0) {
  const [main, second] = await Promise.all([
    runFiles(otherFiles, 2),
    secondFiles.length > 0 ? runSecond() : null,
  ]);
  status = main;
  if (second) status = Math.max(status, secondReport(second));
}
if (reliabilityFiles.length > 0) {
  if (otherFiles.length > 0)
    console.log(`\n== reliability suite: ${reliabilityFiles.length} files, one at a time`);
  status = Math.max(status, await runFiles(reliabilityFiles, 1));
}
process.exit(status);
