import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../adapters/config.ts';

describe('config', () => {
  describe('SHUTDOWN_TIMEOUT_MS', () => {
    it('defaults to 10 seconds', () => {
      assert.equal(loadConfig({}).shutdownTimeoutMs, 10_000);
    });

    it('reads milliseconds', () => {
      assert.equal(loadConfig({ SHUTDOWN_TIMEOUT_MS: '2500' }).shutdownTimeoutMs, 2_500);
    });

    it('refuses what is not a whole number of milliseconds, naming the key', () => {
      for (const value of ['soon', '-1', '1.5'])
        assert.throws(
          () => loadConfig({ SHUTDOWN_TIMEOUT_MS: value }),
          (error: unknown) =>
            error instanceof ConfigError &&
            error.message.includes('SHUTDOWN_TIMEOUT_MS') &&
            !error.message.includes(value),
        );
    });
  });
});
