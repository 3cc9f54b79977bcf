import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Group commit (issue 16): `incentable_append_batch` runs several appends, each to its own stream
 * with its own expected revision, in one statement and so one transaction and one commit.
 *
 * Each append runs `incentable_append` inside its own exception block, i.e. its own
 * subtransaction: an append whose expected revision is wrong (IN409), that loses a race to create
 * its stream (23505) or fails in any other way is rolled back alone and reported in its row
 * (`error_code`, `error_detail`, `error_message`); the others commit. Rows come back in `ord`
 * order, one per append, 1-based.
 *
 * The events of all appends are passed flattened: append i owns `p_counts[i]` consecutive
 * entries of `p_ids`, `p_types`, `p_data` and `p_metadata`.
 *
 * The caller sorts a batch by stream name so that every batch locks stream rows in one order
 * and two batches never deadlock, and keeps it under 64 appends: more committed subtransactions
 * than a backend's subxid cache holds (64) would make every other session's snapshot slower.
 */
const createBatch = `
create function incentable_append_batch(
        p_streams text[], p_expected bigint[], p_counts int[], p_ids uuid[], p_types text[],
        p_data jsonb[], p_metadata jsonb[]
      ) returns table (
        ord int, next_revision bigint, commit_position text, prepare_position bigint,
        error_code text, error_detail text, error_message text
      )
      language plpgsql as $$
      declare
        first int := 1;
        last int;
        appended record;
      begin
        for i in 1 .. coalesce(array_length(p_streams, 1), 0) loop
          last := first + p_counts[i] - 1;
          ord := i;
          begin
            select * into appended from incentable_append(
              p_streams[i], p_expected[i], p_ids[first:last], p_types[first:last],
              p_data[first:last], p_metadata[first:last]);
            next_revision := appended.next_revision;
            commit_position := appended.commit_position;
            prepare_position := appended.prepare_position;
            error_code := null;
            error_detail := null;
            error_message := null;
          exception when others then
            get stacked diagnostics error_code = returned_sqlstate,
              error_detail = pg_exception_detail, error_message = message_text;
            next_revision := null;
            commit_position := null;
            prepare_position := null;
          end;
          return next;
          first := last + 1;
        end loop;
      end;
      $$`;

export const appendBatchMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql.raw(createBatch).execute(db);
  },
  async down(db: Kysely<unknown>) {
    await sql`drop function incentable_append_batch`.execute(db);
  },
};
