import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.ts';
import { noteSigner, type NoteSigner } from './signedNote.ts';

/** Where development keeps its generated checkpoint key (0600, in the 0700 data dir). */
export const devKeyFile = 'audit-signing.key';

/** The origin line and key name when neither AUDIT_ORIGIN nor a signer key names one. */
export const defaultOrigin = (config: Pick<Config, 'publicUrl'>): string => {
  const host = config.publicUrl === null ? 'localhost' : new URL(config.publicUrl).host;
  return `${host}/incentable`;
};

/**
 * The installation's checkpoint signer: AUDIT_SIGNING_KEY, required in production; elsewhere a key
 * generated into DATA_DIR on first use, so development checkpoints keep verifying across restarts.
 * `onGenerated` hears of a key made just now (the runtime logs it).
 */
export const loadAuditSigner = (
  config: Pick<Config, 'audit' | 'nodeEnv' | 'dataDir' | 'publicUrl'>,
  onGenerated?: (path: string) => void,
): NoteSigner => {
  const origin = config.audit.origin ?? defaultOrigin(config);
  if (config.audit.signingKey !== null) return noteSigner(config.audit.signingKey, origin);
  if (config.nodeEnv === 'production') {
    throw new Error(
      'AUDIT_SIGNING_KEY is required when NODE_ENV=production (an Ed25519 seed: openssl rand -base64 32)',
    );
  }
  const path = join(config.dataDir, devKeyFile);
  if (existsSync(path)) return noteSigner(readFileSync(path, 'utf8').trim(), origin);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const seed = randomBytes(32).toString('base64');
  try {
    writeFileSync(path, seed, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    // Another process of this installation made it first: use that one.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      return noteSigner(readFileSync(path, 'utf8').trim(), origin);
    throw error;
  }
  onGenerated?.(path);
  return noteSigner(seed, origin);
};
