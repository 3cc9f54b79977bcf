// `npm run build` (and `prepare`, so `npm ci` and `npm install` run it): compiles the service
// to dist/ with tsc, copies the files it reads at run time, and records the sources' fingerprint.
// Only the CLI uses dist/ (bin/incentable.js): a process without tsx's loader thread is ~40 MB
// smaller, which the auditors' memory targets need (BENCHMARKS.md, Audit).
//
// With --if-possible (prepare) a failed build is a warning, not a failed install (`npm ci
// --omit=dev` has no TypeScript): dist/ is removed and the CLI runs the sources through tsx.
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { fingerprint } from './sources.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const ifPossible = process.argv.includes('--if-possible');

rmSync(`${root}dist`, { recursive: true, force: true });
try {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', `${root}tsconfig.build.json`], { stdio: 'inherit' });
  cpSync(`${root}package.json`, `${root}dist/package.json`);
  cpSync(`${root}adapters/http/dashboard/static`, `${root}dist/adapters/http/dashboard/static`, {
    recursive: true,
  });
  writeFileSync(`${root}dist/.sources`, fingerprint(root));
} catch (error) {
  rmSync(`${root}dist`, { recursive: true, force: true });
  if (!ifPossible) throw error;
  console.warn(`dist/ not built (${String(error)}): the CLI runs the sources through tsx`);
}
