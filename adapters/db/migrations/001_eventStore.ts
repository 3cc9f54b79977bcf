import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The event log. `global_position` is the row identity; `transaction_id` is the appending
 * transaction. Readers order by (transaction_id, global_position) and only read rows below the
 * oldest running transaction, so an event that commits late is never skipped (DESIGN.md, Emmett).
 *
 * `incentable_append` checks the expected revision, extends the per-stream hash chain and inserts
 * the batch in one round trip. The chain is sha256 hex over the previous hash then
 * `incentable_canonical` of the event: the jsonb text of {id, stream, type, data, metadata},
 * which PostgreSQL recomputes from any stored row (so `audit verify` runs in SQL) and
 * eventstore/canonical.ts reproduces byte for byte for the stores that are not PostgreSQL.
 *
 * Expected revision: -1 no stream, -2 any, -3 stream exists, >= 0 exact. A mismatch raises
 * SQLSTATE IN409 with the actual revision in DETAIL.
 */
const statements = [
  `
create table incentable_streams (
        stream_name text primary key,
        revision bigint not null,
        last_hash text
      )`,
  `
create table incentable_events (
        global_position bigint generated always as identity primary key,
        transaction_id xid8 not null default pg_current_xact_id(),
        event_id uuid not null unique,
        stream_name text not null,
        stream_revision bigint not null,
        type text not null,
        data jsonb not null,
        metadata jsonb not null,
        hash text not null,
        unique (stream_name, stream_revision)
      )`,
  `
create index incentable_events_order on incentable_events (transaction_id, global_position)`,
  `
create index incentable_events_program on incentable_events ((metadata->>'programId'), transaction_id, global_position)`,
  `
create table incentable_subscriptions (
        name text primary key,
        commit_position xid8 not null,
        prepare_position bigint not null,
        updated_at timestamptz not null default now()
      )`,
  // Spelt as a concatenation, not jsonb_build_object(...)::text: the same text (the canonical
  // test checks it) without building a jsonb first, a third less work for a verify. Stable, not
  // immutable, as to_json is; inlined where it is called.
  `
create function incentable_canonical(
        p_id uuid, p_stream text, p_type text, p_data jsonb, p_metadata jsonb
      ) returns text language sql stable parallel safe as $$
        select '{"id": "' || p_id::text || '", "data": ' || p_data::text || ', "type": '
          || to_json(p_type)::text || ', "stream": ' || to_json(p_stream)::text
          || ', "metadata": ' || p_metadata::text || '}'
      $$`,
  `
create function incentable_append(
        p_stream text, p_expected bigint, p_ids uuid[], p_types text[], p_data jsonb[],
        p_metadata jsonb[]
      ) returns table (next_revision bigint, commit_position text, prepare_position bigint)
      language plpgsql as $$
      declare
        current_revision bigint;
        current_hash text;
        hashes text[] := '{}';
        h text;
        last_position bigint;
        n int := coalesce(array_length(p_ids, 1), 0);
      begin
        -- An exact or "exists" expectation needs the stream row: lock it, nothing else. Only
        -- "no stream" and "any" may create it, and a racing creator loses on its primary key.
        if p_expected = -1 then
          insert into incentable_streams (stream_name, revision, last_hash)
            values (p_stream, -1, null) on conflict do nothing;
          if not found then
            select s.revision into current_revision from incentable_streams s where s.stream_name = p_stream;
            raise exception 'wrong expected revision on %', p_stream
              using errcode = 'IN409', detail = current_revision::text;
          end if;
          current_revision := -1;
        else
          if p_expected = -2 then
            insert into incentable_streams (stream_name, revision, last_hash)
              values (p_stream, -1, null) on conflict do nothing;
          end if;
          select s.revision, s.last_hash into current_revision, current_hash
            from incentable_streams s where s.stream_name = p_stream for update;
          if not found then
            current_revision := -1;
          end if;
          if (p_expected = -3 and current_revision = -1)
             or (p_expected >= 0 and current_revision <> p_expected) then
            raise exception 'wrong expected revision on %', p_stream
              using errcode = 'IN409', detail = current_revision::text;
          end if;
        end if;
        h := current_hash;
        for i in 1 .. n loop
          h := encode(sha256(convert_to(coalesce(h, '') || incentable_canonical(
            p_ids[i], p_stream, p_types[i], p_data[i], p_metadata[i]), 'UTF8')), 'hex');
          hashes := hashes || h;
        end loop;
        with inserted as (
          insert into incentable_events (event_id, stream_name, stream_revision, type, data, metadata, hash)
            select u.id, p_stream, current_revision + u.ord, u.type, u.data, u.metadata, u.hash
            from unnest(p_ids, p_types, p_data, p_metadata, hashes)
              with ordinality as u(id, type, data, metadata, hash, ord)
            order by u.ord
            returning global_position
        )
        select max(global_position) into last_position from inserted;
        update incentable_streams set revision = current_revision + n, last_hash = h
          where stream_name = p_stream;
        return query select current_revision + n, pg_current_xact_id()::text, last_position;
      end;
      $$`,
];

export const eventStoreMigration: Migration = {
  async up(db: Kysely<unknown>) {
    for (const statement of statements) await sql.raw(statement).execute(db);
  },
  async down(db: Kysely<unknown>) {
    for (const table of ['incentable_subscriptions', 'incentable_events', 'incentable_streams']) {
      await sql.raw(`drop table ${table}`).execute(db);
    }
    await sql`drop function incentable_append`.execute(db);
    await sql`drop function incentable_canonical`.execute(db);
  },
};
