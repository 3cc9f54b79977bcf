import { createHash } from 'node:crypto';
import { verifyConsistency, verifyInclusion, leafHash } from './merkle.ts';
import { openCheckpoint, type Checkpoint, type Verifier } from './signedNote.ts';

/**
 * Offline checks, with no database and no server: a member statement against a trusted key, and
 * a consistency proof between two signed checkpoints. Each returns every problem it finds, in the
 * statement's order, so a report names the first bad event.
 */

export type CheckReport = { ok: boolean; problems: string[]; events: number };

type StatementEvent = {
  event_id?: unknown;
  stream?: unknown;
  revision?: unknown;
  type?: unknown;
  canonical?: unknown;
  previous_hash?: unknown;
  hash?: unknown;
  leaf_index?: unknown;
  leaf_hash?: unknown;
  inclusion_proof?: unknown;
};

const isHex32 = (value: unknown): value is string =>
  typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);

const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex');

/** What is wrong with one event's bytes, chain link and leaf (not yet its proof). */
const eventProblems = (event: StatementEvent, expectedPrevious: string): string[] => {
  const name = `event ${String(event.event_id)} (${String(event.stream)} @ ${String(event.revision)})`;
  if (typeof event.canonical !== 'string' || !isHex32(event.hash))
    return [`${name}: canonical or hash is missing`];
  const problems: string[] = [];
  let parsed: { id?: unknown; stream?: unknown; type?: unknown } = {};
  try {
    parsed = JSON.parse(event.canonical) as typeof parsed;
  } catch {
    problems.push(`${name}: canonical is not JSON`);
  }
  if (parsed.id !== event.event_id || parsed.stream !== event.stream || parsed.type !== event.type)
    problems.push(`${name}: canonical names another event`);
  if (event.previous_hash !== expectedPrevious)
    problems.push(`${name}: previous_hash is not the hash of the event before it in its stream`);
  if (sha256Hex(`${String(event.previous_hash)}${event.canonical}`) !== event.hash)
    problems.push(`${name}: hash does not cover previous_hash and canonical`);
  if (leafHash(Buffer.from(event.hash, 'hex')).toString('hex') !== event.leaf_hash)
    problems.push(`${name}: leaf_hash is not SHA-256(0x00 || hash)`);
  return problems;
};

const proofOf = (value: unknown): Buffer[] | null =>
  Array.isArray(value) && value.every(isHex32)
    ? value.map((hash: string) => Buffer.from(hash, 'hex'))
    : null;

/** Each stream's events run 0, 1, 2… in the statement's order; the chain links them. */
const checkEvents = (
  events: StatementEvent[],
  checkpoint: Checkpoint,
  problems: string[],
): Map<string, { data?: { newBalance?: unknown } }> => {
  const lastHash = new Map<string, { revision: number; hash: string }>();
  const parsedById = new Map<string, { data?: { newBalance?: unknown } }>();
  for (const event of events) {
    const stream = String(event.stream);
    const last = lastHash.get(stream);
    const revision = Number(event.revision);
    if (revision !== (last ? last.revision + 1 : 0))
      problems.push(`event ${String(event.event_id)}: ${stream} skips to revision ${revision}`);
    problems.push(...eventProblems(event, last?.hash ?? ''));
    const proof = proofOf(event.inclusion_proof);
    const index = Number(event.leaf_index);
    const proven =
      proof !== null &&
      isHex32(event.leaf_hash) &&
      verifyInclusion({
        index,
        size: checkpoint.size,
        leaf: Buffer.from(event.leaf_hash, 'hex'),
        proof,
        root: checkpoint.root,
      });
    if (!proven)
      problems.push(
        `event ${String(event.event_id)}: its inclusion proof does not lead from leaf ${index} to the checkpoint's root`,
      );
    lastHash.set(stream, { revision, hash: String(event.hash) });
    try {
      parsedById.set(String(event.event_id), JSON.parse(String(event.canonical)) as never);
    } catch {
      // eventProblems reported it.
    }
  }
  return parsedById;
};

/** The ledger and balance say what the proven events say. */
const checkLedger = (
  statement: { balance?: unknown; ledger?: unknown; events: StatementEvent[] },
  parsedById: Map<string, { data?: { newBalance?: unknown } }>,
  problems: string[],
): void => {
  const ledger = Array.isArray(statement.ledger)
    ? (statement.ledger as { event_id?: unknown; balance_after?: unknown }[])
    : [];
  for (const line of ledger) {
    const event = parsedById.get(String(line.event_id));
    if (event?.data?.newBalance !== line.balance_after)
      problems.push(`ledger line ${String(line.event_id)}: not backed by a proven event`);
  }
  const balances = statement.events
    .filter((e) => String(e.stream).startsWith('points-'))
    .map((e) => parsedById.get(String(e.event_id))?.data?.newBalance)
    .filter((value) => typeof value === 'number');
  const proven = balances.length === 0 ? 0 : balances[balances.length - 1];
  if (statement.balance !== proven)
    problems.push(`balance ${String(statement.balance)} is not the proven ${String(proven)}`);
};

/** Checks a statement (the JSON document of GET …/statement) against the trusted key. */
export const verifyStatement = (document: unknown, verifier: Verifier): CheckReport => {
  const statement = document as {
    checkpoint?: { note?: unknown; size?: unknown; root_hash?: unknown };
    events?: unknown;
    balance?: unknown;
    ledger?: unknown;
  };
  const note = statement.checkpoint?.note;
  if (typeof note !== 'string' || !Array.isArray(statement.events))
    return {
      ok: false,
      problems: ['not a statement: checkpoint.note or events missing'],
      events: 0,
    };
  const opened = openCheckpoint(note, verifier);
  if (!opened.ok) return { ok: false, problems: [`checkpoint: ${opened.reason}`], events: 0 };
  const { checkpoint } = opened;
  const problems: string[] = [];
  if (
    statement.checkpoint?.size !== checkpoint.size ||
    statement.checkpoint.root_hash !== checkpoint.root.toString('hex')
  )
    problems.push('checkpoint: size or root_hash differ from the signed note');
  const events = statement.events as StatementEvent[];
  const parsed = checkEvents(events, checkpoint, problems);
  checkLedger({ ...statement, events }, parsed, problems);
  return { ok: problems.length === 0, problems, events: events.length };
};

/** Two signed checkpoints and the proof that the older is a prefix of the newer. */
export const checkConsistency = (args: {
  oldNote: string;
  newNote: string;
  proof: readonly Buffer[];
  verifier: Verifier;
}): { ok: true; from: Checkpoint; to: Checkpoint } | { ok: false; problem: string } => {
  const from = openCheckpoint(args.oldNote, args.verifier);
  if (!from.ok) return { ok: false, problem: `old checkpoint: ${from.reason}` };
  const to = openCheckpoint(args.newNote, args.verifier);
  if (!to.ok) return { ok: false, problem: `new checkpoint: ${to.reason}` };
  if (from.checkpoint.size > to.checkpoint.size)
    return { ok: false, problem: 'the old checkpoint is larger than the new one' };
  const ok = verifyConsistency({
    oldSize: from.checkpoint.size,
    newSize: to.checkpoint.size,
    oldRoot: from.checkpoint.root,
    newRoot: to.checkpoint.root,
    proof: args.proof,
  });
  return ok
    ? { ok: true, from: from.checkpoint, to: to.checkpoint }
    : {
        ok: false,
        problem: `the log of ${to.checkpoint.size} events does not extend the one of ${from.checkpoint.size}: the consistency proof fails (events were changed, removed or reordered)`,
      };
};
