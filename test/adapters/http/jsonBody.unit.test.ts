import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { keyProblem, maxJsonDepth, verifyBody } from '../../../adapters/http/api/jsonBody.ts';

/** `levels` objects and arrays inside one another, the outermost an object: `{"a": [1]}` is 2. */
const nestedBody = (levels: number): Buffer =>
  Buffer.from(`{"a": ${'['.repeat(levels - 1)}1${']'.repeat(levels - 1)}}`);

const verify = (bytes: Buffer, encoding = 'utf-8') =>
  verifyBody({} as IncomingMessage, {}, bytes, encoding);

const thrown = (run: () => void): { status?: number; type?: string; field?: string } => {
  try {
    run();
  } catch (error) {
    return error as { status?: number; type?: string; field?: string };
  }
  assert.fail('expected it to throw');
};

describe('the nesting limit on the raw body', () => {
  it(`accepts ${maxJsonDepth} levels`, () => {
    verify(nestedBody(maxJsonDepth));
  });

  it(`refuses ${maxJsonDepth + 1} levels with 400, naming the path to the level too many`, () => {
    assert.deepEqual(
      { ...thrown(() => verify(nestedBody(maxJsonDepth + 1))) },
      { status: 400, type: 'entity.too_deep', field: `a${'.0'.repeat(maxJsonDepth - 1)}` },
    );
  });

  it('names the key under which the body goes too deep', () => {
    const body = `{"tiers": [], "attributes": {"x": ${'{"y": '.repeat(40)}1${'}'.repeat(40)}}}`;
    assert.equal(
      thrown(() => verify(Buffer.from(body))).field,
      `attributes.x${'.y'.repeat(maxJsonDepth - 2)}`,
    );
  });

  it('counts no bracket inside a string, escaped quotes included', () => {
    verify(Buffer.from(`{"a": "${'['.repeat(100)} \\" ${'{'.repeat(100)}", "b": ["\\\\"]}`));
  });

  it('refuses a megabyte of brackets without parsing it', () => {
    const error = thrown(() => verify(Buffer.from(`${'['.repeat(500_000)}${']'.repeat(500_000)}`)));
    assert.equal(error.type, 'entity.too_deep');
    assert.equal(error.field, Array.from({ length: maxJsonDepth }, () => '0').join('.'));
    // The scan stops at the level too many: what follows it is never read, so not even bytes
    // that no JSON parser would take get a parse error.
    const cutShort = thrown(() => verify(Buffer.from(`${'['.repeat(maxJsonDepth + 1)}\u0000}}{{`)));
    assert.equal(cutShort.type, 'entity.too_deep');
  });
});

describe('the key check on the parsed body', () => {
  for (const key of ['__proto__', 'constructor', 'prototype']) {
    it(`refuses ${key} at any depth, naming it`, () => {
      const body = JSON.parse(`{"attributes": {"${key}": "x"}}`) as unknown;
      assert.deepEqual(keyProblem(body), {
        field: `attributes.${key}`,
        message: `${key} is not allowed as a name`,
      });
    });
  }

  it('refuses a key with a lone surrogate, spelling it out in the field', () => {
    const body = JSON.parse('{"tiers": [{"n\\ud800": 1}]}') as unknown;
    assert.equal(keyProblem(body)?.field, 'tiers.0.n\\ud800');
  });

  it('refuses a key with NUL, spelling it out in the field', () => {
    assert.equal(keyProblem({ 'a\u0000b': 1 })?.field, 'a\\u0000b');
  });

  it('reports the first problem in document order', () => {
    const body = JSON.parse('{"a": {"b": {"constructor": 1}}, "prototype": 2}') as unknown;
    assert.equal(keyProblem(body)?.field, 'a.b.constructor');
  });

  it('leaves string values to the schemas', () => {
    assert.equal(keyProblem({ name: 'a\ud800', attributes: { k: '\u0000' } }), null);
  });
});

describe('the UTF-8 check on the raw body', () => {
  it('accepts UTF-8, U+FFFD itself included', () => {
    verify(Buffer.from('{"name": "Zoë \ufffd 🎉"}'));
  });

  it('refuses invalid UTF-8 with 400, naming the field whose text holds it', () => {
    const bytes = Buffer.concat([
      Buffer.from('{"name": "ok \ufffd", "attributes": {"note": "a'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}}'),
    ]);
    assert.deepEqual(
      { ...thrown(() => verify(bytes)) },
      {
        status: 400,
        type: 'encoding.invalid_utf8',
        field: 'attributes.note',
      },
    );
  });

  it('names a key that holds invalid UTF-8 as it decodes, with U+FFFD', () => {
    const bytes = Buffer.concat([
      Buffer.from('{"a": [{"k'),
      Buffer.from([0xff]),
      Buffer.from('": 1}]}'),
    ]);
    assert.equal(thrown(() => verify(bytes)).field, 'a.0.k\ufffd');
  });

  it('names no field when the invalid bytes are outside any string', () => {
    const bytes = Buffer.concat([Buffer.from('{"a": 1'), Buffer.from([0xff]), Buffer.from('}')]);
    assert.equal(thrown(() => verify(bytes)).field, undefined);
  });

  it('refuses an encoded surrogate and an overlong form', () => {
    for (const bad of [
      [0xed, 0xa0, 0x80],
      [0xc0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
    ]) {
      const bytes = Buffer.concat([Buffer.from('{"a": "'), Buffer.from(bad), Buffer.from('"}')]);
      assert.equal(thrown(() => verify(bytes)).field, 'a', `bytes ${bad.join(' ')}`);
    }
  });

  it('refuses a charset other than UTF-8 with 415', () => {
    const error = thrown(() => verify(Buffer.from('{}', 'utf16le'), 'utf-16le'));
    assert.equal(error.status, 415);
    assert.equal(error.type, 'charset.unsupported');
  });
});
