import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { truncateUtf8 } from '../../../adapters/webhooks/undiciTransport.ts';

describe('truncating a response body', () => {
  const cases: readonly (readonly [string, string, number, string])[] = [
    ['keeps a body within the limit whole', 'héllo', 10, 'héllo'],
    ['cuts ASCII at the limit', 'abcdef', 4, 'abcd'],
    ['drops a two-byte character split by the cut', 'aé', 2, 'a'],
    ['drops a three-byte character split by the cut', 'a€', 3, 'a'],
    ['drops a four-byte character split by the cut', 'ab😀', 5, 'ab'],
    ['keeps a character that ends exactly at the limit', 'a€b', 4, 'a€'],
  ];
  for (const [name, text, maxBytes, expected] of cases) {
    it(name, () => {
      assert.equal(truncateUtf8(Buffer.from(text, 'utf8'), maxBytes), expected);
    });
  }
});
