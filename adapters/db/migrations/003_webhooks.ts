import { sql, type Kysely, type Migration } from 'kysely';

const statements = [
  `create table webhook_endpoints (
    seq bigint generated always as identity,
    endpoint_id text primary key,
    program_id text not null,
    url text not null,
    description text not null default '',
    events text[] not null,
    enabled boolean not null default true,
    secret_encrypted text not null,
    previous_secret_encrypted text,
    previous_secret_expires_at timestamptz,
    disabled_reason text,
    created_at timestamptz not null,
    updated_at timestamptz not null
  )`,
  `create index webhook_endpoints_program on webhook_endpoints (program_id, seq)`,
  // body: the exact bytes signed and sent, serialised once (never re-serialised from jsonb).
  `create table webhook_envelopes (
    seq bigint generated always as identity,
    envelope_id text primary key,
    program_id text not null,
    type text not null,
    body text not null,
    source_event_id uuid unique,
    is_test boolean not null default false,
    created_at timestamptz not null
  )`,
  `create index webhook_envelopes_program on webhook_envelopes (program_id, created_at, seq)`,
  // series: 0 for the projected delivery, then one more per redelivery or replay of the envelope.
  `create table webhook_deliveries (
    seq bigint generated always as identity,
    delivery_id text primary key,
    program_id text not null,
    endpoint_id text not null references webhook_endpoints (endpoint_id) on delete cascade,
    envelope_id text not null references webhook_envelopes (envelope_id),
    series integer not null default 0,
    status text not null check (status in ('pending', 'delivering', 'delivered', 'failed', 'gone')),
    attempts integer not null default 0,
    next_attempt_at timestamptz,
    lease_expires_at timestamptz,
    lease_owner text,
    last_status integer,
    last_error text,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    unique (endpoint_id, envelope_id, series)
  )`,
  `create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending'`,
  `create index webhook_deliveries_leased on webhook_deliveries (lease_expires_at) where status = 'delivering'`,
  `create index webhook_deliveries_program on webhook_deliveries (program_id, seq)`,
  `create index webhook_deliveries_endpoint on webhook_deliveries (endpoint_id, seq)`,
  `create index webhook_deliveries_envelope on webhook_deliveries (envelope_id)`,
  `create table webhook_attempts (
    delivery_id text not null references webhook_deliveries (delivery_id) on delete cascade,
    attempt_number integer not null,
    started_at timestamptz not null,
    duration_ms integer not null,
    http_status integer,
    response_body text,
    error_kind text,
    error_message text,
    primary key (delivery_id, attempt_number)
  )`,
  // One notification per delivery at most: a retried flush cannot mail twice.
  `create table webhook_notifications (
    notification_id text primary key,
    program_id text not null,
    delivery_id text not null unique,
    endpoint_id text not null,
    to_address text,
    subject text not null,
    body text not null,
    sent_at timestamptz,
    error text,
    created_at timestamptz not null
  )`,
];

/** Webhook endpoints and the delivery log: state of its own, not rebuilt from the event history. */
export const webhooksMigration: Migration = {
  async up(db: Kysely<unknown>) {
    for (const statement of statements) await sql.raw(statement).execute(db);
  },
  async down(db: Kysely<unknown>) {
    for (const table of [
      'webhook_notifications',
      'webhook_attempts',
      'webhook_deliveries',
      'webhook_envelopes',
      'webhook_endpoints',
    ]) {
      await sql.raw(`drop table ${table}`).execute(db);
    }
  },
};
