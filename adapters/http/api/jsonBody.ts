import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import { isReservedKey, isWellFormedText } from '../../../domain/validation.ts';
import { sendError } from './errors.ts';

/**
 * The deepest nesting a request body may have, counting objects and arrays; the body itself is
 * level 1, so `{"a": [1]}` has 2. Our deepest schema needs 3 (a program's tiers). The limit keeps
 * every recursive walk over a body (hashing it for an Idempotency-Key, zod, jsonb) far from the
 * stack's end, and it is checked on the raw bytes: JSON.parse of a 1 MB body of brackets blocks
 * the event loop for about 2 s on the 2-core machine, so such a body is never parsed.
 */
export const maxJsonDepth = 32;

/** A key as the error's `field` can carry it: NUL and unpaired surrogates spelt as `\uXXXX`. */
const printable = (key: string): string =>
  isWellFormedText(key)
    ? key
    : key.replace(
        // eslint-disable-next-line no-control-regex -- finding NUL is the point
        /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
        (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`,
      );

const fieldOf = (path: readonly string[]): string | undefined =>
  path.length === 0 ? undefined : path.join('.');

/** An input problem found before any route runs: a 400 `validation_error` naming the field. */
export type KeyProblem = { field: string | undefined; message: string };

/**
 * The first key of a parsed body, in document order, that no route may read: one that is not
 * well-formed text (NUL, an unpaired surrogate), which no store can keep and an error naming it
 * could not be stored either, or a reserved one (`__proto__`, `constructor`, `prototype`, see
 * domain/validation.ts), which zod's records drop without a word. String values are the schemas'
 * business (`wireString`). Iterative; the depth is bounded already (`verifyBody`).
 */
export const keyProblem = (body: unknown): KeyProblem | null => {
  // `key` is set when the value sits in an object: its name is checked when it comes up, so
  // problems are found in the order they are written.
  const pending: { value: unknown; path: string[]; key?: string }[] = [{ value: body, path: [] }];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const { value, path, key } = next;
    if (key !== undefined && !isWellFormedText(key))
      return {
        field: fieldOf([...path.slice(0, -1), printable(key)]),
        message: 'a field name must not contain NUL or an unpaired surrogate',
      };
    if (key !== undefined && isReservedKey(key))
      return { field: fieldOf(path), message: `${key} is not allowed as a name` };
    if (typeof value !== 'object' || value === null) continue;
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) {
        const item: unknown = value[i];
        if (typeof item === 'object' && item !== null)
          pending.push({ value: item, path: [...path, String(i)] });
      }
    } else {
      const entries: [string, unknown][] = Object.entries(value);
      for (const [name, item] of entries.reverse()) {
        pending.push({ value: item, path: [...path, name], key: name });
      }
    }
  }
  return null;
};

/** Runs right after express.json, before authentication and the Idempotency-Key. */
export const refuseUnsafeKeys = (): RequestHandler => (req, res, next) => {
  const problem = keyProblem(req.body);
  if (!problem) return next();
  sendError(res, 400, { code: 'validation_error', message: problem.message, field: problem.field });
};

/** Thrown from express.json's `verify` hook; errors.ts turns it into the answer. */
export type BodyRefusal = Error & { status: number; type: string; field?: string };

const refusal = (status: number, type: string, message: string, field?: string): BodyRefusal =>
  Object.assign(new Error(message), { status, type, ...(field !== undefined && { field }) });

/**
 * express.json's `verify` hook, run on the raw bytes before they are decoded or parsed:
 * - the charset must be UTF-8 (RFC 8259 §8.1 requires it between systems), else 415;
 * - the bytes must decode strictly: left alone, the decoder turns invalid bytes into U+FFFD and
 *   the request succeeds with text the client never sent (400 `encoding.invalid_utf8`);
 * - no deeper than `maxJsonDepth` (400 `entity.too_deep`).
 */
export const verifyBody = (
  _req: IncomingMessage,
  _res: unknown,
  bytes: Buffer,
  encoding: string,
): void => {
  if (encoding !== 'utf-8')
    throw refusal(415, 'charset.unsupported', `unsupported charset "${encoding}"`);
  if (!isUtf8(bytes))
    throw refusal(400, 'encoding.invalid_utf8', 'the body is not valid UTF-8', invalidField(bytes));
  const deep = tooDeep(bytes);
  if (deep)
    throw refusal(
      400,
      'entity.too_deep',
      `JSON is nested deeper than ${maxJsonDepth} levels`,
      deep.field,
    );
};

const [quote, backslash, openArray, closeArray, openObject, closeObject] = [
  0x22, 0x5c, 0x5b, 0x5d, 0x7b, 0x7d,
];

/**
 * Where the bytes open a level past `maxJsonDepth`, outside strings; null when they never do.
 * The field is found by parsing the text before that point, closed with a marker in place of the
 * level too many: it is at most `maxJsonDepth` deep, and the marker's path is the field.
 */
const tooDeep = (bytes: Buffer): { field: string | undefined } | null => {
  const open: number[] = [];
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    // Always in range (i < bytes.length); `?? 0` only satisfies noUncheckedIndexedAccess.
    const byte = bytes[i] ?? 0;
    if (inString) {
      if (byte === backslash) i++;
      else if (byte === quote) inString = false;
    } else if (byte === quote) inString = true;
    else if (byte === openArray || byte === openObject) {
      if (open.length === maxJsonDepth) {
        const closers = open.reverse().map((b) => (b === openArray ? ']' : '}'));
        return { field: markedField(bytes.toString('utf8', 0, i), closers.join('')) };
      }
      open.push(byte);
    } else if (byte === closeArray || byte === closeObject) open.pop();
  }
  return null;
};

/**
 * The field whose text holds the first invalid UTF-8 sequence. The lenient decoding matches the
 * bytes up to that sequence; a marker in its place survives JSON.parse in the string or key, and
 * the marker's path is the field.
 */
const invalidField = (bytes: Buffer): string | undefined => {
  const text = bytes.toString('utf8');
  let offset = 0;
  for (let i = 0; i < text.length;) {
    const code = text.codePointAt(i) ?? 0;
    const asSent =
      bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd;
    if (code === 0xfffd && !asSent) return markedField(text.slice(0, i), text.slice(i + 1));
    offset += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    i += code > 0xffff ? 2 : 1;
  }
  return undefined;
};

/**
 * The path of a marker put between `before` and `after` once the whole parses, read as a field
 * (a key holding it is shown with U+FFFD); undefined when it does not parse. The marker is a
 * noncharacter the text does not hold already, spelt as a JSON string where a value is expected.
 */
const markedField = (before: string, after: string): string | undefined => {
  const marker = ['\ufdd0', '\ufdd1', '\ufdd2', '\ufdd3'].find(
    (m) => !before.includes(m) && !after.includes(m),
  );
  if (marker === undefined) return undefined;
  const inString = (before.match(/(?<!\\)(?:\\\\)*"/g)?.length ?? 0) % 2 === 1;
  let parsed: unknown;
  try {
    parsed = JSON.parse(`${before}${inString ? marker : `"${marker}"`}${after}`);
  } catch {
    return undefined;
  }
  const pending: { value: unknown; path: string[] }[] = [{ value: parsed, path: [] }];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const { value, path } = next;
    if (typeof value === 'string') {
      if (value.includes(marker)) return fieldOf(path);
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        if (key.includes(marker)) return fieldOf([...path, key.replaceAll(marker, '\ufffd')]);
        pending.push({ value: item, path: [...path, key] });
      }
    }
  }
  return undefined;
};
