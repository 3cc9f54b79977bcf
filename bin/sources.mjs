// The fingerprint of the sources dist/ is compiled from: bin/build.mjs writes it to
// dist/.sources, bin/incentable.js runs dist/ only while it still matches.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Directories compiled into dist/ (tsconfig.build.json; the receiver package's sources come in
 * through delivery/receiver.ts) and the files that shape the output.
 */
export const sourceDirs = [
  'domain',
  'projections',
  'delivery',
  'adapters',
  'packages/webhooks/src',
];
const sourceFiles = ['package.json', 'tsconfig.json', 'tsconfig.build.json'];

const walk = (root, dir) =>
  readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? walk(root, path) : [path];
  });

/** sha256 over every source path and content, in a fixed order: any edit changes it. */
export const fingerprint = (root) => {
  const hash = createHash('sha256');
  const paths = [...sourceDirs.flatMap((dir) => walk(root, dir)), ...sourceFiles].sort();
  for (const path of paths) hash.update(`${path}\0`).update(readFileSync(join(root, path)));
  return hash.digest('hex');
};
