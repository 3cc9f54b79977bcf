import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { consistencyProof, rootAt, treeSize } from './auditTree.ts';
import { listCheckpoints, type Checkpointer, type CheckpointView } from './checkpoints.ts';
import type { StreamReader } from './history.ts';
import { publicKeyPem, verifierKeyOf, type NoteSigner } from './signedNote.ts';
import { memberStatement, type StatementOutcome } from './statement.ts';

export type PublicKeyView = { origin: string; verifier_key: string; public_key_pem: string };

export type ConsistencyOutcome =
  | {
      ok: true;
      proof: { from: number; to: number; from_root: string; to_root: string; proof: string[] };
    }
  | { ok: false; field: 'from' | 'to'; message: string };

/** What the API's audit routes answer from: the key, the checkpoints, proofs, statements. */
export const auditProofs = (deps: {
  db: Kysely<Database>;
  signer: NoteSigner;
  checkpointer: Checkpointer;
  reader: StreamReader;
  /** How long a statement waits for the tree to hold the member's newest events. */
  waitMs?: number;
}) => ({
  publicKey: (): PublicKeyView => ({
    origin: deps.signer.name,
    verifier_key: verifierKeyOf(deps.signer.name, deps.signer.publicKey),
    public_key_pem: publicKeyPem(deps.signer.publicKey),
  }),

  checkpoints: (options: { limit: number; beforeSize?: number }): Promise<CheckpointView[]> =>
    listCheckpoints(deps.db, options),

  /** The consistency proof between two sizes of the tree as it stands (from <= to <= size). */
  consistency: async (from: number, to: number): Promise<ConsistencyOutcome> => {
    const size = await treeSize(deps.db);
    if (to > size) return { ok: false, field: 'to', message: `to: the tree holds ${size} events` };
    if (from > to) return { ok: false, field: 'from', message: 'from: must not exceed to' };
    const [proof, fromRoot, toRoot] = await Promise.all([
      consistencyProof(deps.db, from, to),
      rootAt(deps.db, from),
      rootAt(deps.db, to),
    ]);
    return {
      ok: true,
      proof: {
        from,
        to,
        from_root: fromRoot.toString('hex'),
        to_root: toRoot.toString('hex'),
        proof: proof.map((hash) => hash.toString('hex')),
      },
    };
  },

  statement: (args: {
    programId: string;
    memberId: string;
    asOf: Date;
  }): Promise<StatementOutcome> =>
    memberStatement({ db: deps.db, reader: deps.reader, checkpointer: deps.checkpointer }, args),
});

export type AuditProofs = ReturnType<typeof auditProofs>;
