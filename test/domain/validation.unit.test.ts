import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isReservedKey, isText, isWellFormedText } from '../../domain/validation.ts';

/** V8's own check (ES2024, in Node 20 but not in our TypeScript lib). */
const wellFormed = (value: string): boolean =>
  (value as string & { isWellFormed: () => boolean }).isWellFormed();

/** Any UTF-16 code unit, with surrogates and NUL drawn often ('binary' only makes valid pairs). */
const codeUnit = fc.oneof(
  fc.constantFrom('\u0000', '\ud800', '\udbff', '\udc00', '\udfff'),
  fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
);

describe('well-formed text', () => {
  for (const [what, value] of [
    ['plain ASCII', 'Ana Souza'],
    ['letters beyond Latin-1', 'Zoë Łukasiewicz-山田'],
    ['a surrogate pair (an emoji)', '🎉'],
    ['an emoji sequence', '👩🏽‍💻'],
    ['the empty string', ''],
    ['control characters other than NUL', 'a\u0007\n\u007f'],
  ] as const) {
    it(`accepts ${what}`, () => {
      assert.equal(isWellFormedText(value), true);
    });
  }

  for (const [what, value] of [
    ['NUL', 'a\u0000b'],
    ['a lone high surrogate', 'a\ud800b'],
    ['a lone high surrogate at the end', 'ab\udbff'],
    ['a lone low surrogate', 'a\udc00b'],
    ['a pair in the wrong order', '\udc00\ud800'],
    ['two high surrogates', '\ud800\ud800\udc00'],
  ] as const) {
    it(`refuses ${what}`, () => {
      assert.equal(isWellFormedText(value), false);
    });
  }

  it('agrees with String.prototype.isWellFormed plus "no NUL" on any UTF-16 string', () => {
    fc.assert(
      fc.property(fc.string({ unit: codeUnit, maxLength: 40 }), (value) => {
        assert.equal(isWellFormedText(value), wellFormed(value) && !value.includes('\u0000'));
      }),
      { numRuns: 5000 },
    );
  });

  it('is part of every domain text check', () => {
    assert.equal(isText('a\ud800', { min: 1, max: 10 }), false);
    assert.equal(isText('a🎉', { min: 1, max: 10 }), true);
  });
});

describe('reserved keys', () => {
  it('are __proto__, constructor and prototype', () => {
    for (const key of ['__proto__', 'constructor', 'prototype'])
      assert.equal(isReservedKey(key), true);
    for (const key of ['proto', '__proto', 'Constructor', 'plan'])
      assert.equal(isReservedKey(key), false);
  });
});
