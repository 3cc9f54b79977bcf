// Checks the test-side reference (rfc9162.ts) against published vectors, then exhaustively on
// small trees. The published vectors are in transparencyVectors.ts, each under the source it is
// copied from.
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  consistencyProof,
  inclusionProof,
  leafHash,
  merkleRoot,
  nodeHash,
  parseCheckpoint,
  parseVerifierKey,
  verifyConsistency,
  verifyInclusion,
  verifyNote,
} from './rfc9162.ts';
import {
  C2SP_CHECKPOINT_TEXT,
  CONSISTENCY_VECTORS,
  ENOCH_KEY,
  ENOCH_SIG,
  INCLUSION_VECTORS,
  LEAF_INPUTS,
  NODE_HASHES,
  NOTE_TEXT,
  PETER_KEY,
  PETER_SIG,
  ROOT_HASHES,
  SUMDB_CHECKPOINT,
  SUMDB_CHECKPOINT_2,
  SUMDB_CHECKPOINT_TEXT,
  SUMDB_KEY,
} from './transparencyVectors.ts';

const referenceLeaves = LEAF_INPUTS.map(leafHash);

describe('RFC 6962 reference vectors (transparency-dev/merkle testonly)', () => {
  it('hashes the leaves and every complete subtree as NodeHashes() says', () => {
    assert.deepEqual(referenceLeaves, NODE_HASHES[0]);
    for (let level = 1; level < NODE_HASHES.length; level++) {
      const below = NODE_HASHES[level - 1]!;
      const expected = NODE_HASHES[level]!;
      expected.forEach((hash, i) =>
        assert.deepEqual(nodeHash(below[2 * i]!, below[2 * i + 1]!), hash),
      );
    }
  });

  it('computes the root of every prefix, the empty tree included, as RootHashes() says', () => {
    ROOT_HASHES.forEach((root, size) =>
      assert.deepEqual(merkleRoot(referenceLeaves.slice(0, size)), root),
    );
  });
});

describe('RFC 6962 proof vectors (transparency-dev/merkle proof/verify_test.go)', () => {
  for (const { index, size, proof } of INCLUSION_VECTORS) {
    it(`builds and verifies the inclusion proof of leaf ${index} in a tree of ${size}`, () => {
      const leaves = referenceLeaves.slice(0, size);
      assert.deepEqual(inclusionProof(leaves, index), proof);
      const args = {
        leafIndex: index,
        treeSize: size,
        leafHash: leaves[index]!,
        proof,
        root: ROOT_HASHES[size]!,
      };
      assert.equal(verifyInclusion(args), true);
      assert.equal(
        verifyInclusion({ ...args, leafIndex: BigInt(index), treeSize: BigInt(size) }),
        true,
      );
      assert.equal(verifyInclusion({ ...args, leafIndex: index ^ 2 }), false);
      assert.equal(verifyInclusion({ ...args, treeSize: size * 2 }), false);
      assert.equal(verifyInclusion({ ...args, root: ROOT_HASHES[0]! }), false);
      assert.equal(verifyInclusion({ ...args, proof: [...proof, args.root] }), false);
      assert.equal(verifyInclusion({ ...args, proof: [args.root, ...proof] }), false);
      assert.equal(verifyInclusion({ ...args, proof: proof.slice(0, -1) }), false);
    });
  }

  for (const { oldSize, newSize, proof } of CONSISTENCY_VECTORS) {
    it(`builds and verifies the consistency proof from ${oldSize} to ${newSize}`, () => {
      assert.deepEqual(consistencyProof(referenceLeaves.slice(0, newSize), oldSize), proof);
      const args = {
        oldSize,
        newSize,
        oldRoot: ROOT_HASHES[oldSize]!,
        newRoot: ROOT_HASHES[newSize]!,
        proof,
      };
      assert.equal(verifyConsistency(args), true);
      assert.equal(
        verifyConsistency({ ...args, oldSize: BigInt(oldSize), newSize: BigInt(newSize) }),
        true,
      );
      if (oldSize === newSize) return;
      assert.equal(verifyConsistency({ ...args, proof: [] }), false);
      assert.equal(
        verifyConsistency({ ...args, oldRoot: args.newRoot, newRoot: args.oldRoot }),
        false,
      );
      assert.equal(verifyConsistency({ ...args, proof: [...proof, args.newRoot] }), false);
      assert.equal(verifyConsistency({ ...args, proof: [proof[0]!, ...proof] }), false);
      assert.equal(verifyConsistency({ ...args, proof: proof.slice(0, -1) }), false);
    });
  }

  it('answers the cases outside 0 < oldSize < newSize as documented', () => {
    const [empty, one, two] = [ROOT_HASHES[0]!, ROOT_HASHES[1]!, ROOT_HASHES[2]!];
    const check = (
      oldSize: number,
      newSize: number,
      oldRoot: Buffer,
      newRoot: Buffer,
      proof: Buffer[],
    ) => verifyConsistency({ oldSize, newSize, oldRoot, newRoot, proof });
    assert.equal(check(1, 1, one, one, []), true, 'a tree head is consistent with itself');
    assert.equal(check(1, 1, one, two, []), false, 'same size, different roots');
    assert.equal(check(1, 1, one, one, [empty]), false, 'same size, a proof that is not empty');
    assert.equal(check(0, 0, empty, empty, []), false, 'old size 0 is always refused');
    assert.equal(check(0, 2, empty, two, []), false, 'old size 0 is always refused');
    assert.equal(check(2, 1, two, one, []), false, 'the new tree is smaller');
    assert.equal(check(-1, 1, one, one, []), false, 'a negative size');
    assert.equal(check(1.5, 2, one, two, [NODE_HASHES[0]![1]!]), false, 'a fractional size');
    assert.equal(check(1, 2, one, two, [NODE_HASHES[0]![1]!]), true, 'the proof those sizes break');
    assert.throws(() => consistencyProof(referenceLeaves.slice(0, 2), 0), RangeError);
    assert.throws(() => consistencyProof(referenceLeaves.slice(0, 2), 3), RangeError);
    assert.throws(() => inclusionProof(referenceLeaves.slice(0, 2), 2), RangeError);
    assert.equal(
      verifyInclusion({ leafIndex: 0, treeSize: 0, leafHash: empty, proof: [], root: empty }),
      false,
    );
    assert.equal(
      verifyInclusion({ leafIndex: 0, treeSize: 1, leafHash: one, proof: [], root: one }),
      true,
    );
    assert.equal(
      verifyInclusion({
        leafIndex: 0,
        treeSize: 1,
        leafHash: one.subarray(1),
        proof: [],
        root: one.subarray(1),
      }),
      false,
    );
  });
});

/** A copy of the proof with one byte of one element changed. */
const flipped = (proof: readonly Buffer[], element: number): Buffer[] =>
  proof.map((hash, i) => {
    if (i !== element) return hash;
    const copy = Buffer.from(hash);
    copy[0] = copy[0]! ^ 0x10;
    return copy;
  });

const MAX_SIZE = 40;
// One leaf more than the largest tree, for the root of the next size up.
const leaves = Array.from({ length: MAX_SIZE + 1 }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
const roots = Array.from({ length: MAX_SIZE + 2 }, (_, size) => merkleRoot(leaves.slice(0, size)));

/** Asserts that verifyInclusion answers `expected` for these arguments. */
const inclusionIs = (expected: boolean, args: Parameters<typeof verifyInclusion>[0], why: string) =>
  assert.equal(verifyInclusion(args), expected, why);

/** The proof of one leaf verifies; changing a byte, the index, the leaf or the size breaks it. */
function checkInclusion(size: number, index: number): void {
  const tree = leaves.slice(0, size);
  const proof = inclusionProof(tree, index);
  const args = {
    leafIndex: index,
    treeSize: size,
    leafHash: tree[index]!,
    proof,
    root: roots[size]!,
  };
  const where = `leaf ${index} of ${size}`;
  inclusionIs(true, args, where);
  proof.forEach((_, i) =>
    inclusionIs(false, { ...args, proof: flipped(proof, i) }, `${where}, [${i}]`),
  );
  for (let other = 0; other < size; other++) {
    if (other === index) continue;
    inclusionIs(false, { ...args, leafIndex: other }, `${where} as leaf ${other}`);
    inclusionIs(false, { ...args, leafHash: tree[other]! }, `${where} with leaf ${other}`);
  }
  inclusionIs(false, { ...args, leafIndex: size }, `${where} at index ${size}`);
  inclusionIs(
    false,
    { ...args, treeSize: size + 1, root: roots[size + 1]! },
    `${where} in ${size + 1}`,
  );
  if (index < size - 1) {
    inclusionIs(
      false,
      { ...args, treeSize: size - 1, root: roots[size - 1]! },
      `${where} in ${size - 1}`,
    );
  }
}

/** Asserts that verifyConsistency answers `expected` for these arguments. */
const consistencyIs = (
  expected: boolean,
  args: Parameters<typeof verifyConsistency>[0],
  why: string,
) => assert.equal(verifyConsistency(args), expected, why);

/** The proof between two sizes verifies; changing a byte, a size or a root breaks it. */
function checkConsistency(oldSize: number, newSize: number): void {
  const proof = consistencyProof(leaves.slice(0, newSize), oldSize);
  const args = { oldSize, newSize, oldRoot: roots[oldSize]!, newRoot: roots[newSize]!, proof };
  const where = `${oldSize} to ${newSize}`;
  consistencyIs(true, args, where);
  assert.equal(proof.length === 0, oldSize === newSize, `${where}: empty for equal sizes only`);
  proof.forEach((_, i) =>
    consistencyIs(false, { ...args, proof: flipped(proof, i) }, `${where}, [${i}]`),
  );
  for (let other = 1; other <= MAX_SIZE + 1; other++) {
    if (other === oldSize) continue;
    consistencyIs(
      false,
      { ...args, oldSize: other, oldRoot: roots[other]! },
      `${where} as from ${other}`,
    );
  }
  for (let other = 1; other <= MAX_SIZE + 1; other++) {
    if (other === newSize) continue;
    consistencyIs(
      false,
      { ...args, newSize: other, newRoot: roots[other]! },
      `${where} as to ${other}`,
    );
  }
  consistencyIs(false, { ...args, oldSize: 0, oldRoot: roots[0]! }, `${where} as from 0`);
  if (oldSize !== newSize) {
    const swapped = { ...args, oldRoot: args.newRoot, newRoot: args.oldRoot };
    consistencyIs(false, swapped, `${where}, roots swapped`);
    consistencyIs(false, { ...args, proof: [] }, `${where}, empty proof`);
  }
}

describe(`every inclusion proof in trees of 1 to ${MAX_SIZE} leaves`, () => {
  it('verifies, and fails once a byte, the index, the leaf or the size is wrong', () => {
    for (let size = 1; size <= MAX_SIZE; size++) {
      for (let index = 0; index < size; index++) checkInclusion(size, index);
    }
  });
});

describe(`every consistency proof between trees of 1 to ${MAX_SIZE} leaves`, () => {
  it('verifies, and fails once a byte, a size or a root is wrong', () => {
    for (let newSize = 1; newSize <= MAX_SIZE; newSize++) {
      for (let oldSize = 1; oldSize <= newSize; oldSize++) checkConsistency(oldSize, newSize);
    }
  });
});

describe('signed notes (golang.org/x/mod/sumdb/note vectors)', () => {
  it('parses the PeterNeumann verifier key and checks its key hash', () => {
    const key = parseVerifierKey(PETER_KEY);
    assert.equal(key.name, 'PeterNeumann');
    assert.equal(key.keyHash, 0xc74f20a3);
    assert.equal(
      key.publicKey.toString('base64'),
      Buffer.from(PETER_KEY.split('+')[2]!, 'base64').subarray(1).toString('base64'),
    );
    assert.equal(key.publicKey.length, 32);
    assert.equal(parseVerifierKey(ENOCH_KEY).keyHash, 0xaf0cfe78);
  });

  it('refuses every mangling of the verifier key that TestNewVerifier refuses', () => {
    for (let i = 0; i <= PETER_KEY.length; i++) {
      for (let j = i + 1; j <= PETER_KEY.length; j++) {
        if (i === 0 && j === PETER_KEY.length) continue;
        assert.throws(() => parseVerifierKey(PETER_KEY.slice(i, j)), Error, PETER_KEY.slice(i, j));
      }
    }
    for (let i = 0; i < PETER_KEY.length; i++) {
      const mangled =
        PETER_KEY.slice(0, i) +
        String.fromCharCode(PETER_KEY.charCodeAt(i) + 1) +
        PETER_KEY.slice(i + 1);
      assert.throws(() => parseVerifierKey(mangled), Error, mangled);
    }
    // Wrong key length, then unknown algorithm, each with its key hash adjusted.
    assert.throws(() =>
      parseVerifierKey(
        'PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==',
      ),
    );
    assert.throws(() =>
      parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
    );
  });

  it('verifies the signed note of the package documentation', () => {
    assert.deepEqual(verifyNote(`${NOTE_TEXT}\n${PETER_SIG}`, PETER_KEY), { text: NOTE_TEXT });
    assert.equal(verifyNote(`${NOTE_TEXT}\n${PETER_SIG}`, ENOCH_KEY), null, 'no line for that key');
  });

  it('verifies the doubly signed note with either key, ignoring the other signature', () => {
    const note = `${NOTE_TEXT}\n${PETER_SIG}${ENOCH_SIG}`;
    assert.deepEqual(verifyNote(note, PETER_KEY), { text: NOTE_TEXT });
    assert.deepEqual(verifyNote(note, ENOCH_KEY), { text: NOTE_TEXT });
  });

  it('refuses the malformed notes of TestOpen', () => {
    const badNotes = [
      NOTE_TEXT,
      `${NOTE_TEXT}\n`,
      `${NOTE_TEXT}\n${PETER_SIG.slice(0, -1)}`,
      `\u0001${NOTE_TEXT}\n${PETER_SIG}`,
      `\ud800${NOTE_TEXT}\n${PETER_SIG}`,
      `${NOTE_TEXT}\n\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=`,
      `${NOTE_TEXT}\n${PETER_SIG}Unexpected line.\n`,
      `${NOTE_TEXT}\n${PETER_SIG.repeat(101)}`,
    ];
    for (const note of badNotes)
      assert.equal(verifyNote(note, PETER_KEY), null, JSON.stringify(note));
  });

  it('refuses a changed signature, a changed text, and a bad line from the trusted key', () => {
    const badSignature = `${PETER_SIG.slice(0, 60)}ABCD${PETER_SIG.slice(60)}`;
    assert.equal(verifyNote(`${NOTE_TEXT}\n${badSignature}`, PETER_KEY), null);
    assert.equal(
      verifyNote(`${NOTE_TEXT.replace('answer', 'answeR')}\n${PETER_SIG}`, PETER_KEY),
      null,
    );
    assert.equal(verifyNote(`${NOTE_TEXT}\n${PETER_SIG}${badSignature}`, PETER_KEY), null);
    assert.equal(
      verifyNote(`${NOTE_TEXT}\n${PETER_SIG.replace('x08g', 'xxxx')}`, PETER_KEY),
      null,
      'key hash changed',
    );
    const renamed = PETER_SIG.replace('PeterNeumann', 'CarmenSandiego');
    assert.equal(verifyNote(`${NOTE_TEXT}\n${renamed}`, PETER_KEY), null, 'name changed');
  });
});

describe('checkpoints (C2SP tlog-checkpoint)', () => {
  it("verifies and parses sum.golang.org's signed checkpoint", () => {
    const opened = verifyNote(SUMDB_CHECKPOINT, SUMDB_KEY);
    assert.deepEqual(opened, { text: SUMDB_CHECKPOINT_TEXT });
    assert.ok(opened);
    assert.deepEqual(parseCheckpoint(opened.text), {
      origin: 'go.sum database tree',
      size: 30055305n,
      root: Buffer.from('mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=', 'base64'),
      extensions: [],
    });
    assert.equal(verifyNote(SUMDB_CHECKPOINT.replace('30055305', '30055306'), SUMDB_KEY), null);
    const second = verifyNote(SUMDB_CHECKPOINT_2, SUMDB_KEY);
    assert.ok(second);
    assert.equal(parseCheckpoint(second.text)?.size, 31700353n);
  });

  it('parses the example of the specification, and extension lines', () => {
    const root = Buffer.from('CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=', 'base64');
    const origin = 'example.com/behind-the-sofa';
    assert.deepEqual(parseCheckpoint(C2SP_CHECKPOINT_TEXT), {
      origin,
      size: 20852163n,
      root,
      extensions: [],
    });
    assert.deepEqual(parseCheckpoint(`${C2SP_CHECKPOINT_TEXT}one\ntwo\n`), {
      origin,
      size: 20852163n,
      root,
      extensions: ['one', 'two'],
    });
    assert.equal(parseCheckpoint(`${origin}\n0\n${root.toString('base64')}\n`)?.size, 0n);
    assert.equal(
      parseCheckpoint(`${origin}\n18446744073709551615\n${root.toString('base64')}\n`)?.size,
      2n ** 64n - 1n,
    );
  });

  it('refuses malformed checkpoint text', () => {
    const root = 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=';
    const bad = [
      C2SP_CHECKPOINT_TEXT.slice(0, -1), // no final newline
      `example.com/log\n020852163\n${root}\n`, // leading zero
      `example.com/log\n-1\n${root}\n`,
      `example.com/log\n+1\n${root}\n`,
      `example.com/log\n 1\n${root}\n`,
      `example.com/log\n18446744073709551616\n${root}\n`, // 2^64
      `\n1\n${root}\n`, // empty origin
      `example.com/log\n1\n`, // no root
      `example.com/log\n1\n${Buffer.alloc(31).toString('base64')}\n`,
      `example.com/log\n1\n${root.slice(0, -1)}\n`, // unpadded base64
      `example.com/log\n1\n${root}\n\n`, // empty extension line
      `example.com/log\n1\n${root}\next\n\n`,
      `${C2SP_CHECKPOINT_TEXT}\n\u2014 example.com/log AAAAAA==\n`, // a whole note
    ];
    for (const text of bad) assert.equal(parseCheckpoint(text), null, JSON.stringify(text));
  });
});

/** A verifier key for a freshly made Ed25519 key, by the formula of sumdb/note's keyHash. */
function makeVerifierKey(name: string): { vkey: string; privateKey: KeyObject; keyHash: Buffer } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const typed = Buffer.concat([Buffer.of(0x01), raw]);
  const keyHash = createHash('sha256').update(`${name}\n`).update(typed).digest().subarray(0, 4);
  return {
    vkey: `${name}+${keyHash.toString('hex')}+${typed.toString('base64')}`,
    privateKey,
    keyHash,
  };
}

const signatureLine = (name: string, keyHash: Buffer, signature: Buffer): string =>
  `\u2014 ${name} ${Buffer.concat([keyHash, signature]).toString('base64')}\n`;

describe('signed checkpoints made here with node:crypto', () => {
  it('verifies a signature among foreign and unknown ones, and refuses a forged one', () => {
    const log = makeVerifierKey('example.com/log');
    const other = makeVerifierKey('example.com/witness');
    const text = `example.com/log\n8\n${ROOT_HASHES[8]!.toString('base64')}\nextension\n`;
    const mine = signatureLine(
      'example.com/log',
      log.keyHash,
      sign(null, Buffer.from(text), log.privateKey),
    );
    const theirs = signatureLine(
      'example.com/witness',
      other.keyHash,
      sign(null, Buffer.from(text), other.privateKey),
    );
    const sameNameOtherId = signatureLine(
      'example.com/log',
      Buffer.from('00000000', 'hex'),
      Buffer.alloc(64),
    );
    const note = `${text}\n${theirs}${sameNameOtherId}${mine}`;
    assert.deepEqual(verifyNote(note, log.vkey), { text });
    assert.deepEqual(verifyNote(note, other.vkey), { text });
    assert.deepEqual(parseCheckpoint(text)?.extensions, ['extension']);
    const forged = signatureLine(
      'example.com/log',
      log.keyHash,
      sign(null, Buffer.from(text), other.privateKey),
    );
    assert.equal(verifyNote(`${text}\n${forged}`, log.vkey), null);
    assert.equal(
      verifyNote(`${text}\n${mine}${forged}`, log.vkey),
      null,
      'every matching line must verify',
    );
    const short = signatureLine('example.com/log', log.keyHash, Buffer.alloc(63));
    assert.equal(verifyNote(`${text}\n${short}`, log.vkey), null);
  });
});
