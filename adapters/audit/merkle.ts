import { createHash } from 'node:crypto';

/**
 * The Merkle tree of RFC 9162 (section 2.1, the hashing of RFC 6962) over the event log, kept as
 * the hashes of its complete subtrees: the node at `level` and `index` is MTH of leaves
 * `[index * 2^level, (index + 1) * 2^level)`. Every hash a proof or a root needs is either such a
 * node or folds from a few of them, so proofs cost O(log n) node reads at any size. Pure: the
 * store (auditTree.ts) reads and writes the nodes.
 */

export type NodeRef = { level: number; index: number };

/** A run of leaves `[start, end)`: any hash of a proof covers one. */
export type LeafRange = { start: number; end: number };

export const emptyRoot = (): Buffer => createHash('sha256').digest();

/** RFC 9162 2.1.1: the hash of a leaf, SHA-256(0x00 || data). */
export const leafHash = (data: Uint8Array): Buffer =>
  createHash('sha256').update(Buffer.of(0)).update(data).digest();

/** RFC 9162 2.1.1: the hash of an interior node, SHA-256(0x01 || left || right). */
export const nodeHash = (left: Uint8Array, right: Uint8Array): Buffer =>
  createHash('sha256').update(Buffer.of(1)).update(left).update(right).digest();

/** The largest power of two smaller than n (n >= 2): where MTH splits a range of n leaves. */
export const splitPoint = (n: number): number => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};

/**
 * The complete subtrees that make up `[start, end)`, left to right and largest first. Every range
 * MTH's recursion visits starts on a multiple of the largest power of two not above its length, so
 * its binary decomposition lines up with stored nodes.
 */
export const rangeNodes = ({ start, end }: LeafRange): NodeRef[] => {
  const nodes: NodeRef[] = [];
  let at = start;
  let remaining = end - start;
  for (let level = 52; level >= 0; level--) {
    const width = 2 ** level;
    if (remaining >= width) {
      if (at % width !== 0) throw new RangeError(`range [${start}, ${end}) is not aligned`);
      nodes.push({ level, index: at / width });
      at += width;
      remaining -= width;
    }
  }
  return nodes;
};

/** MTH of a range from its complete subtrees' hashes (rangeNodes' order): folded right to left. */
export const foldRange = (hashes: readonly Buffer[]): Buffer => {
  if (hashes.length === 0) return emptyRoot();
  let acc = hashes[hashes.length - 1] as Buffer;
  for (let i = hashes.length - 2; i >= 0; i--) acc = nodeHash(hashes[i] as Buffer, acc);
  return acc;
};

/**
 * RFC 9162 2.1.3.1, PATH(m, D[n]): the ranges whose hashes make the inclusion proof of leaf
 * `index` in a tree of `size` leaves, in proof order (nearest the leaf first).
 */
export const inclusionRanges = (index: number, size: number): LeafRange[] => {
  if (index < 0 || index >= size) throw new RangeError(`leaf ${index} is not in a tree of ${size}`);
  let start = 0;
  let end = size;
  let m = index;
  const levels: LeafRange[] = [];
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (m < k) {
      levels.push({ start: start + k, end });
      end = start + k;
    } else {
      levels.push({ start, end: start + k });
      start += k;
      m -= k;
    }
  }
  return levels.reverse();
};

/**
 * RFC 9162 2.1.4.1, PROOF(m, D[n]) = SUBPROOF(m, D[n], true): the ranges whose hashes prove that
 * the tree of `oldSize` leaves is a prefix of the tree of `newSize`, in proof order.
 */
export const consistencyRanges = (oldSize: number, newSize: number): LeafRange[] => {
  if (oldSize < 0 || oldSize > newSize) throw new RangeError('from must not exceed to');
  if (oldSize === 0 || oldSize === newSize) return [];
  const levels: LeafRange[] = [];
  let start = 0;
  let end = newSize;
  let m = oldSize;
  let complete = true;
  while (m !== end - start) {
    const k = splitPoint(end - start);
    if (m <= k) {
      levels.push({ start: start + k, end });
      end = start + k;
    } else {
      levels.push({ start, end: start + k });
      start += k;
      m -= k;
      complete = false;
    }
  }
  // SUBPROOF(m, D[m], false) = {MTH(D[m])}: the old tree's own subtree, unless it is the whole.
  if (!complete) levels.push({ start, end });
  return levels.reverse();
};

/**
 * One step up the path of RFC 9162's verification algorithms (2.1.3.2 and 2.1.4.2, steps b and
 * c): whether the proof's hash goes on the left (LSB(fn) set, or fn = sn, the right edge), and
 * fn and sn after the shifts (past the left edges to the next set bit when it went on the left
 * of an even fn, then once more).
 */
const pathStep = (fn: number, sn: number): { left: boolean; next: [number, number] } => {
  const half = (n: number) => Math.floor(n / 2);
  const left = fn % 2 === 1 || fn === sn;
  let f = fn;
  let s = sn;
  if (left && f % 2 === 0) {
    while (f % 2 === 0 && f !== 0) {
      f = half(f);
      s = half(s);
    }
  }
  return { left, next: [half(f), half(s)] };
};

/** RFC 9162 2.1.3.2: does `proof` lead from leaf `index`'s hash to `root` in a tree of `size`? */
export const verifyInclusion = (args: {
  index: number;
  size: number;
  leaf: Uint8Array;
  proof: readonly Uint8Array[];
  root: Uint8Array;
}): boolean => {
  const { index, size, proof } = args;
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size)
    return false;
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(args.leaf);
  for (const p of proof) {
    if (sn === 0) return false;
    const step = pathStep(fn, sn);
    r = step.left ? nodeHash(p, r) : nodeHash(r, p);
    [fn, sn] = step.next;
  }
  return sn === 0 && r.equals(args.root);
};

/** Exact for every safe integer (Math.log2 rounds above 2^48). */
const isPowerOfTwo = (n: number): boolean => {
  let m = n;
  while (m > 1 && m % 2 === 0) m /= 2;
  return m === 1;
};

/** RFC 9162 2.1.4.2: does `proof` show the tree of `oldSize` is a prefix of the one of `newSize`? */
export const verifyConsistency = (args: {
  oldSize: number;
  newSize: number;
  oldRoot: Uint8Array;
  newRoot: Uint8Array;
  proof: readonly Uint8Array[];
}): boolean => {
  const { oldSize, newSize } = args;
  if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize)) return false;
  if (oldSize < 0 || oldSize > newSize) return false;
  if (oldSize === newSize)
    return args.proof.length === 0 && Buffer.from(args.oldRoot).equals(args.newRoot);
  // The empty tree is a prefix of every tree; there is nothing to prove.
  if (oldSize === 0) return args.proof.length === 0;
  if (args.proof.length === 0) return false;
  const proof = [...args.proof];
  // A power of two: the old root is itself the first hash of the path.
  if (isPowerOfTwo(oldSize)) proof.unshift(Buffer.from(args.oldRoot));
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Buffer = Buffer.from(proof[0] as Uint8Array);
  let sr: Buffer = Buffer.from(proof[0] as Uint8Array);
  for (const c of proof.slice(1)) {
    if (sn === 0) return false;
    const step = pathStep(fn, sn);
    if (step.left) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
    } else {
      sr = nodeHash(sr, c);
    }
    [fn, sn] = step.next;
  }
  return sn === 0 && fr.equals(args.oldRoot) && sr.equals(args.newRoot);
};

/**
 * The right edge of a tree being built, one complete subtree per set bit of its size, largest
 * first: appending a leaf completes at most log n nodes, and the root folds from the edge.
 */
export type Frontier = { size: number; nodes: { ref: NodeRef; hash: Buffer }[] };

/** The nodes a frontier of `size` leaves holds (rangeNodes of [0, size)). */
export const frontierRefs = (size: number): NodeRef[] => rangeNodes({ start: 0, end: size });

/**
 * Appends leaf hashes to the frontier (in place) and returns every complete node they finish,
 * leaves included, for the store to keep.
 */
export const appendLeaves = (
  frontier: Frontier,
  leaves: readonly Buffer[],
): { ref: NodeRef; hash: Buffer }[] => {
  const made: { ref: NodeRef; hash: Buffer }[] = [];
  for (const leaf of leaves) {
    let node = { ref: { level: 0, index: frontier.size }, hash: leaf };
    made.push(node);
    for (;;) {
      const top = frontier.nodes[frontier.nodes.length - 1];
      if (!top || top.ref.level !== node.ref.level) break;
      frontier.nodes.pop();
      node = {
        ref: { level: node.ref.level + 1, index: top.ref.index / 2 },
        hash: nodeHash(top.hash, node.hash),
      };
      made.push(node);
    }
    frontier.nodes.push(node);
    frontier.size++;
  }
  return made;
};

/** The root of the tree the frontier describes. */
export const frontierRoot = (frontier: Frontier): Buffer =>
  foldRange(frontier.nodes.map((node) => node.hash));
