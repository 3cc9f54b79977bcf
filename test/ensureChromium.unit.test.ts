import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

const script = new URL('./ensureChromium.sh', import.meta.url).pathname;
const runner = new URL('./run.mjs', import.meta.url).pathname;
const bash = ['/bin/bash', '/usr/bin/bash'].find((path) => existsSync(path)) ?? 'bash';
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const executable = (path: string, text: string) => {
  writeFileSync(path, text);
  chmodSync(path, 0o755);
};

/**
 * Runs the script with a PATH holding only stand-ins: `id` answers `uid`, `apt-get` (unless
 * absent) logs its arguments and DEBIAN_FRONTEND and, on `install`, creates the browser when told
 * to. The browser's path is CHROMIUM_PATH in the same folder, absent unless `present`.
 */
const run = (machine: {
  uid: number;
  aptGet: 'absent' | 'installs' | 'installs nothing' | 'fails';
  present?: boolean;
}) => {
  const dir = mkdtempSync(join(tmpdir(), 'incentable-chromium-check-'));
  dirs.push(dir);
  const bin = join(dir, 'bin');
  const chromium = join(dir, 'chromium');
  const log = join(dir, 'apt-get.log');
  const browser = `#!/bin/sh\necho "Chromium 1.2.3 (stand-in)"\n`;
  spawnSync('/bin/mkdir', [bin]);
  executable(join(bin, 'id'), `#!/bin/sh\necho ${machine.uid}\n`);
  if (machine.aptGet !== 'absent') {
    const onInstall =
      machine.aptGet === 'fails'
        ? 'exit 100'
        : machine.aptGet === 'installs'
          ? `printf '%s' '${browser}' > '${chromium}' && /bin/chmod 755 '${chromium}'`
          : 'true';
    executable(
      join(bin, 'apt-get'),
      `#!/bin/sh\necho "DEBIAN_FRONTEND=$DEBIAN_FRONTEND $*" >> '${log}'\n` +
        `if [ "$1" = install ]; then ${onInstall}; fi\n`,
    );
  }
  if (machine.present) executable(chromium, browser);
  const result = spawnSync(bash, [script], {
    env: { PATH: bin, CHROMIUM_PATH: chromium },
    encoding: 'utf8',
  });
  return {
    bin,
    chromium,
    status: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
    aptGet: existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [],
  };
};

describe('test/ensureChromium.sh', () => {
  it('prints the version of a Chromium already there and installs nothing', () => {
    const result = run({ uid: 0, aptGet: 'installs', present: true });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /== chromium: Chromium 1\.2\.3/);
    assert.deepEqual(result.aptGet, []);
  });

  describe('with no Chromium', () => {
    it('installs Debian’s chromium as root with apt-get, without questions', () => {
      const result = run({ uid: 0, aptGet: 'installs' });
      assert.equal(result.status, 0, result.stderr);
      assert.deepEqual(result.aptGet, [
        'DEBIAN_FRONTEND=noninteractive update',
        'DEBIAN_FRONTEND=noninteractive install -y chromium',
      ]);
      assert.match(result.stdout, /== chromium: Chromium 1\.2\.3/);
    });

    it('stops, naming the sudo command, when not root', () => {
      const result = run({ uid: 1000, aptGet: 'installs' });
      assert.equal(result.status, 1);
      assert.deepEqual(result.aptGet, [], 'apt-get is not tried');
      assert.match(result.stderr, /need Chromium at .*chromium, and it is not there/);
      assert.match(
        result.stderr,
        /sudo apt-get update && sudo apt-get install -y chromium/,
        result.stderr,
      );
    });

    it('stops, naming the package, when there is no apt-get', () => {
      const result = run({ uid: 0, aptGet: 'absent' });
      assert.equal(result.status, 1);
      assert.match(result.stderr, /apt-get install -y chromium/);
    });

    it('stops when apt-get fails, saying what failed', () => {
      const result = run({ uid: 0, aptGet: 'fails' });
      assert.equal(result.status, 1);
      assert.match(result.stderr, /apt-get install -y chromium failed/);
    });

    it('stops when the package did not put Chromium where the tests look', () => {
      const result = run({ uid: 0, aptGet: 'installs nothing' });
      assert.equal(result.status, 1);
      assert.match(result.stderr, /still missing: set CHROMIUM_PATH/);
    });
  });

  it('stops the test runner before any test when it cannot install Chromium', () => {
    const { bin, chromium } = run({ uid: 1000, aptGet: 'installs' });
    symlinkSync(bash, join(bin, 'bash'));
    const result = spawnSync(process.execPath, [runner, 'browser'], {
      env: { PATH: bin, CHROMIUM_PATH: chromium, TEST_DATABASE_URL: 'postgres://127.0.0.1:1/none' },
      encoding: 'utf8',
    });
    assert.equal(result.status, 1, result.stdout + result.stderr);
    assert.match(result.stderr, /sudo apt-get update && sudo apt-get install -y chromium/);
    assert.doesNotMatch(result.stdout + result.stderr, /PostgreSQL|admin dashboard|# tests/);
  });
});
