import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import type { Verifier } from '../audit/signedNote.ts';
import type { CheckpointBreak } from '../audit/verifyCheckpoints.ts';
import type { ChainBreak } from '../audit/verify.ts';

/**
 * The verifiable-history commands (docs/audit.md): the installation's public key, a checkpoint on
 * demand, a consistency proof between two saved checkpoints, a member statement checked offline,
 * and `audit verify --checkpoints`. Modules load in the actions, as in audit.ts.
 */

const json = (value: unknown): string => JSON.stringify(value, null, 2);

/** Fails the command with a message on stderr and exit code 2 (a usage problem, not a break). */
const usage = (message: string): never => {
  console.error(`error: ${message}`);
  process.exit(2);
};

/**
 * The key to trust: `--public-key` (a verifier key, or a file holding one or a PEM, a PEM taking
 * `name` from the checkpoint it checks), else this installation's configured key.
 */
const trustedVerifier = async (option: string | undefined, name: string): Promise<Verifier> => {
  const { parseVerifier } = await import('../audit/signedNote.ts');
  if (option === undefined) {
    const { loadAuditSigner } = await import('../audit/signingKey.ts');
    const signer = loadAuditSigner(loadConfig());
    return { name: signer.name, keyId: signer.keyId, publicKey: signer.publicKey };
  }
  const text = existsSync(option) ? readFileSync(option, 'utf8') : option;
  return (
    parseVerifier(text, name) ??
    usage('--public-key is neither a verifier key (<name>+<id>+<key>) nor a PEM public key')
  );
};

const readText = (path: string, what: string): string => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return usage(`cannot read ${what} ${path}`);
  }
};

/** A note's first line: a checkpoint's origin, which names the key that signs it. */
const originOf = (note: string): string => note.slice(0, Math.max(0, note.indexOf('\n')));

export const registerAuditProofCommands = (audit: Command): void => {
  audit
    .command('public-key')
    .description('Print the key that signs checkpoints, as a signed-note verifier key')
    .option('--json', 'print origin, verifier_key and public_key_pem as JSON')
    .action(async (options: { json?: boolean }) => {
      const [{ loadAuditSigner }, { publicKeyPem, verifierKeyOf }] = await Promise.all([
        import('../audit/signingKey.ts'),
        import('../audit/signedNote.ts'),
      ]);
      const signer = loadAuditSigner(loadConfig());
      const view = {
        origin: signer.name,
        verifier_key: verifierKeyOf(signer.name, signer.publicKey),
        public_key_pem: publicKeyPem(signer.publicKey),
      };
      console.log(options.json ? json(view) : view.verifier_key);
    });

  audit
    .command('checkpoint')
    .description('Sign a checkpoint of the tree now (none when nothing changed); print its note')
    .action(runCheckpoint);

  audit
    .command('prove-consistency')
    .description('Prove the log only grew between two saved checkpoints; exit 1 if it did not')
    .argument('<old>', 'the older checkpoint (a signed note file)')
    .argument('<new>', 'the newer checkpoint')
    .option(
      '--public-key <key>',
      'verifier key, or a file with one or a PEM (default: this installation)',
    )
    .option('--json', 'print the proof and the verdict as JSON')
    .action(runProveConsistency);

  audit
    .command('verify-statement')
    .description(
      "Check a member statement offline: signature, every event's hash and proof, the balance",
    )
    .argument('<statement>', 'the JSON of GET …/members/{id}/statement')
    .requiredOption('--public-key <key>', 'verifier key, or a file with one or a PEM')
    .option('--json', 'print the report as JSON')
    .action(runVerifyStatement);
};

const runCheckpoint = async (): Promise<void> => {
  const [{ openDatabase }, { loadAuditSigner }, { createCheckpointer }] = await Promise.all([
    import('../db/database.ts'),
    import('../audit/signingKey.ts'),
    import('../audit/checkpoints.ts'),
  ]);
  const config = loadConfig();
  const handle = await openDatabase(config.database);
  try {
    const checkpointer = createCheckpointer({
      db: handle.db,
      signer: loadAuditSigner(config),
      dir: config.audit.checkpointDir,
    });
    const made = await checkpointer.make();
    if (made) process.stdout.write(made.note);
    else console.error('nothing changed since the newest checkpoint');
  } finally {
    await handle.close();
  }
};

const runProveConsistency = async (
  oldPath: string,
  newPath: string,
  options: { publicKey?: string; json?: boolean },
): Promise<void> => {
  const oldNote = readText(oldPath, 'checkpoint');
  const newNote = readText(newPath, 'checkpoint');
  const verifier = await trustedVerifier(options.publicKey, originOf(oldNote));
  const [
    { openDatabase },
    { consistencyProof, treeSize },
    { checkConsistency },
    { openCheckpoint },
  ] = await Promise.all([
    import('../db/database.ts'),
    import('../audit/auditTree.ts'),
    import('../audit/proofCheck.ts'),
    import('../audit/signedNote.ts'),
  ]);
  const from = openCheckpoint(oldNote, verifier);
  const to = openCheckpoint(newNote, verifier);
  if (!from.ok) return usage(`${oldPath}: ${from.reason}`);
  if (!to.ok) return usage(`${newPath}: ${to.reason}`);
  if (from.checkpoint.size > to.checkpoint.size)
    return usage(`${oldPath} is larger than ${newPath}`);
  const handle = await openDatabase(loadConfig().database);
  try {
    const size = await treeSize(handle.db);
    const verdict =
      to.checkpoint.size > size
        ? {
            ok: false as const,
            problem: `the log holds ${size} events, ${newPath} signed ${to.checkpoint.size}: events were removed`,
          }
        : await (async () => {
            const proof = await consistencyProof(
              handle.db,
              from.checkpoint.size,
              to.checkpoint.size,
            );
            return { ...checkConsistency({ oldNote, newNote, proof, verifier }), proof };
          })();
    const proof = 'proof' in verdict ? verdict.proof.map((h) => h.toString('hex')) : [];
    if (options.json) {
      console.log(
        json({
          ok: verdict.ok,
          from: from.checkpoint.size,
          to: to.checkpoint.size,
          proof,
          ...(!verdict.ok && { problem: verdict.problem }),
        }),
      );
    } else if (verdict.ok) {
      for (const hash of proof) console.log(hash);
      console.log(
        `consistent: the log of ${to.checkpoint.size} events extends the one of ${from.checkpoint.size}`,
      );
    } else console.log(`INCONSISTENT ${verdict.problem}`);
    if (!verdict.ok) process.exitCode = 1;
  } finally {
    await handle.close();
  }
};

const runVerifyStatement = async (
  path: string,
  options: { publicKey: string; json?: boolean },
): Promise<void> => {
  let document: { checkpoint?: { note?: unknown } };
  try {
    document = JSON.parse(readText(path, 'statement')) as typeof document;
  } catch {
    return usage(`${path} is not JSON`);
  }
  const note = typeof document.checkpoint?.note === 'string' ? document.checkpoint.note : '';
  const verifier = await trustedVerifier(options.publicKey, originOf(note));
  const { verifyStatement } = await import('../audit/proofCheck.ts');
  const report = verifyStatement(document, verifier);
  if (options.json) console.log(json(report));
  else {
    for (const problem of report.problems) console.log(`BROKEN ${problem}`);
    console.log(
      report.ok
        ? `statement verified: ${report.events} events proven against the signed checkpoint`
        : `${report.problems.length} problem(s)`,
    );
  }
  if (!report.ok) process.exitCode = 1;
};

/**
 * `audit verify --checkpoints <path>`: the hash chains (as plain verify) and the tree against
 * every checkpoint saved there, on two connections at once.
 */
export const runVerifyCheckpoints = async (options: {
  checkpoints: string;
  publicKey?: string;
  program?: string;
  json?: boolean;
  describeBreak: (b: ChainBreak) => string;
}): Promise<void> => {
  if (options.program !== undefined)
    return usage('--checkpoints checks the whole log: it does not take --program');
  const [{ openDatabase }, { verifyChains }, { readCheckpointSources, verifyCheckpoints }] =
    await Promise.all([
      import('../db/database.ts'),
      import('../audit/verify.ts'),
      import('../audit/verifyCheckpoints.ts'),
    ]);
  const saved = await readCheckpointSources(options.checkpoints).catch(() =>
    usage(`cannot read checkpoints at ${options.checkpoints}`),
  );
  if (saved.sources.length === 0) return usage(`no checkpoint files in ${options.checkpoints}`);
  const verifier = await trustedVerifier(options.publicKey, originOf(saved.sources[0]?.note ?? ''));
  const handle = await openDatabase(loadConfig().database);
  try {
    const chainBreaks: ChainBreak[] = [];
    const treeBreaks: CheckpointBreak[] = [];
    const [chains, tree] = await Promise.all([
      verifyChains(handle.db, { onBreak: (b) => void chainBreaks.push(b) }),
      verifyCheckpoints(handle.db, { ...saved, verifier, onBreak: (b) => void treeBreaks.push(b) }),
    ]);
    const ok = chains.ok && tree.ok;
    if (options.json)
      console.log(
        json({
          ok,
          chains: { ...chains, breaks: chainBreaks },
          checkpoints: { ...tree, breaks: treeBreaks },
        }),
      );
    else {
      for (const b of chainBreaks) console.log(`BROKEN ${options.describeBreak(b)}`);
      for (const b of treeBreaks) console.log(`BROKEN ${b.message}`);
      console.log(
        `${chains.events} events' chains checked (${chains.eventsPerSecond} events/s); ${tree.leaves} leaves against ${tree.checkpoints} checkpoint(s) (${tree.leavesPerSecond} leaves/s): ${ok ? 'no breaks' : `${chainBreaks.length + treeBreaks.length} break(s)`}`,
      );
    }
    if (!ok) process.exitCode = 1;
  } finally {
    await handle.close();
  }
};
