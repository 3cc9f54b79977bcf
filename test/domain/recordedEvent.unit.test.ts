import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatPosition, parsePosition } from '../../domain/recordedEvent.ts';

describe('a position in its wire form', () => {
  it('reads back what formatPosition wrote, up to the largest each store can hold', () => {
    for (const position of [
      { commit: 0n, prepare: 0n },
      { commit: 812n, prepare: 40n },
      { commit: 2n ** 64n - 1n, prepare: 2n ** 63n - 1n },
    ])
      assert.deepEqual(parsePosition(formatPosition(position)), position);
  });

  it('is not a position past 64 bits: commit unsigned, prepare signed', () => {
    for (const text of [
      '18446744073709551616.1',
      '1.9223372036854775808',
      '99999999999999999999.99999999999999999999',
    ])
      assert.equal(parsePosition(text), null, text);
  });

  it('is not a position without both parts in decimal', () => {
    for (const text of ['', '12', '1.', '.1', 'a.b', '-1.1', '1.1.1', ' 1.1', '1.1 ', '１.1'])
      assert.equal(parsePosition(text), null, JSON.stringify(text));
  });
});
