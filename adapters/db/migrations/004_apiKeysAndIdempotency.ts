import { sql, type Kysely, type Migration } from 'kysely';

const statements = [
  `create table api_keys (
    key_id text primary key,
    program_id text,
    secret_sha256 text not null,
    label text,
    created_at timestamptz not null default now(),
    revoked_at timestamptz
  )`,
  `create table idempotency_keys (
    scope text not null,
    key text not null,
    request_sha256 text not null,
    status text not null,
    response_status integer,
    response_body jsonb,
    created_at timestamptz not null default now(),
    primary key (scope, key)
  )`,
  `create index idempotency_keys_age on idempotency_keys (created_at)`,
];

/** API keys (stored as sha256 of their random secret) and idempotency records. */
export const apiKeysMigration: Migration = {
  async up(db: Kysely<unknown>) {
    for (const statement of statements) await sql.raw(statement).execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql.raw('drop table idempotency_keys').execute(db);
    await sql.raw('drop table api_keys').execute(db);
  },
};
