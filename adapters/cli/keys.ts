import { InvalidArgumentError, type Command } from 'commander';
import { isId } from '../../domain/ids.ts';
import { loadConfig } from '../config.ts';
import type { DatabaseHandle } from '../db/database.ts';
import type { ApiKeyView } from '../db/apiKeyStore.ts';

/** Opens the configured database for one command and closes it after (see audit.ts). */
const withDatabase = async <T>(work: (handle: DatabaseHandle) => Promise<T>): Promise<T> => {
  const { openDatabase } = await import('../db/database.ts');
  const handle = await openDatabase(loadConfig().database);
  try {
    return await work(handle);
  } finally {
    await handle.close();
  }
};

const keyIdArgument = (value: string): string => {
  if (!isId('apiKey', value)) throw new InvalidArgumentError('not a key id (key_…)');
  return value;
};

const when = (at: Date | null): string => (at ? at.toISOString().slice(0, 19) + 'Z' : '-');

const line = (key: ApiKeyView): string =>
  [
    key.id,
    key.revokedAt ? `revoked ${when(key.revokedAt)}` : 'active',
    `created ${when(key.createdAt)}`,
    `last used ${when(key.lastUsedAt)}`,
    key.label ?? '(no label)',
  ].join('  ');

/**
 * `keys list|create|revoke`: the root keys (api_keys rows with no program). Program keys are
 * managed through the API and the dashboard. ADMIN_API_KEY, when configured, is a root key of
 * its own that lives in the configuration, not here: it is not listed and cannot be revoked.
 */
export const registerKeyCommands = (program: Command): void => {
  const keys = program
    .command('keys')
    .description('Root API keys (program keys: the API or the dashboard)');

  keys
    .command('list')
    .description('List the root keys, revoked ones included (never their secrets)')
    .option('--json', 'print as JSON lines')
    .action(async (options: { json?: boolean }) => {
      const { listApiKeys } = await import('../db/apiKeyStore.ts');
      await withDatabase(async ({ db }) => {
        const rows = await listApiKeys(db, null);
        for (const key of rows)
          console.log(
            options.json
              ? JSON.stringify({
                  id: key.id,
                  label: key.label,
                  created_at: key.createdAt,
                  last_used_at: key.lastUsedAt,
                  revoked_at: key.revokedAt,
                })
              : line(key),
          );
        if (!options.json) console.log(`${rows.length} root key(s)`);
      });
    });

  keys
    .command('create')
    .description('Create a root key; it is printed once, only its hash is stored')
    .requiredOption('--label <label>', 'what the key is for (shown in lists)', (value: string) => {
      const label = value.trim();
      if (label.length === 0 || label.length > 200)
        throw new InvalidArgumentError('1 to 200 characters');
      return label;
    })
    .action(async (options: { label: string }) => {
      const { createApiKey } = await import('../db/apiKeyStore.ts');
      await withDatabase(async ({ db }) => {
        const key = await createApiKey(db, { programId: null, label: options.label });
        console.log(
          `Created root key ${key.id} (${options.label}). It is shown only this once:\n\n  ${key.key}\n\nStore it now; only its hash is kept.`,
        );
      });
    });

  keys
    .command('revoke')
    .description(
      'Revoke a root key (never the last active one); running services refuse it within 5 s',
    )
    .argument('<key_id>', 'the key to revoke', keyIdArgument)
    .action(async (keyId: string) => {
      const { revokeRootKey } = await import('../db/apiKeyStore.ts');
      await withDatabase(async ({ db }) => {
        const result = await revokeRootKey(db, keyId);
        switch (result.outcome) {
          case 'revoked':
            console.log(`Revoked root key ${keyId}.`);
            return;
          case 'already_revoked':
            console.log(`Root key ${keyId} was already revoked at ${when(result.revokedAt)}.`);
            return;
          case 'not_found':
            console.error(`There is no key ${keyId}.`);
            break;
          case 'program_key':
            console.error(
              `${keyId} is a program key of ${result.programId}: revoke it with DELETE /v1/programs/${result.programId}/api-keys/${keyId} or on the dashboard's API keys page.`,
            );
            break;
          case 'last_root_key':
            console.error(
              `${keyId} is the last active root key: revoking it would leave no root key in the database. Create another first (npx incentable keys create --label …), then revoke this one.`,
            );
            break;
        }
        process.exitCode = 1;
      });
    });
};
