import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { chainHash } from '../eventstore/canonical.ts';

/**
 * One broken place in a stream's history.
 * - `hash_mismatch`: the event at `revision` does not hash, over the previous stored hash, to the
 *   hash stored with it (its data, metadata, type or id changed, or another event sits there).
 * - `revision_gap`: `revision` is missing; the next event found has `foundRevision`.
 * - `missing_tail`: the stream's head (incentable_streams) says it reaches `expectedRevision`, the
 *   last event found is at `revision - 1`: events at the end were deleted.
 * - `head_mismatch`: the head's last hash is not the last event's stored hash.
 * - `missing_head`: events exist but the stream has no head row.
 *
 * A tampering breaks a run of consecutive links (a swapped pair breaks three, a deleted event a
 * gap plus the next link): that run is reported once, at its first revision, `links` long, so one
 * alteration is one break.
 */
export type ChainBreak = {
  stream: string;
  revision: string;
  kind: 'hash_mismatch' | 'revision_gap' | 'missing_tail' | 'head_mismatch' | 'missing_head';
  expectedHash: string | null;
  foundHash: string | null;
  expectedRevision: string;
  foundRevision: string | null;
  links: number;
};

export type VerifyReport = {
  ok: boolean;
  streams: number;
  events: number;
  breaks: number;
  elapsedMs: number;
  eventsPerSecond: number;
};

export type VerifyOptions = {
  /** Only the streams of this program (`<aggregate>-<programId>-<id>`). */
  programId?: string;
  /** Rows per keyset page when the suspect streams are walked link by link. */
  pageSize?: number;
  onBreak?: (chainBreak: ChainBreak) => void | Promise<void>;
  /** Called once, after the SQL pass, with the events it checked (all of them in scope). */
  onProgress?: (events: number) => void;
  now?: () => number;
};

type ChainRow = {
  stream_name: string;
  stream_revision: string;
  hash: string;
  /** incentable_canonical of the row: the bytes its hash covers. */
  canonical: string;
};

type Head = { revision: string; last_hash: string | null };

const programFilter = (alias: 'e' | 'p' | 's', programId: string | undefined) =>
  programId === undefined
    ? sql``
    : sql`and split_part(${sql.ref(`${alias}.stream_name`)}, '-', 2) = ${programId}`;

/**
 * Every event checked against the stored hash of the event one revision before it, in one
 * statement: a hash join, not a walk in stream order (sorting a million rows by stream costs more
 * than hashing them), which PostgreSQL spreads over its parallel workers. Gives the totals and the
 * streams to walk link by link: those with a link that fails, a revision without its predecessor,
 * or a head (incentable_streams) that is missing or not the last event. On a clean stream every
 * event has its predecessor, so this check and the walk agree; anywhere else the walk decides.
 */
const findSuspects = async (
  db: Kysely<Database>,
  programId: string | undefined,
): Promise<{ events: number; streams: number; suspects: string[] }> => {
  const result = await sql<{ events: string; streams: string; suspects: string[] }>`
    with per_stream as (
      select e.stream_name, count(*) as n, max(e.stream_revision) as last_revision,
        bool_or((e.stream_revision <> 0 and p.hash is null)
          or encode(sha256(convert_to(coalesce(p.hash, '')
            || incentable_canonical(e.event_id, e.stream_name, e.type, e.data, e.metadata),
            'UTF8')), 'hex') <> e.hash) as broken
      from incentable_events e
      left join incentable_events p
        on p.stream_name = e.stream_name and p.stream_revision = e.stream_revision - 1
        ${programFilter('p', programId)}
      where true ${programFilter('e', programId)}
      group by e.stream_name
    )
    select coalesce(sum(g.n), 0)::text as events, count(*)::text as streams,
      coalesce(array_agg(g.stream_name) filter (where g.broken or s.stream_name is null
        or s.revision <> g.last_revision
        or s.last_hash is distinct from (select l.hash from incentable_events l
          where l.stream_name = g.stream_name and l.stream_revision = g.last_revision)),
        '{}') as suspects
    from per_stream g left join incentable_streams s on s.stream_name = g.stream_name`.execute(db);
  const row = result.rows[0];
  return {
    events: Number(row?.events ?? 0),
    streams: Number(row?.streams ?? 0),
    suspects: row?.suspects ?? [],
  };
};

const readChainPage = async (
  db: Kysely<Database>,
  after: { stream: string; revision: string } | null,
  options: { streams: string[]; limit: number },
): Promise<ChainRow[]> => {
  // Keyset on the unique (stream_name, stream_revision) index; ORDER BY names the columns.
  const keyset = after
    ? sql`and (e.stream_name, e.stream_revision) > (${after.stream}, ${after.revision}::bigint)`
    : sql``;
  const result = await sql<ChainRow>`
    select e.stream_name, e.stream_revision::text as stream_revision, e.hash,
      incentable_canonical(e.event_id, e.stream_name, e.type, e.data, e.metadata) as canonical
    from incentable_events e
    where e.stream_name = any(${options.streams}::text[]) ${keyset}
    order by e.stream_name, e.stream_revision
    limit ${options.limit}`.execute(db);
  return result.rows;
};

const readHeads = async (db: Kysely<Database>, streams: string[]): Promise<Map<string, Head>> => {
  const result = await sql<{ stream_name: string } & Head>`
    select stream_name, revision::text as revision, last_hash from incentable_streams
    where stream_name = any(${streams}::text[])`.execute(db);
  return new Map(result.rows.map((row) => [row.stream_name, row]));
};

/**
 * Recomputes every event's hash over the previous event's stored hash and checks revisions run
 * 0, 1, 2… up to the stream's head, in one snapshot. PostgreSQL checks every link at once
 * (`findSuspects`); the streams where anything is off are then walked in (stream, revision) order,
 * in keyset pages, to report each break exactly. Memory: the names of the suspect streams.
 */
export const verifyChains = async (
  db: Kysely<Database>,
  options: VerifyOptions = {},
): Promise<VerifyReport> => {
  const now = options.now ?? (() => performance.now());
  const started = now();
  const counted = await db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (tx) => {
      // The hash join holds one (stream, revision, hash) entry per event: in memory, not batches.
      await sql`set local work_mem = '128MB'`.execute(tx);
      return walkChains(tx, options);
    });
  const elapsedMs = now() - started;
  return {
    ...counted,
    elapsedMs,
    eventsPerSecond:
      elapsedMs > 0 ? Math.round((counted.events / elapsedMs) * 1000) : counted.events,
  };
};

const walkChains = async (
  db: Kysely<Database>,
  options: VerifyOptions,
): Promise<Omit<VerifyReport, 'elapsedMs' | 'eventsPerSecond'>> => {
  const limit = options.pageSize ?? 2000;
  const checked = await findSuspects(db, options.programId);
  options.onProgress?.(checked.events);
  const reporter = breakReporter(options);
  await walkSuspects(db, reporter, { limit, streams: checked.suspects });
  const empty = await readEmptyHeads(db, options.programId);
  for (const head of empty) await reporter.emit(emptyStreamBreak(head));
  return {
    ok: reporter.breaks() === 0,
    streams: checked.streams + empty.length,
    events: checked.events,
    breaks: reporter.breaks(),
  };
};

/**
 * Hands each break to `onBreak` and counts it. Consecutive broken links of a stream are one run
 * (see ChainBreak): the run stays open until a sound link, the end of its stream or another
 * stream's break closes it.
 */
const breakReporter = (options: Pick<VerifyOptions, 'onBreak'>) => {
  let open: ChainBreak | null = null;
  let breaks = 0;
  const emit = async (chainBreak: ChainBreak): Promise<void> => {
    breaks++;
    await options.onBreak?.(chainBreak);
  };
  return {
    emit,
    /** A broken link: extends the open run, or opens one. */
    broken: async (chainBreak: Omit<ChainBreak, 'links'>): Promise<void> => {
      if (open && open.stream === chainBreak.stream) {
        open.links++;
        return;
      }
      if (open) await emit(open);
      open = { ...chainBreak, links: 1 };
    },
    closeRun: async (): Promise<void> => {
      if (open) await emit(open);
      open = null;
    },
    breaks: (): number => breaks,
  };
};

type BreakReporter = ReturnType<typeof breakReporter>;

/**
 * Walks the suspect streams link by link, in keyset pages. The next page is read while this one is
 * checked.
 */
const walkSuspects = async (
  db: Kysely<Database>,
  reporter: BreakReporter,
  pageOptions: { limit: number; streams: string[] },
): Promise<void> => {
  const { limit } = pageOptions;
  const walker = chainWalker(reporter);
  let next: Promise<ChainRow[]> | null =
    pageOptions.streams.length > 0 ? readChainPage(db, null, pageOptions) : null;
  while (next) {
    const page: ChainRow[] = await next;
    const last = page[page.length - 1];
    next =
      page.length === limit && last
        ? readChainPage(
            db,
            { stream: last.stream_name, revision: last.stream_revision },
            pageOptions,
          )
        : null;
    next?.catch(() => {});
    if (page.length === 0) break;
    const names = [...new Set(page.map((row) => row.stream_name))];
    walker.useHeads(await readHeads(db, names));
    for (const row of page) await walker.check(row);
  }
  await walker.endStream();
};

/**
 * Checks rows in (stream, revision) order: each against the event before it in its stream, and
 * each stream, once its last row is checked, against its head.
 */
const chainWalker = (reporter: BreakReporter) => {
  let stream: string | null = null;
  let previousHash: string | null = null;
  let previousRevision = -1n;
  let heads = new Map<string, Head>();

  const endStream = async (): Promise<void> => {
    if (stream === null) return;
    await reporter.closeRun();
    const chainBreak = headBreak({ stream, previousHash, previousRevision }, heads.get(stream));
    if (chainBreak) await reporter.emit(chainBreak);
  };

  return {
    endStream,
    /** The heads of a page's streams. */
    useHeads: (pageHeads: Map<string, Head>): void => {
      // The stream open across the page boundary keeps its head.
      const openHead = stream === null ? undefined : heads.get(stream);
      if (stream !== null && openHead !== undefined) pageHeads.set(stream, openHead);
      heads = pageHeads;
    },
    check: async (row: ChainRow): Promise<void> => {
      if (row.stream_name !== stream) {
        await endStream();
        stream = row.stream_name;
        previousHash = null;
        previousRevision = -1n;
      }
      const links = linkBreaks(row, previousHash, previousRevision);
      if (links.length === 0) await reporter.closeRun();
      for (const link of links) await reporter.broken(link);
      previousHash = row.hash;
      previousRevision = BigInt(row.stream_revision);
    },
  };
};

/**
 * What is wrong with the link from the event before `row` to `row`: a revision skipped, a hash
 * that does not match, both, or nothing.
 */
const linkBreaks = (
  row: ChainRow,
  previousHash: string | null,
  previousRevision: bigint,
): Omit<ChainBreak, 'links'>[] => {
  const revision = BigInt(row.stream_revision);
  const expectedRevision = previousRevision + 1n;
  const expectedHash = chainHash(previousHash, row.canonical);
  const links: Omit<ChainBreak, 'links'>[] = [];
  if (revision !== expectedRevision) {
    links.push({
      stream: row.stream_name,
      revision: expectedRevision.toString(),
      kind: 'revision_gap',
      expectedHash: null,
      foundHash: null,
      expectedRevision: expectedRevision.toString(),
      foundRevision: row.stream_revision,
    });
  }
  if (expectedHash !== row.hash) {
    links.push({
      stream: row.stream_name,
      revision: row.stream_revision,
      kind: 'hash_mismatch',
      expectedHash,
      foundHash: row.hash,
      expectedRevision: row.stream_revision,
      foundRevision: row.stream_revision,
    });
  }
  return links;
};

/**
 * A walked stream's end against its head (`undefined` when it has none): the head missing, events
 * missing at the end, the head's hash not the last event's, or null when they agree.
 */
const headBreak = (
  walked: { stream: string; previousHash: string | null; previousRevision: bigint },
  head: Head | undefined,
): ChainBreak | null => {
  const { stream, previousHash, previousRevision } = walked;
  if (!head) {
    return {
      stream,
      revision: (previousRevision + 1n).toString(),
      kind: 'missing_head',
      expectedHash: null,
      foundHash: previousHash,
      expectedRevision: previousRevision.toString(),
      foundRevision: null,
      links: 1,
    };
  }
  const headRevision = BigInt(head.revision);
  if (headRevision > previousRevision) {
    return {
      stream,
      revision: (previousRevision + 1n).toString(),
      kind: 'missing_tail',
      expectedHash: head.last_hash,
      foundHash: null,
      expectedRevision: head.revision,
      foundRevision: previousRevision.toString(),
      links: Number(headRevision - previousRevision),
    };
  }
  if (head.last_hash !== previousHash) {
    return {
      stream,
      revision: previousRevision.toString(),
      kind: 'head_mismatch',
      expectedHash: head.last_hash,
      foundHash: previousHash,
      expectedRevision: head.revision,
      foundRevision: previousRevision.toString(),
      links: 1,
    };
  }
  return null;
};

/** Heads whose every event is gone. */
const readEmptyHeads = async (
  db: Kysely<Database>,
  programId: string | undefined,
): Promise<({ stream_name: string } & Head)[]> => {
  const program =
    programId === undefined ? sql`` : sql`and split_part(s.stream_name, '-', 2) = ${programId}`;
  const empty = await sql<{ stream_name: string } & Head>`
    select s.stream_name, s.revision::text as revision, s.last_hash from incentable_streams s
    where s.revision >= 0 ${program}
      and not exists (select 1 from incentable_events e where e.stream_name = s.stream_name)
    order by s.stream_name`.execute(db);
  return empty.rows;
};

const emptyStreamBreak = (head: { stream_name: string } & Head): ChainBreak => ({
  stream: head.stream_name,
  revision: '0',
  kind: 'missing_tail',
  expectedHash: head.last_hash,
  foundHash: null,
  expectedRevision: head.revision,
  foundRevision: null,
  links: Number(head.revision) + 1,
});
