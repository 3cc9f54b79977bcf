import { sql, type Kysely, type Migration } from 'kysely';

/**
 * When a key was last used, for the key list (`GET …/api-keys`, the dashboard, `keys list`).
 * Written at most once a minute per key (adapters/db/apiKeyVerifier.ts), never once per request. The
 * index serves the per-program list, and the root keys' (program_id null) for the CLI.
 */
export const apiKeyUseMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`alter table api_keys add column last_used_at timestamptz`.execute(db);
    await sql`create index api_keys_program on api_keys (program_id, created_at)`.execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop index api_keys_program`.execute(db);
    await sql`alter table api_keys drop column last_used_at`.execute(db);
  },
};
