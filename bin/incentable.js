#!/usr/bin/env node
// The CLI entry. It runs dist/ (npm run build) when dist/ was compiled from exactly the sources
// in the tree (bin/sources.mjs), and the TypeScript sources through tsx otherwise, as `npm start`
// does: never stale code, and without tsx's loader thread when it can (~40 MB less).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fingerprint } from './sources.mjs';

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
