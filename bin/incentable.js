#!/usr/bin/env node
// The CLI entry. It runs dist/ (npm run build) when dist/ was compiled from exactly the sources
// in the tree (bin/sources.mjs), and the TypeScript sources through tsx otherwise, as `npm start`
// does: never stale code, and without tsx's loader thread when it can (~40 MB less).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fingerprint } from './sources.mjs';

// The streaming commands (export, replay, verify) are held to memory targets (BENCHMARKS.md,
// Audit). Node 22 and later let V8's young generation grow further than Node 20 did: exporting
// 1M events peaked at 155 MB RSS on Node 24.22 against 127 MB on Node 20.20, and at 124 MB on
// Node 24 with --max-semi-space-size=8 (test/adapters/audit/exportMemory.int.test.ts). The size
// is fixed when the heap is made, so the CLI re-executes itself in place with it: execve keeps
// the pid, the open descriptors and the environment, and leaves no parent process behind. Node 20
// has no process.execve and keeps its own default. A flag given by the caller wins.
const semiSpace = '--max-semi-space-size';
if (
  typeof process.execve === 'function' &&
  !process.execArgv.some((arg) => arg.startsWith(semiSpace)) &&
  !(process.env.NODE_OPTIONS ?? '').includes(semiSpace)
)
  process.execve(process.execPath, [
    process.execPath,
    `${semiSpace}=8`,
    ...process.execArgv,
    ...process.argv.slice(1),
  ]);

const root = fileURLToPath(new URL('..', import.meta.url));
const built = (() => {
  try {
    return readFileSync(`${root}dist/.sources`, 'utf8');
  } catch {
    return null;
  }
})();

if (built !== null && built === fingerprint(root)) {
  await import('../dist/adapters/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../adapters/cli/main.ts');
}
