// An independent, test-side reference for transparency-log artifacts, written from the
// specifications only (no product imports, node:crypto only), for cross-checking the product:
//
// - RFC 9162 (Certificate Transparency v2; the same hashing as RFC 6962): the Merkle Tree Hash
//   (section 2.1.1), PATH and PROOF/SUBPROOF (RFC 6962 sections 2.1.1 and 2.1.2, computed naively),
//   and the verification algorithms of sections 2.1.3.2 (inclusion) and 2.1.4.2 (consistency).
// - C2SP signed-note (https://c2sp.org/signed-note) with Ed25519 signatures, the verifier key
//   format of golang.org/x/mod/sumdb/note (`<name>+<hash>+<keydata>`), and C2SP tlog-checkpoint
//   (https://c2sp.org/tlog-checkpoint) note text.
import {
  createHash,
  createPublicKey,
  verify as verifySignature,
  type KeyObject,
} from 'node:crypto';

/** SHA-256 output size: every node hash, leaf hash and root is this long. */
const HASH_SIZE = 32;
const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);
/** Tree sizes and indices are uint64 in RFC 9162. */
const UINT64_LIMIT = 1n << 64n;

const sha256 = (...parts: readonly Uint8Array[]): Buffer => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
};

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(b);

const isHash = (value: Uint8Array): boolean => value.length === HASH_SIZE;

// ---------------------------------------------------------------------------------------------
// RFC 9162 section 2.1.1: the Merkle Tree Hash, and the RFC 6962 PATH and PROOF definitions.
// ---------------------------------------------------------------------------------------------

/** RFC 9162 2.1.1: the leaf hash, MTH({d}) = SHA-256(0x00 || d). */
export function leafHash(data: Uint8Array): Buffer {
  return sha256(LEAF_PREFIX, data);
}

/** RFC 9162 2.1.1: an interior node, SHA-256(0x01 || MTH(left) || MTH(right)). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return sha256(NODE_PREFIX, left, right);
}

/** k, the largest power of two smaller than n (n > 1), where RFC 9162 2.1.1 splits D_n. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH(D[start:end]) over leaf hashes, by the recursive definition. */
function subtreeHash(leaves: readonly Uint8Array[], start: number, end: number): Buffer {
  const n = end - start;
  if (n === 0) return sha256();
  if (n === 1) return Buffer.from(leaves[start]!);
  const k = splitPoint(n);
  return nodeHash(subtreeHash(leaves, start, start + k), subtreeHash(leaves, start + k, end));
}

/**
 * RFC 9162 2.1.1: MTH(D_n) over leaves that are already leaf hashes (so MTH of one leaf is its
 * hash); the empty tree's hash is SHA-256 of the empty string.
 */
export function merkleRoot(leafHashes: readonly Uint8Array[]): Buffer {
  return subtreeHash(leafHashes, 0, leafHashes.length);
}

/** PATH(m, D[start:end]), leaf sibling first. */
function path(leaves: readonly Uint8Array[], m: number, start: number, end: number): Buffer[] {
  const n = end - start;
  if (n <= 1) return [];
  const k = splitPoint(n);
  if (m < k) return [...path(leaves, m, start, start + k), subtreeHash(leaves, start + k, end)];
  return [...path(leaves, m - k, start + k, end), subtreeHash(leaves, start, start + k)];
}

const assertSize = (value: number, min: number, max: number, what: string): void => {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`${what} ${value} is outside [${min}, ${max}]`);
  }
};

/**
 * RFC 6962 2.1.1 (RFC 9162 2.1.3.1): the audit path PATH(index, D_n), naively, leaf sibling
 * first. Throws a RangeError unless 0 <= index < n.
 */
export function inclusionProof(leafHashes: readonly Uint8Array[], index: number): Buffer[] {
  assertSize(index, 0, leafHashes.length - 1, 'leaf index');
  return path(leafHashes, index, 0, leafHashes.length);
}

/** SUBPROOF(m, D[start:end], complete) of RFC 6962 2.1.2. */
function subproof(
  leaves: readonly Uint8Array[],
  m: number,
  range: { start: number; end: number },
  complete: boolean,
): Buffer[] {
  const { start, end } = range;
  const n = end - start;
  if (m === n) return complete ? [] : [subtreeHash(leaves, start, end)];
  const k = splitPoint(n);
  if (m <= k) {
    const left = subproof(leaves, m, { start, end: start + k }, complete);
    return [...left, subtreeHash(leaves, start + k, end)];
  }
  const right = subproof(leaves, m - k, { start: start + k, end }, false);
  return [...right, subtreeHash(leaves, start, start + k)];
}

/**
 * RFC 6962 2.1.2 (RFC 9162 2.1.4.1): PROOF(oldSize, D_n) = SUBPROOF(oldSize, D_n, true),
 * naively. oldSize == n gives the empty proof (SUBPROOF(m, D[m], true) = {}); oldSize 0 has no
 * proof in the RFC, so this throws a RangeError unless 1 <= oldSize <= n.
 */
export function consistencyProof(leafHashes: readonly Uint8Array[], oldSize: number): Buffer[] {
  assertSize(oldSize, 1, leafHashes.length, 'old size');
  return subproof(leafHashes, oldSize, { start: 0, end: leafHashes.length }, true);
}

// ---------------------------------------------------------------------------------------------
// RFC 9162 sections 2.1.3.2 and 2.1.4.2: proof verification.
// ---------------------------------------------------------------------------------------------

/** A uint64 as a bigint, or null for anything else (negative, fractional, unsafe, too big). */
function toUint64(value: number | bigint): bigint | null {
  if (typeof value === 'number')
    return Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : null;
  return value >= 0n && value < UINT64_LIMIT ? value : null;
}

const lsb = (value: bigint): boolean => (value & 1n) === 1n;

/** "Right-shift both fn and sn equally until either LSB(fn) is set or fn is 0." */
function shiftUntilLsbOrZero(fn: bigint, sn: bigint): { fn: bigint; sn: bigint } {
  while (!lsb(fn) && fn !== 0n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  return { fn, sn };
}

/** What RFC 9162 2.1.3.2 step 4 carries from one inclusion path element to the next. */
type InclusionState = { fn: bigint; sn: bigint; r: Buffer };

/** RFC 9162 2.1.3.2 step 4, for one element p; null where step 4a fails. */
function inclusionStep(state: InclusionState, p: Uint8Array): InclusionState | null {
  let { fn, sn, r } = state;
  if (sn === 0n) return null; // 4a
  if (lsb(fn) || fn === sn) {
    r = nodeHash(p, r); // 4b i
    if (!lsb(fn)) ({ fn, sn } = shiftUntilLsbOrZero(fn, sn)); // 4b ii
  } else {
    r = nodeHash(r, p); // 4b "Otherwise" i
  }
  return { fn: fn >> 1n, sn: sn >> 1n, r }; // 4c
}

/**
 * RFC 9162 2.1.3.2, step by step: does `proof` (the inclusion path, leaf sibling first) show
 * that `leafHash` is leaf `leafIndex` of the tree of `treeSize` leaves whose root is `root`?
 * Beyond the RFC text, it answers false (never throws) for a non-uint64 index or size and for
 * any hash (leaf, root, path element) that is not 32 bytes.
 */
export function verifyInclusion(args: {
  leafIndex: number | bigint;
  treeSize: number | bigint;
  leafHash: Uint8Array;
  proof: readonly Uint8Array[];
  root: Uint8Array;
}): boolean {
  const leafIndex = toUint64(args.leafIndex);
  const treeSize = toUint64(args.treeSize);
  if (leafIndex === null || treeSize === null) return false;
  if (!isHash(args.leafHash) || !isHash(args.root) || !args.proof.every(isHash)) return false;
  if (leafIndex >= treeSize) return false; // 1
  let state: InclusionState | null = {
    fn: leafIndex, // 2
    sn: treeSize - 1n,
    r: Buffer.from(args.leafHash), // 3
  };
  for (const p of args.proof) {
    state = inclusionStep(state, p); // 4
    if (state === null) return false;
  }
  return state.sn === 0n && sameBytes(state.r, args.root); // 5
}

/** What RFC 9162 2.1.4.2 step 6 carries from one consistency path element to the next. */
type ConsistencyState = { fn: bigint; sn: bigint; fr: Buffer; sr: Buffer };

/** RFC 9162 2.1.4.2 step 6, for one element c; null where step 6a fails. */
function consistencyStep(state: ConsistencyState, c: Uint8Array): ConsistencyState | null {
  let { fn, sn, fr, sr } = state;
  if (sn === 0n) return null; // 6a
  if (lsb(fn) || fn === sn) {
    fr = nodeHash(c, fr); // 6b i
    sr = nodeHash(c, sr); // 6b ii
    if (!lsb(fn)) ({ fn, sn } = shiftUntilLsbOrZero(fn, sn)); // 6b iii
  } else {
    sr = nodeHash(sr, c); // 6b "Otherwise" i
  }
  return { fn: fn >> 1n, sn: sn >> 1n, fr, sr }; // 6c
}

const isPowerOfTwo = (value: bigint): boolean => value > 0n && (value & (value - 1n)) === 0n;

/** RFC 9162 2.1.4.2 steps 1 to 7, for 0 < first < second. */
function rfcConsistency(
  sizes: { first: bigint; second: bigint },
  roots: { first: Uint8Array; second: Uint8Array },
  proof: readonly Uint8Array[],
): boolean {
  if (proof.length === 0) return false; // 1
  const consistencyPath = isPowerOfTwo(sizes.first) ? [roots.first, ...proof] : [...proof]; // 2
  let fn = sizes.first - 1n; // 3
  let sn = sizes.second - 1n;
  while (lsb(fn)) {
    fn >>= 1n; // 4
    sn >>= 1n;
  }
  const head = Buffer.from(consistencyPath[0]!);
  let state: ConsistencyState | null = { fn, sn, fr: head, sr: head }; // 5
  for (const c of consistencyPath.slice(1)) {
    state = consistencyStep(state, c); // 6
    if (state === null) return false;
  }
  return sameBytes(state.fr, roots.first) && sameBytes(state.sr, roots.second) && state.sn === 0n; // 7
}

/**
 * RFC 9162 2.1.4.2: does `proof` show that the tree of `newSize` leaves with root `newRoot`
 * extends the tree of `oldSize` leaves with root `oldRoot`? The RFC algorithm is for
 * 0 < oldSize < newSize and is followed exactly there. Outside it (choices, documented):
 * - oldSize == newSize: true exactly when the proof is empty and the roots are equal (RFC 6962
 *   2.1.2 gives SUBPROOF(m, D[m], true) = {}: a tree head is consistent with itself);
 * - oldSize == 0: false, whatever the proof. The RFC defines no proof from the empty tree (its
 *   precondition is 0 < first). Note that some libraries (transparency-dev/merkle, sigsum) instead
 *   accept the empty proof there;
 * - oldSize > newSize, a non-uint64 size, or a hash that is not 32 bytes: false.
 */
export function verifyConsistency(args: {
  oldSize: number | bigint;
  newSize: number | bigint;
  oldRoot: Uint8Array;
  newRoot: Uint8Array;
  proof: readonly Uint8Array[];
}): boolean {
  const first = toUint64(args.oldSize);
  const second = toUint64(args.newSize);
  if (first === null || second === null) return false;
  if (!isHash(args.oldRoot) || !isHash(args.newRoot) || !args.proof.every(isHash)) return false;
  if (first === 0n || first > second) return false;
  if (first === second) return args.proof.length === 0 && sameBytes(args.oldRoot, args.newRoot);
  return rfcConsistency(
    { first, second },
    { first: args.oldRoot, second: args.newRoot },
    args.proof,
  );
}

// ---------------------------------------------------------------------------------------------
// C2SP signed-note, with the golang.org/x/mod/sumdb/note verifier key format.
// ---------------------------------------------------------------------------------------------

/** Signature type 0x01 of C2SP signed-note: Ed25519. */
const ED25519_TYPE = 0x01;
const ED25519_KEY_SIZE = 32;
const ED25519_SIGNATURE_SIZE = 64;
/** DER SubjectPublicKeyInfo for Ed25519 (RFC 8410) up to the 32-byte key. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
/** golang.org/x/mod/sumdb/note's limit; C2SP asks to accept at least 16. */
const MAX_SIGNATURES = 100;
const SIGNATURE_PREFIX = '\u2014 ';
const CANONICAL_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Standard base64 (RFC 4648 section 4) with padding, decoded strictly: null unless the text is
 * exactly the canonical encoding of the bytes (Node's own decoder skips what it does not know).
 */
function decodeBase64(text: string): Buffer | null {
  if (!CANONICAL_BASE64.test(text)) return null;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : null;
}

/** No lone surrogates, so the string has a UTF-8 encoding. */
const isWellFormed = (text: string): boolean => Buffer.from(text, 'utf8').toString('utf8') === text;

/** C2SP signed-note: a key name is non-empty, without Unicode spaces or plus (U+002B). */
const isValidKeyName = (name: string): boolean =>
  name !== '' && !/[\p{White_Space}+]/u.test(name) && isWellFormed(name);

/** An ASCII control character (below U+0020) other than newline. */
const hasControlCharacter = (text: string): boolean =>
  [...text].some((char) => char < ' ' && char !== '\n');

/** C2SP signed-note key ID: SHA-256(key name || 0x0A || signature type || public key)[:4]. */
function noteKeyHash(name: string, typedKey: Uint8Array): number {
  return sha256(Buffer.from(`${name}\n`, 'utf8'), typedKey).readUInt32BE(0);
}

/** Splits at the first `separator`: [before, after], or null when it is absent. */
function chop(text: string, separator: string): [string, string] | null {
  const at = text.indexOf(separator);
  return at < 0 ? null : [text.slice(0, at), text.slice(at + separator.length)];
}

/**
 * golang.org/x/mod/sumdb/note verifier key `<name>+<8 hex digit key hash>+<base64(0x01 || 32-byte
 * Ed25519 public key)>`, checked as C2SP signed-note says: a valid key name, type 0x01, and the
 * key hash equal to the first 4 bytes (big-endian) of SHA-256(name || "\n" || 0x01 || key).
 * Throws an Error on any deviation (the key is trusted configuration, not the input under test).
 */
export function parseVerifierKey(vkey: string): {
  name: string;
  keyHash: number;
  publicKey: Buffer;
} {
  const [name, rest] = chop(vkey, '+') ?? ['', ''];
  const [hashHex, keyBase64] = chop(rest, '+') ?? ['', ''];
  const typedKey = decodeBase64(keyBase64);
  if (!isValidKeyName(name) || !/^[0-9a-fA-F]{8}$/.test(hashHex) || typedKey === null) {
    throw new Error(`malformed verifier key ${JSON.stringify(vkey)}`);
  }
  if (typedKey.length !== 1 + ED25519_KEY_SIZE || typedKey[0] !== ED25519_TYPE) {
    throw new Error(`verifier key ${JSON.stringify(vkey)} is not an Ed25519 (type 0x01) key`);
  }
  const keyHash = Number.parseInt(hashHex, 16);
  if (keyHash !== noteKeyHash(name, typedKey)) {
    throw new Error(`verifier key ${JSON.stringify(vkey)}: the key hash does not match the key`);
  }
  return { name, keyHash, publicKey: Buffer.from(typedKey.subarray(1)) };
}

/** A node:crypto public key from a raw 32-byte Ed25519 key, through its SPKI DER encoding. */
function ed25519PublicKey(raw: Uint8Array): KeyObject {
  const der = Buffer.concat([ED25519_SPKI_PREFIX, raw]);
  return createPublicKey({ key: der, format: 'der', type: 'spki' });
}

/** One parsed signature line: `— <name> base64(key ID || signature)`. */
type SignatureLine = { name: string; keyHash: number; signature: Buffer };

/** A signature line as C2SP signed-note shapes it, or null. */
function parseSignatureLine(line: string): SignatureLine | null {
  if (!line.startsWith(SIGNATURE_PREFIX)) return null;
  const [name, encoded] = chop(line.slice(SIGNATURE_PREFIX.length), ' ') ?? ['', ''];
  const bytes = decodeBase64(encoded);
  if (!isValidKeyName(name) || encoded === '' || bytes === null || bytes.length < 5) return null;
  return { name, keyHash: bytes.readUInt32BE(0), signature: Buffer.from(bytes.subarray(4)) };
}

/**
 * C2SP signed-note format: the text (ending in a newline), then the last blank line, then one or
 * more signature lines each ending in a newline; valid UTF-8 with no control character but
 * newline. Null when malformed.
 */
function splitNote(note: string): { text: string; lines: SignatureLine[] } | null {
  if (!isWellFormed(note) || hasControlCharacter(note)) return null;
  const split = note.lastIndexOf('\n\n');
  if (split < 0) return null;
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (block === '' || !block.endsWith('\n')) return null;
  const rawLines = block.slice(0, -1).split('\n');
  if (rawLines.length > MAX_SIGNATURES) return null;
  const lines = rawLines.map(parseSignatureLine);
  return lines.every((line) => line !== null) ? { text, lines } : null;
}

/**
 * C2SP signed-note verification with one trusted Ed25519 key (a verifier key, see
 * parseVerifierKey): the note's text, or null when the note is malformed, when no signature line
 * carries the key's name and key ID, or when any line that does fails Ed25519 verification over
 * the text bytes (final newline included). Lines from other keys are ignored. Unlike
 * golang.org/x/mod/sumdb/note, which verifies only the first line per key, every matching line is
 * verified (C2SP: "If the key name and ID match a known key, verifiers MUST verify the signature").
 */
export function verifyNote(note: string, vkey: string): { text: string } | null {
  const key = parseVerifierKey(vkey);
  const parsed = splitNote(note);
  if (parsed === null) return null;
  const matching = parsed.lines.filter((l) => l.name === key.name && l.keyHash === key.keyHash);
  if (matching.length === 0) return null;
  const publicKey = ed25519PublicKey(key.publicKey);
  const data = Buffer.from(parsed.text, 'utf8');
  const verifies = (line: SignatureLine): boolean =>
    line.signature.length === ED25519_SIGNATURE_SIZE &&
    verifySignature(null, data, publicKey, line.signature);
  return matching.every(verifies) ? { text: parsed.text } : null;
}

// ---------------------------------------------------------------------------------------------
// C2SP tlog-checkpoint note text.
// ---------------------------------------------------------------------------------------------

/**
 * C2SP tlog-checkpoint note text: at least three non-empty lines, each ending in a newline: the
 * origin, the tree size in ASCII decimal without leading zeros ("0" for the empty tree; here also
 * at most 2^64 - 1, RFC 9162's uint64), the base64 of the 32-byte root hash, then optional
 * non-empty extension lines. Null when malformed.
 */
export function parseCheckpoint(
  text: string,
): { origin: string; size: bigint; root: Buffer; extensions: string[] } | null {
  if (!text.endsWith('\n')) return null;
  const lines = text.slice(0, -1).split('\n');
  const [origin, sizeText, rootText] = lines;
  if (origin === undefined || sizeText === undefined || rootText === undefined) return null;
  if (lines.some((line) => line === '')) return null;
  if (!/^(?:0|[1-9][0-9]*)$/.test(sizeText)) return null;
  const size = BigInt(sizeText);
  const root = decodeBase64(rootText);
  if (size >= UINT64_LIMIT || root === null || root.length !== HASH_SIZE) return null;
  return { origin, size, root, extensions: lines.slice(3) };
}
