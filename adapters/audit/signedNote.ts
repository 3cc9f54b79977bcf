import {
  createHash,
  createPrivateKey,
  createPublicKey,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';

/**
 * C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, and the tree heads they carry
 * (c2sp.org/tlog-checkpoint): the text Go's golang.org/x/mod/sumdb/note and the transparency-log
 * tooling read. A note is its text (ending in a newline), a blank line, then one line per
 * signature: an em dash, a space, the key name, a space, base64 of the 4-byte key id and the
 * 64-byte signature of the text.
 */

/** The Ed25519 signature type byte of signed notes. */
const ed25519Type = 0x01;
/** PKCS#8 and SPKI DER prefixes of a raw Ed25519 key (RFC 8410). */
const pkcs8Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');
const spkiPrefix = Buffer.from('302a300506032b6570032100', 'hex');
const signatureDash = '\u2014 ';

export type NoteSigner = {
  /** The key name, which is also the checkpoints' origin line. */
  name: string;
  publicKey: Buffer;
  keyId: number;
  sign: (text: string) => string;
};

/** The key id: the first four bytes, big-endian, of SHA-256(name || 0x0A || 0x01 || key). */
export const keyIdOf = (name: string, publicKey: Uint8Array): number =>
  createHash('sha256')
    .update(name)
    .update(Buffer.of(0x0a, ed25519Type))
    .update(publicKey)
    .digest()
    .readUInt32BE(0);

const hex8 = (id: number): string => id.toString(16).padStart(8, '0');

/** `<name>+<key id, 8 hex digits>+<base64 of 0x01 || 32-byte key>`, as note.NewVerifier reads. */
export const verifierKeyOf = (name: string, publicKey: Uint8Array): string =>
  `${name}+${hex8(keyIdOf(name, publicKey))}+${Buffer.concat([Buffer.of(ed25519Type), publicKey]).toString('base64')}`;

/** `PRIVATE+KEY+<name>+<key id>+<base64 of 0x01 || 32-byte seed>`, as note.NewSigner reads. */
export const signerKeyOf = (name: string, seed: Uint8Array): string => {
  const publicKey = publicKeyOfSeed(seed);
  return `PRIVATE+KEY+${name}+${hex8(keyIdOf(name, publicKey))}+${Buffer.concat([Buffer.of(ed25519Type), seed]).toString('base64')}`;
};

const privateKeyOf = (seed: Uint8Array): KeyObject =>
  createPrivateKey({ key: Buffer.concat([pkcs8Prefix, seed]), format: 'der', type: 'pkcs8' });

const publicKeyObject = (publicKey: Uint8Array): KeyObject =>
  createPublicKey({ key: Buffer.concat([spkiPrefix, publicKey]), format: 'der', type: 'spki' });

const publicKeyOfSeed = (seed: Uint8Array): Buffer =>
  (createPublicKey(privateKeyOf(seed)).export({ format: 'der', type: 'spki' }) as Buffer).subarray(
    spkiPrefix.length,
  );

export const publicKeyPem = (publicKey: Uint8Array): string =>
  publicKeyObject(publicKey).export({ format: 'pem', type: 'spki' }).toString();

/** `text` cut at its first `count - 1` plus signs; the last part keeps any further ones. */
const cutPlus = (text: string, count: number): string[] => {
  const parts: string[] = [];
  let rest = text;
  while (parts.length < count - 1) {
    const at = rest.indexOf('+');
    if (at === -1) break;
    parts.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  parts.push(rest);
  return parts;
};

export class KeyFormatError extends Error {
  override readonly name = 'KeyFormatError';
}

/**
 * A signer from AUDIT_SIGNING_KEY: base64 of a 32-byte seed (named `defaultName`), or a signer key
 * `PRIVATE+KEY+<name>+<id>+<key>` (named by it; its id must match).
 */
export const noteSigner = (key: string, defaultName: string): NoteSigner => {
  // The base64 key may itself hold '+': cut at the first separators only, as Go's note does.
  const parts = cutPlus(key, 5);
  let name = defaultName;
  let seed: Buffer;
  if (parts.length === 5 && parts[0] === 'PRIVATE' && parts[1] === 'KEY') {
    const [, , keyName = '', id = '', encoded = ''] = parts;
    const raw = Buffer.from(encoded, 'base64');
    if (raw.length !== 33 || raw[0] !== ed25519Type)
      throw new KeyFormatError('the signer key is not an Ed25519 key (type 0x01, 32 bytes)');
    name = keyName;
    seed = raw.subarray(1);
    if (hex8(keyIdOf(name, publicKeyOfSeed(seed))) !== id)
      throw new KeyFormatError("the signer key's id does not match its name and key");
  } else {
    seed = Buffer.from(key, 'base64');
    if (seed.length !== 32) throw new KeyFormatError('an Ed25519 seed is 32 bytes in base64');
  }
  if (!/^[^\s+]+$/.test(name)) throw new KeyFormatError('a key name has no spaces or plus signs');
  const privateKey = privateKeyOf(seed);
  const publicKey = publicKeyOfSeed(seed);
  const keyId = keyIdOf(name, publicKey);
  const idBytes = Buffer.alloc(4);
  idBytes.writeUInt32BE(keyId);
  return {
    name,
    publicKey,
    keyId,
    sign: (text) => {
      if (!text.endsWith('\n')) throw new Error('a note text ends in a newline');
      const signature = sign(null, Buffer.from(text), privateKey);
      return `${text}\n${signatureDash}${name} ${Buffer.concat([idBytes, signature]).toString('base64')}\n`;
    },
  };
};

export type Verifier = { name: string; keyId: number; publicKey: Buffer };

/** A verifier key (`<name>+<id>+<base64 key>`), or a PEM public key named `name`. */
export const parseVerifier = (text: string, name?: string): Verifier | null => {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) {
    if (name === undefined) return null;
    try {
      const der = createPublicKey(trimmed).export({ format: 'der', type: 'spki' });
      if (!der.subarray(0, spkiPrefix.length).equals(spkiPrefix)) return null;
      const publicKey = der.subarray(spkiPrefix.length);
      return { name, keyId: keyIdOf(name, publicKey), publicKey };
    } catch {
      return null;
    }
  }
  const parts = cutPlus(trimmed, 3);
  if (parts.length !== 3) return null;
  const [keyName = '', id = '', encoded = ''] = parts;
  const raw = Buffer.from(encoded, 'base64');
  if (
    !/^[0-9a-f]{8}$/.test(id) ||
    raw.length !== 33 ||
    raw[0] !== ed25519Type ||
    raw.toString('base64') !== encoded
  )
    return null;
  const publicKey = raw.subarray(1);
  const keyId = keyIdOf(keyName, publicKey);
  return hex8(keyId) === id && keyName.length > 0 ? { name: keyName, keyId, publicKey } : null;
};

export type OpenedNote = { ok: true; text: string } | { ok: false; reason: string };

/**
 * The text of a note when the verifier's signature on it verifies. Signatures by other keys are
 * ignored (signed-note: unknown keys MUST be ignored); a note without a good one is refused.
 */
export const openNote = (note: string, verifier: Verifier): OpenedNote => {
  // No control characters but newlines (signed-note's format rule); lines end in \n.
  if ([...note].some((c) => c < ' ' && c !== '\n'))
    return { ok: false, reason: 'the note has control characters' };
  const split = note.lastIndexOf('\n\n');
  if (split === -1 || !note.endsWith('\n'))
    return { ok: false, reason: 'the note has no blank line before its signatures' };
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  let found = false;
  for (const line of lines) {
    if (!line.startsWith(signatureDash))
      return { ok: false, reason: 'a signature line does not start with an em dash' };
    const [name, encoded, extra] = line.slice(signatureDash.length).split(' ');
    const raw = Buffer.from(encoded ?? '', 'base64');
    // Strict, as note.Open: a valid key name and canonical base64 of at least a key id and a byte.
    if (
      extra !== undefined ||
      name === undefined ||
      !/^[^\s+]+$/u.test(name) ||
      raw.length < 5 ||
      raw.toString('base64') !== encoded
    )
      return { ok: false, reason: 'a signature line is malformed' };
    if (name !== verifier.name || raw.readUInt32BE(0) !== verifier.keyId) continue;
    found = true;
    const good =
      raw.length === 68 &&
      verify(null, Buffer.from(text), publicKeyObject(verifier.publicKey), raw.subarray(4));
    if (!good) return { ok: false, reason: `the signature of ${verifier.name} does not verify` };
  }
  return found ? { ok: true, text } : { ok: false, reason: `no signature by ${verifier.name}` };
};

export type Checkpoint = { origin: string; size: number; root: Buffer };

/** A tlog-checkpoint's text: origin, size in decimal, base64 root hash, each ending in \n. */
export const checkpointText = ({ origin, size, root }: Checkpoint): string =>
  `${origin}\n${size}\n${root.toString('base64')}\n`;

/** A checkpoint's text (extension lines are allowed and ignored), or null when malformed. */
export const parseCheckpointText = (text: string): Checkpoint | null => {
  const [origin, size, root] = text.split('\n');
  if (!origin || size === undefined || root === undefined) return null;
  if (!/^(0|[1-9]\d{0,15})$/.test(size) || !Number.isSafeInteger(Number(size))) return null;
  const hash = Buffer.from(root, 'base64');
  if (hash.length !== 32 || hash.toString('base64') !== root) return null;
  return { origin, size: Number(size), root: hash };
};

/** A signed checkpoint note opened with `verifier`: the checkpoint, or why it was refused. */
export const openCheckpoint = (
  note: string,
  verifier: Verifier,
): { ok: true; checkpoint: Checkpoint } | { ok: false; reason: string } => {
  const opened = openNote(note, verifier);
  if (!opened.ok) return opened;
  const checkpoint = parseCheckpointText(opened.text);
  if (!checkpoint) return { ok: false, reason: 'the note is not a checkpoint' };
  if (checkpoint.origin !== verifier.name)
    return { ok: false, reason: `the checkpoint's origin is ${checkpoint.origin}, not the key's` };
  return { ok: true, checkpoint };
};
