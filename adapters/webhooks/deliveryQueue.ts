import { sql, type Kysely } from 'kysely';
import { healthChanges, type FailingEndpoint } from '../../delivery/endpointHealth.ts';
import type {
  ClaimRequest,
  DeliveryQueue,
  EndpointHealthRecording,
  FailureNotification,
  FinishedAttempt,
  HeldDelivery,
  LeasedDelivery,
} from '../../delivery/ports.ts';
import type { Database } from '../db/schema.ts';

/** PostgreSQL text cannot hold NUL: a receiver's body with one is kept with U+FFFD in its place. */
const storable = (text: string | null): string | null =>
  text === null ? null : text.replaceAll('\u0000', '\uFFFD');

/**
 * The delivery rows in PostgreSQL. A claim is one statement (FOR UPDATE SKIP LOCKED plus a
 * lease), so any number of workers can run; a dead worker's rows return when their lease ends.
 * Recording and giving back touch only rows still leased to the caller's claim.
 */
export const createDeliveryQueue = (db: Kysely<Database>): DeliveryQueue => ({
  claim: (request) => claim(db, request),

  async giveBack(rows: readonly HeldDelivery[], now: Date): Promise<void> {
    if (rows.length === 0) return;
    await sql`
      update webhook_deliveries d
      set status = 'pending', lease_expires_at = null, lease_owner = null,
        next_attempt_at = ${now}
      from unnest(${rows.map((r) => r.delivery_id)}::text[], ${rows.map((r) => r.leaseOwner)}::text[])
        as v(delivery_id, lease_owner)
      where d.delivery_id = v.delivery_id and d.status = 'delivering'
        and d.lease_owner = v.lease_owner`.execute(db);
  },

  record: (batch, notifications, now, health) => record(db, { batch, notifications, now, health }),

  async markNotified(notificationId, result) {
    await db
      .updateTable('webhook_notifications')
      .set('sentAt' in result ? { sent_at: result.sentAt } : { error: result.error.slice(0, 1000) })
      .where('notification_id', '=', notificationId)
      .execute();
  },
});

/**
 * One statement: lock due rows (and rows whose lease expired) of enabled endpoints, keep at
 * most the endpoint's free backlog of each, lease them to this claim and return what signing
 * needs.
 *
 * Due rows are found endpoint by endpoint, each walking its own slice of the partial index
 * (endpoint_id, next_attempt_at) in order and stopping at its free room: an endpoint whose
 * backlog is full, or a slow endpoint's million old rows, are never walked over to reach the
 * others'. Only endpoints with pending rows are visited (a skip scan, so a claim costs the
 * endpoints with work, not every endpoint there is), in random order, so when the worker has
 * less room than the endpoints could fill, none is always last.
 */
const claim = async (db: Kysely<Database>, request: ClaimRequest): Promise<LeasedDelivery[]> => {
  const { now, room, perEndpointBacklog: perEndpoint } = request;
  const heldIds = request.held.map((h) => h.endpointId);
  const heldCounts = request.held.map((h) => h.n);
  const statement = (limits: readonly Allowance[]) => sql<LeasedDelivery>`
    with recursive held as (
      select * from unnest(${heldIds}::text[], ${heldCounts}::int[]) as h(endpoint_id, n)
    ),
    -- Rate-limited endpoints: the whole tokens their bucket holds now (rateLimits below).
    limits as (
      select * from unnest(${limits.map((l) => l.endpointId)}::text[],
        ${limits.map((l) => l.n)}::int[]) as l(endpoint_id, n)
    ),
    -- The endpoints that have pending rows, each found by one step down the due index (a
    -- skip scan): a claim costs the endpoints with work, not every endpoint there is.
    waiting(endpoint_id) as (
      select min(d.endpoint_id) from webhook_deliveries d where d.status = 'pending'
      union all
      select (select min(d.endpoint_id) from webhook_deliveries d
        where d.status = 'pending' and d.endpoint_id > w.endpoint_id)
      from waiting w where w.endpoint_id is not null
    ),
    free as (
      select e.endpoint_id,
        least(${perEndpoint}::int - coalesce(h.n, 0), coalesce(l.n, ${perEndpoint}::int)) as n
      from waiting w
      join webhook_endpoints e on e.endpoint_id = w.endpoint_id
      left join held h on h.endpoint_id = e.endpoint_id
      left join limits l on l.endpoint_id = e.endpoint_id
      where e.enabled
        and least(${perEndpoint}::int - coalesce(h.n, 0), coalesce(l.n, ${perEndpoint}::int)) > 0
      order by random()
    ),
    due as (
      select c.delivery_id, c.endpoint_id, c.next_attempt_at
      from free f cross join lateral (
        select d.delivery_id, d.endpoint_id, d.next_attempt_at
        from webhook_deliveries d
        where d.endpoint_id = f.endpoint_id and d.status = 'pending'
          and d.next_attempt_at <= ${now}
          -- An ordered endpoint's delivery waits for the one before it in its subject.
          and (d.sequence is null or not exists (
            select 1 from webhook_deliveries p
            where p.endpoint_id = d.endpoint_id and p.subject = d.subject
              and p.sequence < d.sequence and p.status in ('pending', 'delivering')))
        order by d.next_attempt_at
        limit least(f.n, ${room}::int)
        for update of d skip locked
      ) c
      limit ${room}
    ),
    -- Leases that ended: only rows leased to a worker, so a short walk in lease order.
    expired as (
      select d.delivery_id, d.endpoint_id, d.next_attempt_at
      from webhook_deliveries d
      join webhook_endpoints e on e.endpoint_id = d.endpoint_id and e.enabled
      where d.status = 'delivering' and d.lease_expires_at <= ${now}
        and d.endpoint_id <> all(${request.saturated}::text[])
      order by d.lease_expires_at
      limit ${room}
      for update of d skip locked
    ),
    candidates as (
      select * from (select * from expired union all select * from due) both_kinds limit ${room}
    ),
    ranked as (
      select c.delivery_id,
        row_number() over (partition by c.endpoint_id order by c.next_attempt_at) as rn,
        least(${perEndpoint}::int - coalesce(h.n, 0), coalesce(l.n, ${perEndpoint}::int)) as free
      from candidates c left join held h on h.endpoint_id = c.endpoint_id
        left join limits l on l.endpoint_id = c.endpoint_id
    )
    update webhook_deliveries d
    set status = 'delivering', lease_expires_at = ${request.leaseExpiresAt},
      lease_owner = ${request.leaseOwner}, updated_at = ${now}
    from ranked r, webhook_envelopes v, webhook_endpoints e
    where d.delivery_id = r.delivery_id and r.rn <= r.free
      and v.envelope_id = d.envelope_id and e.endpoint_id = d.endpoint_id
    returning d.delivery_id, d.program_id, d.endpoint_id, d.envelope_id, d.attempts,
      v.type, v.body, v.is_test, e.url, e.url_userinfo_encrypted, e.secret_encrypted, e.previous_secret_encrypted,
      e.previous_secret_expires_at, d.subject, d.sequence::text as sequence, v.traceparent`;
  // Index scans are the only way in: each walk above must use its index in order and stop at
  // its limit. With statistics older than the backlog (a burst, an outage, autovacuum not yet
  // round) the planner otherwise fetched every due row, sorted them all (spilling to disk) and
  // kept the first thousand, for every claim (BENCHMARKS.md has the figures).
  return db.transaction().execute(async (tx) => {
    await sql`select set_config('enable_seqscan', 'off', true),
      set_config('enable_bitmapscan', 'off', true), set_config('jit', 'off', true)`.execute(tx);
    const buckets = await rateLimits(tx, now);
    const { rows } = await statement(buckets).execute(tx);
    if (buckets.length > 0) await spend(tx, buckets, rows, now);
    return rows;
  });
};

type Allowance = { endpointId: string; n: number; available: number };

/**
 * The token buckets of the enabled rate-limited endpoints, locked to this claim's commit, so
 * the claims of every worker process spend from the same tokens one after another: each bucket
 * refills at `rate` tokens a second up to `rate`, and a claim leases at most its whole tokens
 * of an endpoint's rows. Rows that find no token stay pending, due, for a later claim.
 */
const rateLimits = async (tx: Kysely<Database>, now: Date): Promise<Allowance[]> => {
  const { rows } = await sql<{
    endpoint_id: string;
    rate: number;
    tokens: number;
    refreshed_at: Date;
  }>`select b.endpoint_id, e.rate_limit_per_second as rate, b.tokens, b.refreshed_at
    from webhook_rate_buckets b join webhook_endpoints e on e.endpoint_id = b.endpoint_id
    where e.enabled and e.rate_limit_per_second is not null
    order by b.endpoint_id
    for no key update of b`.execute(tx);
  return rows.map((row) => {
    // Another process's clock may be a little ahead: time never runs backwards for a bucket.
    const elapsedS = Math.max(0, (now.getTime() - row.refreshed_at.getTime()) / 1000);
    const available = Math.min(row.rate, row.tokens + elapsedS * row.rate);
    return { endpointId: row.endpoint_id, n: Math.floor(available), available };
  });
};

/** What the claim leased of each limited endpoint comes off its bucket. */
const spend = async (
  tx: Kysely<Database>,
  buckets: readonly Allowance[],
  leased: readonly LeasedDelivery[],
  now: Date,
): Promise<void> => {
  const used = new Map<string, number>();
  for (const row of leased) used.set(row.endpoint_id, (used.get(row.endpoint_id) ?? 0) + 1);
  await sql`
    update webhook_rate_buckets b
    set tokens = greatest(0, v.tokens), refreshed_at = greatest(b.refreshed_at, ${now})
    from unnest(${buckets.map((b) => b.endpointId)}::text[],
      ${buckets.map((b) => b.available - (used.get(b.endpointId) ?? 0))}::float8[])
      as v(endpoint_id, tokens)
    where b.endpoint_id = v.endpoint_id`.execute(tx);
};

/** One transaction: one statement for the outcomes and their attempts, then 410s and notifications. */
const record = async (
  db: Kysely<Database>,
  input: {
    batch: readonly FinishedAttempt[];
    notifications: ReadonlyMap<string, FailureNotification>;
    now: Date;
    health?: EndpointHealthRecording | undefined;
  },
): Promise<FailureNotification[]> => {
  const { batch, now } = input;
  // One statement: the attempts, then the outcomes of the rows still leased to this claim.
  // One JSON document for the whole batch: serialised natively, parsed once by PostgreSQL.
  const rows = batch.map((f) => ({
    delivery_id: f.delivery.delivery_id,
    lease_owner: f.delivery.leaseOwner,
    status: f.decision.status,
    attempts: f.delivery.attempts + 1,
    next_attempt_at: f.decision.status === 'pending' ? f.decision.nextAttemptAt : null,
    last_status: f.result.kind === 'response' ? f.result.status : null,
    last_error: storable(f.lastError),
    started_at: f.startedAt,
    duration_ms: Math.max(0, Math.round(f.result.durationMs)),
    response_body:
      f.result.kind === 'response'
        ? storable(f.result.body.slice(0, 4096))
        : f.result.kind === 'published'
          ? storable(f.result.detail.slice(0, 4096))
          : null,
    error_kind: f.errorKind,
    error_message: storable(
      f.result.kind === 'error' ? f.result.message.slice(0, 1000) : f.lastError,
    ),
    retry_after_s: f.retryAfterS,
  }));
  const recordset = (document: string) => sql`json_to_recordset(${document}::json) as v(
    delivery_id text, lease_owner text, status text, attempts int,
    next_attempt_at timestamptz, last_status int, last_error text,
    started_at timestamptz, duration_ms int, response_body text, error_kind text,
    error_message text, retry_after_s bigint)`;
  return db.transaction().execute(async (tx) => {
    // The endpoints with a failure in the batch first, in one order: their failure clocks
    // change below, and a concurrent deleteEndpoint (endpoint row, then its deliveries) must
    // not meet this transaction holding the deliveries and waiting for the endpoint (a
    // deadlock). Healthy endpoints are not locked, so the record transactions of several
    // processes delivering to one endpoint do not queue behind each other. (Does not conflict
    // with the projector's FOR KEY SHARE.)
    const failingIds = [
      ...new Set(
        batch.filter((f) => f.decision.status !== 'delivered').map((f) => f.delivery.endpoint_id),
      ),
    ].sort();
    if (failingIds.length > 0)
      await sql`select 1 from webhook_endpoints where endpoint_id = any(${failingIds}::text[])
        order by endpoint_id for no key update`.execute(tx);
    // The outcome of every row still leased to its claim, and the attempts of exactly those
    // rows: the update's row locks keep a concurrent deleteEndpoint from removing a delivery
    // under its new attempt (it waits for this commit, or was first and nothing is written).
    const updated = await sql<{ delivery_id: string }>`
      with v as (select * from ${recordset(JSON.stringify(rows))}),
      updated as (
        update webhook_deliveries d
        set status = v.status, attempts = v.attempts, next_attempt_at = v.next_attempt_at,
          lease_expires_at = null, lease_owner = null, last_status = v.last_status,
          last_error = v.last_error, updated_at = ${now}
        from v
        where d.delivery_id = v.delivery_id and d.status = 'delivering'
          and d.lease_owner = v.lease_owner
        returning d.delivery_id
      ),
      attempts as (
        insert into webhook_attempts (delivery_id, attempt_number, started_at, duration_ms,
          http_status, response_body, error_kind, error_message, retry_after_s)
        select v.delivery_id, v.attempts, v.started_at, v.duration_ms, v.last_status,
          v.response_body, v.error_kind, v.error_message, v.retry_after_s
        from v join updated u on u.delivery_id = v.delivery_id
        on conflict (delivery_id, attempt_number) do nothing
      )
      select delivery_id from updated`.execute(tx);
    const ours = new Set(updated.rows.map((r) => r.delivery_id));
    // A claim that lost its lease to another worker (rare) records its attempt but not the
    // outcome. Its row is locked first, as a foreign key would lock it, so that a delivery
    // deleted meanwhile gets no attempt.
    const lost = rows.filter((r) => !ours.has(r.delivery_id));
    if (lost.length > 0) {
      await sql`select 1 from webhook_deliveries
        where delivery_id = any(${lost.map((r) => r.delivery_id)}::text[])
        for key share`.execute(tx);
      await sql`
        insert into webhook_attempts (delivery_id, attempt_number, started_at, duration_ms,
          http_status, response_body, error_kind, error_message, retry_after_s)
        select v.delivery_id, v.attempts, v.started_at, v.duration_ms, v.last_status,
          v.response_body, v.error_kind, v.error_message, v.retry_after_s
        from ${recordset(JSON.stringify(lost))}
        join webhook_deliveries d on d.delivery_id = v.delivery_id
        on conflict (delivery_id, attempt_number) do nothing`.execute(tx);
    }
    const concluded = batch.filter(
      (f) =>
        (f.decision.status === 'failed' || f.decision.status === 'gone') &&
        ours.has(f.delivery.delivery_id),
    );
    const endpointNotices = await recordHealth(
      tx,
      batch.filter((f) => ours.has(f.delivery.delivery_id)),
      now,
      input.health,
    );
    if (concluded.length === 0) return storeNotifications(tx, endpointNotices, now);

    for (const f of concluded.filter((c) => c.decision.status === 'gone')) {
      await tx
        .updateTable('webhook_endpoints')
        .set({
          enabled: false,
          disabled_reason: `The endpoint answered 410 Gone to delivery ${f.delivery.delivery_id} at ${now.toISOString()}.`,
          disabled_code: 'gone',
          updated_at: now,
        })
        .where('endpoint_id', '=', f.delivery.endpoint_id)
        .where('enabled', '=', true)
        .execute();
    }

    const drafts = concluded.map((f) => {
      const notification = input.notifications.get(f.delivery.delivery_id);
      if (notification === undefined)
        throw new Error(`no notification drafted for delivery ${f.delivery.delivery_id}`);
      return notification;
    });
    return storeNotifications(tx, [...drafts, ...endpointNotices], now);
  });
};

/** Stores notifications (a delivery's at most once); resolves with those newly stored. */
const storeNotifications = async (
  tx: Kysely<Database>,
  drafts: readonly FailureNotification[],
  now: Date,
): Promise<FailureNotification[]> => {
  if (drafts.length === 0) return [];
  const inserted = await tx
    .insertInto('webhook_notifications')
    .values(
      drafts.map((n) => ({
        notification_id: n.notificationId,
        kind: n.kind,
        program_id: n.programId,
        delivery_id: n.deliveryId,
        endpoint_id: n.endpointId,
        to_address: n.to,
        subject: n.subject,
        body: n.text,
        sent_at: null,
        error: null,
        created_at: now,
      })),
    )
    .onConflict((oc) => oc.column('delivery_id').doNothing())
    .returning('notification_id')
    .execute();
  const fresh = new Set(inserted.map((r) => r.notification_id));
  return drafts.filter((n) => fresh.has(n.notificationId));
};

/**
 * Moves each endpoint's failure clock by what the batch recorded (delivery/endpointHealth.ts),
 * then disables the endpoints past the disable time and warns those past half of it, in the
 * batch's transaction: the notices it drafts are stored with it, so none is lost or doubled.
 */
const recordHealth = async (
  tx: Kysely<Database>,
  recorded: readonly FinishedAttempt[],
  now: Date,
  health: EndpointHealthRecording | undefined,
): Promise<FailureNotification[]> => {
  const changes = healthChanges(recorded);
  if (changes.length === 0) return [];
  await sql`
    update webhook_endpoints e
    set failing_since = case when v.reset then v.first_failure_at
          else coalesce(e.failing_since, v.first_failure_at) end,
      failed_deliveries = case when v.reset then v.failed_deliveries
          else e.failed_deliveries + v.failed_deliveries end,
      failure_warned_at = case when v.reset then null else e.failure_warned_at end
    from json_to_recordset(${JSON.stringify(
      changes.map((c) => ({
        endpoint_id: c.endpointId,
        reset: c.reset,
        first_failure_at: c.firstFailureAt,
        failed_deliveries: c.failedDeliveries,
      })),
    )}::json) as v(endpoint_id text, reset boolean, first_failure_at timestamptz,
      failed_deliveries int)
    where e.endpoint_id = v.endpoint_id
      -- A healthy endpoint's success changes nothing: its row is neither written nor locked.
      and (v.first_failure_at is not null or (v.reset and (e.failing_since is not null
        or e.failed_deliveries <> 0 or e.failure_warned_at is not null)))`.execute(tx);
  if (health === undefined || health.policy.disableAfterMs <= 0) return [];
  const failing = changes.filter((c) => c.firstFailureAt !== null).map((c) => c.endpointId);
  if (failing.length === 0) return [];
  const { disableAfterMs, minFailedDeliveries } = health.policy;
  const disabled = await sql<EndpointRow>`
    update webhook_endpoints
    set enabled = false, disabled_code = 'sustained_failure',
      disabled_reason = 'Every delivery attempt failed from ' ||
        to_char(failing_since at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') ||
        ' to ' || ${now.toISOString()} || ' (' || failed_deliveries ||
        ' deliveries failed for good): disabled for sustained failure.',
      updated_at = ${now}
    where endpoint_id = any(${failing}::text[]) and enabled
      and failing_since <= ${new Date(now.getTime() - disableAfterMs)}
      and failed_deliveries >= ${minFailedDeliveries}
    returning endpoint_id, program_id, url, failing_since, failed_deliveries`.execute(tx);
  const warned = await sql<EndpointRow>`
    update webhook_endpoints set failure_warned_at = ${now}
    where endpoint_id = any(${failing}::text[]) and enabled and failure_warned_at is null
      and failing_since <= ${new Date(now.getTime() - disableAfterMs / 2)}
    returning endpoint_id, program_id, url, failing_since, failed_deliveries`.execute(tx);
  return [
    ...disabled.rows.map((row) => health.draft('endpoint_disabled', failingEndpoint(row))),
    ...warned.rows.map((row) => health.draft('endpoint_failing', failingEndpoint(row))),
  ];
};

type EndpointRow = {
  endpoint_id: string;
  program_id: string;
  url: string;
  failing_since: Date;
  failed_deliveries: number;
};

const failingEndpoint = (row: EndpointRow): FailingEndpoint => ({
  endpointId: row.endpoint_id,
  programId: row.program_id,
  url: row.url,
  failingSince: row.failing_since,
  failedDeliveries: row.failed_deliveries,
});
