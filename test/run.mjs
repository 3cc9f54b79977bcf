// Runs the test files of a scope with node:test. Node 20 has no glob expansion in `node --test`,
// so this finds the files. It also decides, once, whether a real PostgreSQL is reachable: without
// one it runs the PGlite subset and says loudly what it skipped; with CI=true it fails instead.
// The reliability files (test/reliability/, each with its own PostgreSQL cluster and service
// processes) run one at a time, in their own scope (`npm run test:reliability`): two at once on a
// 2-core machine would measure each other's CPU, not the time to recover. They need no server at
// 5432. `all` runs them last, after the other files have finished, for the same reason.
import { spawnSync } from 'node:child_process';
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
const otherFiles = files.filter((f) => !f.endsWith(reliabilitySuffix));

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

const runFiles = (list, concurrency) =>
  spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      `--test-concurrency=${concurrency}`,
      '--test-reporter=spec',
      ...list,
    ],
    { stdio: 'inherit', cwd: root, env: { ...process.env, INCENTABLE_TEST_PG: postgres } },
  ).status ?? 1;

let status = 0;
if (otherFiles.length > 0) status = runFiles(otherFiles, 2);
if (reliabilityFiles.length > 0) {
  if (otherFiles.length > 0)
    console.log(`\n== reliability suite: ${reliabilityFiles.length} files, one at a time`);
  status = Math.max(status, runFiles(reliabilityFiles, 1));
}
process.exit(status);
