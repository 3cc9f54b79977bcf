import { createInterface } from 'node:readline';
import {
  DataDirLockedError,
  lockDataDir,
  type DataDirLock,
} from '../../../adapters/db/dataDirLock.ts';

/**
 * A second process for dataDirLock.int.test.ts, driven by lines on stdin, answering on stdout
 * (`ready` first, once loaded): `lock` -> `held` or `locked <pid>`; `release` -> `released`; `exit` exits normally without
 * releasing (the exit hook must). `node --import tsx dataDirLockHolder.ts <dir>`.
 */
const dir = process.argv[2];
if (!dir) throw new Error('usage: dataDirLockHolder.ts <dir>');
let lock: DataDirLock | null = null;
console.log('ready');
for await (const line of createInterface({ input: process.stdin })) {
  switch (line.trim()) {
    case 'lock':
      try {
        lock = lockDataDir(dir);
        console.log('held');
      } catch (error) {
        if (!(error instanceof DataDirLockedError)) throw error;
        console.log(`locked ${error.pid}`);
      }
      break;
    case 'release':
      lock?.release();
      console.log('released');
      break;
    case 'exit':
      process.exit(0);
  }
}
