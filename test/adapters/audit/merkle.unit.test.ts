// Checks the product's Merkle tree (adapters/audit/merkle.ts) against the independent reference
// written from RFC 9162 (test/support/rfc9162.ts) and against published vectors: the frontier's
// roots and stored nodes, the proofs its leaf ranges make, and its verifiers' verdicts. The
// published vectors are in test/support/transparencyVectors.ts, each under its source.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  appendLeaves,
  consistencyRanges,
  emptyRoot,
  foldRange,
  frontierRefs,
  frontierRoot,
  inclusionRanges,
  leafHash,
  nodeHash,
  rangeNodes,
  verifyConsistency,
  verifyInclusion,
  type Frontier,
  type LeafRange,
  type NodeRef,
} from '../../../adapters/audit/merkle.ts';
import * as rfc from '../../support/rfc9162.ts';
import {
  CONSISTENCY_VECTORS,
  INCLUSION_VECTORS,
  LEAF_INPUTS,
  NODE_HASHES,
  ROOT_HASHES,
} from '../../support/transparencyVectors.ts';

const referenceLeaves = LEAF_INPUTS.map((input) => rfc.leafHash(input));

const MAX_SIZE = 1000;
const SIZES = [...Array.from({ length: 64 }, (_, i) => i + 1), 100, 255, 256, 257, MAX_SIZE];
const leaves = Array.from({ length: MAX_SIZE + 1 }, (_, i) => rfc.leafHash(Buffer.from(`e${i}`)));
/** The independent MTH of every prefix, the empty tree and one leaf past MAX_SIZE included. */
const roots = Array.from({ length: MAX_SIZE + 2 }, (_, n) => rfc.merkleRoot(leaves.slice(0, n)));
/** The independent MTH of a leaf range. */
const mth = ({ start, end }: LeafRange): Buffer => rfc.merkleRoot(leaves.slice(start, end));
const nodeRange = ({ level, index }: NodeRef): LeafRange => ({
  start: index * 2 ** level,
  end: (index + 1) * 2 ** level,
});

/**
 * Pseudo-random chunk lengths from 0 to 17 (empty chunks included) that add up to `size`, from a
 * seeded LCG so that a failing chunking replays from its seed.
 */
const chunking = (size: number, seed: number): number[] => {
  let state = seed;
  const chunks: number[] = [];
  for (let left = size; left > 0;) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const length = Math.min(left, Math.floor((state / 2 ** 31) * 18));
    chunks.push(length);
    left -= length;
  }
  return chunks;
};

/**
 * Builds a frontier over the first `size` leaves in `chunks`, checking the root after every chunk
 * (every prefix when the chunks are ones), and returns every node appendLeaves reported.
 */
function buildFrontier(size: number, chunks: readonly number[], where: string) {
  const frontier: Frontier = { size: 0, nodes: [] };
  const made: { ref: NodeRef; hash: Buffer }[] = [];
  assert.deepEqual(frontierRoot(frontier), roots[0], `${where}: the empty frontier`);
  for (const length of chunks) {
    made.push(...appendLeaves(frontier, leaves.slice(frontier.size, frontier.size + length)));
    assert.deepEqual(frontierRoot(frontier), roots[frontier.size], `${where} at ${frontier.size}`);
    assert.deepEqual(
      frontier.nodes.map((node) => node.ref),
      frontierRefs(frontier.size),
      `${where}: the edge at ${frontier.size}`,
    );
  }
  assert.equal(frontier.size, size, where);
  return { frontier, made };
}

/** Asserts that `made` is every complete subtree of `size` leaves, each once, hashed as MTH. */
function checkMadeNodes(
  made: readonly { ref: NodeRef; hash: Buffer }[],
  size: number,
  where: string,
) {
  const seen = new Map<string, Buffer>();
  for (const { ref, hash } of made) {
    const key = `${ref.level}/${ref.index}`;
    assert.ok(!seen.has(key), `${where}: node ${key} reported twice`);
    seen.set(key, hash);
  }
  let expected = 0;
  for (let level = 0; 2 ** level <= size; level++) {
    for (let index = 0; (index + 1) * 2 ** level <= size; index++) {
      expected++;
      const hash = seen.get(`${level}/${index}`);
      assert.ok(hash, `${where}: node ${level}/${index} was not reported`);
      assert.deepEqual(hash, mth(nodeRange({ level, index })), `${where}: node ${level}/${index}`);
    }
  }
  assert.equal(seen.size, expected, `${where}: only complete subtrees are reported`);
}

describe('hashing (RFC 9162 2.1.1)', () => {
  it('hashes leaves and nodes as the reference and the transparency-dev vectors do', () => {
    LEAF_INPUTS.forEach((input, i) => {
      assert.deepEqual(leafHash(input), NODE_HASHES[0]![i]);
      assert.deepEqual(leafHash(input), rfc.leafHash(input));
    });
    for (let level = 1; level < NODE_HASHES.length; level++) {
      NODE_HASHES[level]!.forEach((hash, i) => {
        const [left, right] = [
          NODE_HASHES[level - 1]![2 * i]!,
          NODE_HASHES[level - 1]![2 * i + 1]!,
        ];
        assert.deepEqual(nodeHash(left, right), hash);
        assert.deepEqual(nodeHash(left, right), rfc.nodeHash(left, right));
      });
    }
    assert.deepEqual(emptyRoot(), ROOT_HASHES[0]);
    assert.deepEqual(foldRange([]), ROOT_HASHES[0]);
  });

  it('builds the vector tree: every prefix root and every stored node', () => {
    const frontier: Frontier = { size: 0, nodes: [] };
    const made = referenceLeaves.flatMap((leaf) => {
      const nodes = appendLeaves(frontier, [leaf]);
      assert.deepEqual(frontierRoot(frontier), ROOT_HASHES[frontier.size]);
      return nodes;
    });
    assert.equal(made.length, 8 + 4 + 2 + 1);
    for (const { ref, hash } of made) assert.deepEqual(hash, NODE_HASHES[ref.level]![ref.index]);
  });
});

describe('the frontier, over trees of 1 to 64, 100, 255, 256, 257 and 1000 leaves', () => {
  it('gives the reference root at every prefix, appending one leaf at a time', () => {
    for (const size of SIZES) {
      const { made } = buildFrontier(size, Array<number>(size).fill(1), `one by one to ${size}`);
      checkMadeNodes(made, size, `one by one to ${size}`);
    }
  });

  it('gives the same roots and nodes appending in random chunks', () => {
    for (const size of SIZES) {
      for (const seed of [1, 2, 3]) {
        const where = `chunks of seed ${seed} to ${size}`;
        const { frontier, made } = buildFrontier(size, chunking(size, seed * 7919 + size), where);
        checkMadeNodes(made, size, where);
        frontier.nodes.forEach(({ ref, hash }) => assert.deepEqual(hash, mth(nodeRange(ref))));
      }
      const whole = buildFrontier(size, [size], `all ${size} at once`);
      checkMadeNodes(whole.made, size, `all ${size} at once`);
    }
  });

  it('continues a frontier rebuilt from stored nodes (frontierRefs)', () => {
    for (const size of [1, 5, 8, 13, 64, 100]) {
      const nodes = frontierRefs(size).map((ref) => ({ ref, hash: mth(nodeRange(ref)) }));
      const frontier: Frontier = { size, nodes };
      assert.deepEqual(frontierRoot(frontier), roots[size]);
      appendLeaves(frontier, leaves.slice(size, size + 37));
      assert.deepEqual(frontierRoot(frontier), roots[size + 37], `${size} + 37`);
    }
  });
});

/** Asserts rangeNodes splits `range` into left-to-right complete subtrees that fold to its MTH. */
function checkRangeNodes(range: LeafRange, where: string): void {
  const nodes = rangeNodes(range);
  let at = range.start;
  nodes.forEach((node, i) => {
    const covered = nodeRange(node);
    assert.equal(covered.start, at, `${where}: node ${i} follows on`);
    if (i > 0) assert.ok(node.level < nodes[i - 1]!.level, `${where}: largest first`);
    at = covered.end;
  });
  assert.equal(at, range.end, `${where}: the nodes cover the range`);
  assert.deepEqual(foldRange(nodes.map((node) => mth(nodeRange(node)))), mth(range), where);
}

const proofOf = (ranges: readonly LeafRange[]): Buffer[] => ranges.map(mth);

describe('proofs from leaf ranges (RFC 9162 2.1.3.1 and 2.1.4.1)', () => {
  it('are the transparency-dev vector proofs', () => {
    for (const { index, size, proof } of INCLUSION_VECTORS) {
      const ranges = inclusionRanges(index, size);
      const hashes = ranges.map((r) => rfc.merkleRoot(referenceLeaves.slice(r.start, r.end)));
      assert.deepEqual(hashes, proof, `leaf ${index} of ${size}`);
    }
    for (const { oldSize, newSize, proof } of CONSISTENCY_VECTORS) {
      const ranges = consistencyRanges(oldSize, newSize);
      const hashes = ranges.map((r) => rfc.merkleRoot(referenceLeaves.slice(r.start, r.end)));
      assert.deepEqual(hashes, proof, `${oldSize} to ${newSize}`);
    }
  });

  it('give the reference inclusion proof of every leaf of trees up to 64, byte for byte', () => {
    for (let n = 1; n <= 64; n++) {
      for (let i = 0; i < n; i++) {
        const ranges = inclusionRanges(i, n);
        assert.deepEqual(
          proofOf(ranges),
          rfc.inclusionProof(leaves.slice(0, n), i),
          `${i} of ${n}`,
        );
        ranges.forEach((range, k) => checkRangeNodes(range, `${i} of ${n}, range ${k}`));
      }
    }
  });

  it('give the reference consistency proof between all sizes up to 64, byte for byte', () => {
    for (let n = 1; n <= 64; n++) {
      for (let m = 1; m <= n; m++) {
        const ranges = consistencyRanges(m, n);
        const where = `${m} to ${n}`;
        assert.deepEqual(proofOf(ranges), rfc.consistencyProof(leaves.slice(0, n), m), where);
        ranges.forEach((range, k) => checkRangeNodes(range, `${where}, range ${k}`));
      }
      assert.deepEqual(consistencyRanges(0, n), []);
    }
  });

  it('give the reference proofs in the larger trees too', () => {
    for (const n of [100, 255, 256, 257, MAX_SIZE]) {
      const tree = leaves.slice(0, n);
      for (const i of [0, 1, n >> 1, n - 2, n - 1]) {
        assert.deepEqual(proofOf(inclusionRanges(i, n)), rfc.inclusionProof(tree, i), `${i}/${n}`);
      }
      for (const m of [1, 2, 3, 64, 99, n - 1, n]) {
        assert.deepEqual(
          proofOf(consistencyRanges(m, n)),
          rfc.consistencyProof(tree, m),
          `${m}/${n}`,
        );
      }
      checkRangeNodes({ start: 0, end: n }, `[0, ${n})`);
    }
  });
});

/** A copy of the proof with one byte of one element changed. */
const flipped = (proof: readonly Buffer[], element: number): Buffer[] =>
  proof.map((hash, i) =>
    i === element ? Buffer.from(hash.map((b, j) => (j === 7 ? b ^ 1 : b))) : hash,
  );

type InclusionCase = Parameters<typeof verifyInclusion>[0];
type ConsistencyCase = Parameters<typeof verifyConsistency>[0];
/** What a mangling is, and the arguments it changes. */
type Mangling<T> = [string, Partial<T>];

/** The reference's verdict on the product's arguments. */
const referenceInclusion = (args: InclusionCase): boolean =>
  rfc.verifyInclusion({ ...args, leafIndex: args.index, treeSize: args.size, leafHash: args.leaf });

/**
 * Asserts that the product and the reference agree on the proof and on each mangling of it, that
 * the proof verifies and that no mangling does.
 */
function agree<T>(verdicts: { product: (a: T) => boolean; reference: (a: T) => boolean }) {
  return (args: T, manglings: Mangling<T>[], where: string): void => {
    assert.equal(verdicts.reference(args), true, where);
    assert.equal(verdicts.product(args), true, where);
    for (const [what, change] of manglings) {
      const mangled = { ...args, ...change };
      const expected = verdicts.reference(mangled);
      assert.equal(verdicts.product(mangled), expected, `${where}, ${what}: product != reference`);
      assert.equal(expected, false, `${where}, ${what}`);
    }
  };
}
const inclusionAgrees = agree({ product: verifyInclusion, reference: referenceInclusion });
const consistencyAgrees = agree({ product: verifyConsistency, reference: rfc.verifyConsistency });

/** Every inclusion proof of a leaf, then its manglings. */
function checkInclusionVerdicts(n: number, i: number): void {
  const proof = rfc.inclusionProof(leaves.slice(0, n), i);
  const manglings: Mangling<InclusionCase>[] = [
    ...proof.map((_, k): Mangling<InclusionCase> => [`[${k}]`, { proof: flipped(proof, k) }]),
    ...[i - 1, i + 1, i ^ 1, n, -1]
      .filter((other) => other !== i)
      .map((other): Mangling<InclusionCase> => [`as ${other}`, { index: other }]),
    ['another leaf', { leaf: leaves[(i + 1) % (n + 1)]! }],
    [`in ${n + 1}`, { size: n + 1, root: roots[n + 1]! }],
    ['wrong root', { root: roots[n - 1]! }],
    ['extended', { proof: [...proof, roots[n]!] }],
    ['prefixed', { proof: [leaves[i]!, ...proof] }],
  ];
  if (i < n - 1) manglings.push([`in ${n - 1}`, { size: n - 1, root: roots[n - 1]! }]);
  if (proof.length > 0) {
    manglings.push(['truncated', { proof: proof.slice(0, -1) }]);
    manglings.push(['first dropped', { proof: proof.slice(1) }]);
  }
  const args = { index: i, size: n, leaf: leaves[i]!, proof, root: roots[n]! };
  inclusionAgrees(args, manglings, `leaf ${i} of ${n}`);
}

/** Every consistency proof between two sizes, then its manglings. */
function checkConsistencyVerdicts(m: number, n: number): void {
  const proof = rfc.consistencyProof(leaves.slice(0, n), m);
  const manglings: Mangling<ConsistencyCase>[] = [
    ...proof.map((_, k): Mangling<ConsistencyCase> => [`[${k}]`, { proof: flipped(proof, k) }]),
    ...[m - 1, m + 1, 2 * m]
      .filter((o) => o >= 1 && o !== m && o <= n + 1)
      .map((o): Mangling<ConsistencyCase> => [`from ${o}`, { oldSize: o, oldRoot: roots[o]! }]),
    ...[n - 1, n + 1]
      .filter((o) => o >= 1 && o !== n)
      .map((o): Mangling<ConsistencyCase> => [`to ${o}`, { newSize: o, newRoot: roots[o]! }]),
    ['wrong old root', { oldRoot: roots[n + 1]! }],
    ['wrong new root', { newRoot: roots[n + 1]! }],
    ['extended', { proof: [...proof, roots[n]!] }],
  ];
  if (m !== n) {
    manglings.push(['swapped', { oldRoot: roots[n]!, newRoot: roots[m]! }]);
    manglings.push(['empty proof', { proof: [] }]);
    manglings.push(['truncated', { proof: proof.slice(0, -1) }]);
    manglings.push(['first doubled', { proof: [proof[0]!, ...proof] }]);
  }
  const args = { oldSize: m, newSize: n, oldRoot: roots[m]!, newRoot: roots[n]!, proof };
  consistencyAgrees(args, manglings, `${m} to ${n}`);
}

describe('verifyInclusion and verifyConsistency (RFC 9162 2.1.3.2 and 2.1.4.2)', () => {
  it('accept the transparency-dev vector proofs and refuse them mangled', () => {
    for (const { index, size, proof } of INCLUSION_VECTORS) {
      const args = { index, size, leaf: referenceLeaves[index]!, proof, root: ROOT_HASHES[size]! };
      assert.equal(verifyInclusion(args), true, `leaf ${index} of ${size}`);
      assert.equal(verifyInclusion({ ...args, index: index ^ 2 }), false);
      assert.equal(verifyInclusion({ ...args, size: size * 2 }), false);
      assert.equal(verifyInclusion({ ...args, root: ROOT_HASHES[0]! }), false);
      assert.equal(verifyInclusion({ ...args, proof: [...proof, args.root] }), false);
      assert.equal(verifyInclusion({ ...args, proof: proof.slice(0, -1) }), false);
    }
    for (const { oldSize, newSize, proof } of CONSISTENCY_VECTORS) {
      const args = {
        oldSize,
        newSize,
        oldRoot: ROOT_HASHES[oldSize]!,
        newRoot: ROOT_HASHES[newSize]!,
        proof,
      };
      assert.equal(verifyConsistency(args), true, `${oldSize} to ${newSize}`);
      if (oldSize === newSize) continue;
      assert.equal(verifyConsistency({ ...args, proof: [] }), false);
      assert.equal(
        verifyConsistency({ ...args, oldRoot: args.newRoot, newRoot: args.oldRoot }),
        false,
      );
      assert.equal(verifyConsistency({ ...args, proof: [...proof, args.newRoot] }), false);
      assert.equal(verifyConsistency({ ...args, proof: proof.slice(0, -1) }), false);
    }
  });

  it('answer as the reference on every inclusion proof up to 64 leaves, and its manglings', () => {
    for (let n = 1; n <= 64; n++) for (let i = 0; i < n; i++) checkInclusionVerdicts(n, i);
  });

  it('answer as the reference on every consistency proof up to 64 leaves, and its manglings', () => {
    for (let n = 1; n <= 64; n++) for (let m = 1; m <= n; m++) checkConsistencyVerdicts(m, n);
  });

  it('treat the empty tree as a prefix of every tree, with the empty proof only', () => {
    // The product's documented choice (the reference refuses old size 0; not compared here).
    const args = { oldSize: 0, newSize: 5, oldRoot: roots[0]!, newRoot: roots[5]!, proof: [] };
    assert.equal(verifyConsistency(args), true);
    assert.equal(verifyConsistency({ ...args, proof: [roots[5]!] }), false);
  });
});

// A tree whose leaves are all one hash: MTH of a range depends on its length only, so the
// reference's definition (RFC 9162 2.1.1) gives the root and every proof hash of trees far too
// big to build, in O(log^2 n).
const sameLeaf = rfc.leafHash(Buffer.from('same'));
const uniformRoots = new Map<number, Buffer>();
const uniformRoot = (n: number): Buffer => {
  if (n === 1) return sameLeaf;
  const cached = uniformRoots.get(n);
  if (cached) return cached;
  let k = 1;
  while (k * 2 < n) k *= 2;
  const root = rfc.nodeHash(uniformRoot(k), uniformRoot(n - k));
  uniformRoots.set(n, root);
  return root;
};
const uniformProof = (ranges: readonly LeafRange[]): Buffer[] =>
  ranges.map(({ start, end }) => uniformRoot(end - start));

describe('sizes near 2^53', () => {
  it('verifies inclusion proofs the reference accepts', () => {
    const cases = [
      [2 ** 53 - 2, 2 ** 53 - 1],
      [0, 2 ** 53 - 1],
      [2 ** 49, 2 ** 49 + 1],
      [12345, 2 ** 50 + 7],
    ];
    for (const [index = 0, size = 0] of cases) {
      const proof = uniformProof(inclusionRanges(index, size));
      const args = { index, size, leaf: sameLeaf, proof, root: uniformRoot(size) };
      assert.equal(referenceInclusion(args), true, `the reference, leaf ${index} of ${size}`);
      assert.equal(verifyInclusion(args), true, `leaf ${index} of ${size}`);
    }
  });

  it('verifies consistency proofs the reference accepts, from sizes near a power of two', () => {
    // The product decides "oldSize is a power of two" by Number.isInteger(Math.log2(oldSize)),
    // which Math.log2's rounding makes true for 2^49 + 1, 2^52 + 3, 2^53 - 1 and more sizes.
    const cases = [
      [2 ** 50, 2 ** 50 + 3],
      [2 ** 40 + 1, 2 ** 40 + 2],
      [2 ** 49 + 1, 2 ** 49 + 2],
      [2 ** 52 + 3, 2 ** 53 - 1],
      [2 ** 48 + 1, 2 ** 48 + 9],
    ];
    const refused: string[] = [];
    for (const [oldSize = 0, newSize = 0] of cases) {
      const proof = uniformProof(consistencyRanges(oldSize, newSize));
      const [oldRoot, newRoot] = [uniformRoot(oldSize), uniformRoot(newSize)];
      const args = { oldSize, newSize, oldRoot, newRoot, proof };
      assert.equal(rfc.verifyConsistency(args), true, `the reference, ${oldSize} to ${newSize}`);
      if (!verifyConsistency(args)) refused.push(`${oldSize} to ${newSize}`);
    }
    assert.deepEqual(refused, [], 'valid proofs the product refuses');
  });
});

describe('edge cases', () => {
  it('refuses leaf ranges outside the tree', () => {
    for (const size of [0, 1, 5]) {
      for (const index of [size, size + 1, -1])
        assert.throws(() => inclusionRanges(index, size), RangeError, `${index} of ${size}`);
    }
    assert.throws(() => consistencyRanges(5, 4), RangeError);
    assert.throws(() => consistencyRanges(1, 0), RangeError);
    assert.throws(() => consistencyRanges(-1, 4), RangeError);
    assert.deepEqual(consistencyRanges(4, 4), []);
    assert.deepEqual(consistencyRanges(0, 0), []);
    assert.throws(() => rangeNodes({ start: 1, end: 3 }), RangeError, 'not aligned');
    assert.deepEqual(rangeNodes({ start: 3, end: 3 }), []);
    assert.deepEqual(frontierRefs(0), []);
  });

  it('answers false, without throwing, for sizes and indices that are not uint64 integers', () => {
    const proof = rfc.inclusionProof(leaves.slice(0, 4), 1);
    const good = { index: 1, size: 4, leaf: leaves[1]!, proof, root: roots[4]! };
    assert.equal(verifyInclusion(good), true);
    const badNumbers = [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 64, -0.5];
    for (const bad of badNumbers) {
      assert.equal(verifyInclusion({ ...good, index: bad }), false, `index ${bad}`);
      assert.equal(verifyInclusion({ ...good, size: bad }), false, `size ${bad}`);
    }
    assert.equal(verifyInclusion({ ...good, index: 4 }), false, 'index = size');
    assert.equal(
      verifyInclusion({ ...good, index: 0, size: 0, proof: [], root: roots[0]! }),
      false,
    );
    const cProof = rfc.consistencyProof(leaves.slice(0, 7), 3);
    const goodC = { oldSize: 3, newSize: 7, oldRoot: roots[3]!, newRoot: roots[7]!, proof: cProof };
    assert.equal(verifyConsistency(goodC), true);
    for (const bad of badNumbers) {
      assert.equal(verifyConsistency({ ...goodC, oldSize: bad }), false, `old size ${bad}`);
      assert.equal(verifyConsistency({ ...goodC, newSize: bad }), false, `new size ${bad}`);
    }
    assert.equal(verifyConsistency({ ...goodC, oldSize: 7, newSize: 3 }), false, 'old > new');
    assert.equal(verifyConsistency({ ...goodC, oldSize: 8 }), false, 'old > new');
  });
});
