import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDatabaseUnavailable } from '../../../adapters/db/unavailable.ts';

const coded = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isDatabaseUnavailable', () => {
  it('recognises refused, reset and timed-out connections', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'])
      assert.equal(isDatabaseUnavailable(coded(code)), true, code);
  });

  it('recognises PostgreSQL shutting down, starting up and connection exceptions', () => {
    for (const code of ['57P01', '57P02', '57P03', '08006', '08001', '53300'])
      assert.equal(isDatabaseUnavailable(coded(code)), true, code);
  });

  it("recognises pg's own messages for a lost connection and a connect timeout", () => {
    assert.equal(isDatabaseUnavailable(new Error('Connection terminated unexpectedly')), true);
    assert.equal(isDatabaseUnavailable(new Error('timeout exceeded when trying to connect')), true);
  });

  it('looks inside causes and AggregateErrors', () => {
    assert.equal(isDatabaseUnavailable(new Error('wrapped', { cause: coded('57P01') })), true);
    assert.equal(
      isDatabaseUnavailable(new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')])),
      true,
    );
  });

  it('leaves every other error to be a 500', () => {
    assert.equal(isDatabaseUnavailable(new TypeError('undefined is not a function')), false);
    assert.equal(isDatabaseUnavailable(coded('23505', 'duplicate key')), false);
    assert.equal(isDatabaseUnavailable(coded('42P01', 'relation does not exist')), false);
    assert.equal(isDatabaseUnavailable(null), false);
  });
});
