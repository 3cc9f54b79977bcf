import { spawn } from 'node:child_process';
import type { AwardRecord, CarefulClient } from './client.ts';
import type { Cluster } from './cluster.ts';
import type { ServiceProcess } from './service.ts';
import { waitUntil } from './wait.ts';
import type { WebhookRecorder } from './webhooks.ts';

const root = new URL('../../../', import.meta.url).pathname;

/** The subscriptions a process with the projector role runs (their checkpoint names). */
export const subscriptionNames = ['read-models', 'policies', 'webhooks'] as const;

/** What a scenario left behind, counted; `problems` lists every broken promise, in words. */
export type Reconciliation = {
  awardsSent: number;
  /** Keys whose definite answer was 201 (the first time or replayed). */
  acknowledged: number;
  /** Definite answers other than 201, by status and code. */
  refused: Record<string, number>;
  /** Keys that never got a definite answer before the drain deadline. */
  unresolved: number;
  /** PointsAwarded events of the program: awards applied. */
  applied: number;
  /** Keys applied more than once. */
  appliedTwice: number;
  /** Applied keys whose client never got a 201 (unresolved, or answered otherwise). */
  appliedUnacknowledged: number;
  pendingKeys: number;
  webhooksReceived: number;
  /** Receipts beyond the first of one transaction's webhook (allowed: at least once). */
  duplicatesDelivered: number;
  webhooksMissing: number;
  auditClean: boolean;
  crashes: number;
  /** Restarts after a crash that exited before they had started (the database still away). */
  startFailures: number;
  problems: string[];
};

type EventRow = {
  reference: string | null;
  transaction_id: string;
  member_id: string;
  points: number;
};

const first = <T>(items: T[], n = 5): T[] => items.slice(0, n);

/**
 * Waits until every subscription's checkpoint has reached the head of the log and stays there
 * (the policy reactor appends events of its own). Returns a problem when it does not within
 * `timeoutMs`.
 */
export const settleSubscriptions = async (
  cluster: Cluster,
  database: string,
  timeoutMs: number,
): Promise<string | null> => {
  const lagging = async () =>
    cluster.query<{ name: string; caught_up: boolean | null; at: string | null }>(
      database,
      `select n.name, (s.commit_position, s.prepare_position) >= (h.transaction_id, h.global_position)
                as caught_up, s.commit_position::text || '.' || s.prepare_position::text as at
         from unnest($1::text[]) as n(name)
         cross join (select transaction_id, global_position from incentable_events
                     order by transaction_id desc, global_position desc limit 1) h
         left join incentable_subscriptions s on s.name = n.name`,
      [subscriptionNames],
    );
  try {
    let stableSince: number | null = null;
    await waitUntil(
      'every subscription to reach the head of the log',
      async () => {
        const rows = await lagging().catch(() => null);
        const caughtUp = rows !== null && rows.every((r) => r.caught_up === true);
        if (!caughtUp) stableSince = null;
        else stableSince ??= Date.now();
        // Caught up for 300 ms: nothing the reactor reacts to is still on its way.
        return stableSince !== null && Date.now() - stableSince >= 300;
      },
      { timeoutMs, intervalMs: 50 },
    );
    return null;
  } catch {
    const rows = await lagging().catch(() => []);
    const head = await cluster
      .query<{ head: string }>(
        database,
        `select transaction_id::text || '.' || global_position::text as head from incentable_events
         order by transaction_id desc, global_position desc limit 1`,
      )
      .catch(() => []);
    return `subscriptions did not reach the head of the log (${head[0]?.head ?? '?'}) within ${timeoutMs} ms: ${rows
      .filter((r) => r.caught_up !== true)
      .map((r) => `${r.name} at ${r.at ?? 'no checkpoint'}`)
      .join(', ')}`;
  }
};

/** Each subscription's checkpoint as `commit.prepare` text (null: none saved yet). */
export const checkpoints = async (
  cluster: Cluster,
  database: string,
): Promise<Map<string, string | null>> => {
  const rows = await cluster.query<{ name: string; at: string | null }>(
    database,
    `select n.name, s.commit_position::text || '.' || s.prepare_position::text as at
       from unnest($1::text[]) as n(name) left join incentable_subscriptions s using (name)`,
    [subscriptionNames],
  );
  return new Map(rows.map((r) => [r.name, r.at]));
};

/** How many events of the log each subscription has not handled yet. */
export const backlog = async (cluster: Cluster, database: string): Promise<Map<string, number>> => {
  const rows = await cluster.query<{ name: string; behind: number }>(
    database,
    `select n.name, (select count(*)::int from incentable_events e
                      where s.name is null
                         or (e.transaction_id, e.global_position) > (s.commit_position, s.prepare_position))
                    as behind
       from unnest($1::text[]) as n(name) left join incentable_subscriptions s using (name)`,
    [subscriptionNames],
  );
  return new Map(rows.map((r) => [r.name, r.behind]));
};

/**
 * Ms until every subscription is being projected again, or null when one is not within
 * `timeoutMs`: under load, how long until some process took over what a dead (or cut off)
 * process held. A subscription counts once its checkpoint has moved, or, with batch traces
 * (`startedBatches`: the subscriptions with a traced batch begun after a given time), once a
 * batch of it began: a long first batch after a backlog is a taken-over subscription too. The
 * names still waiting are in `stuck`.
 */
export const timeToAdvance = async (options: {
  cluster: Cluster;
  database: string;
  timeoutMs: number;
  startedBatches?: (since: number) => Set<string>;
}): Promise<{ ms: number | null; stuck: string[] }> => {
  const { cluster, database, timeoutMs } = options;
  const began = Date.now();
  const before = await checkpoints(cluster, database);
  let stuck: string[] = [...before.keys()];
  try {
    await waitUntil(
      'every subscription to move on',
      async () => {
        const now = await checkpoints(cluster, database).catch(() => null);
        const started = options.startedBatches?.(began) ?? new Set<string>();
        if (now)
          stuck = [...now]
            .filter(([name, at]) => at === before.get(name) && !started.has(name))
            .map(([n]) => n);
        return stuck.length === 0;
      },
      { timeoutMs, intervalMs: 50 },
    );
    return { ms: Date.now() - began, stuck: [] };
  } catch {
    return { ms: null, stuck };
  }
};

/** `npx incentable audit verify --json` against the database, as an operator would run it. */
const auditVerify = async (databaseUrl: string): Promise<{ ok: boolean; detail: string }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/incentable.js', 'audit', 'verify', '--json'], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        DATABASE_URL: databaseUrl,
        NODE_ENV: 'test',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.once('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      type Report = { ok?: boolean; breaks?: unknown[] };
      let report: Report | null = null;
      try {
        report = JSON.parse(line) as Report;
      } catch {
        report = null;
      }
      resolve({
        ok: code === 0 && report?.ok === true,
        detail: `exit ${code}: ${out.slice(-1500)}`,
      });
    });
  });

/**
 * The promises of the fault model, checked after a scenario has ended its faults and its load:
 * every acknowledged award applied exactly once (events, ledger, balances), nothing applied that
 * was not asked for, every points.awarded webhook delivered at least once with one envelope id
 * and identical, verified bytes, no idempotency key left pending, `audit verify` clean, and no
 * process exited that the test did not stop.
 */
export const reconcile = async (options: {
  cluster: Cluster;
  database: string;
  programId: string;
  client: CarefulClient;
  recorder: WebhookRecorder;
  services: readonly ServiceProcess[];
  /** How long the projections and webhooks may take to catch up once the load stopped. */
  settleTimeoutMs?: number;
}): Promise<Reconciliation> => {
  const { cluster, database, programId, client, recorder, services } = options;
  const settleTimeoutMs = options.settleTimeoutMs ?? 30_000;
  const problems: string[] = [];
  const query = <R extends object>(text: string, values: unknown[] = []) =>
    cluster.query<R & Record<string, unknown>>(database, text, values);

  const lag = await settleSubscriptions(cluster, database, settleTimeoutMs);
  if (lag) problems.push(lag);

  const records = [...client.records.values()];
  const acknowledged = records.filter((r) => r.final?.status === 201);
  const unresolved = records.filter((r) => r.final === null);
  const refused: Record<string, number> = {};
  for (const r of records)
    if (r.final && r.final.status !== 201) {
      const label = `${r.final.status} ${r.final.code ?? ''}`.trim();
      refused[label] = (refused[label] ?? 0) + 1;
    }
  if (unresolved.length > 0) {
    const last = (r: AwardRecord) => r.attempts.at(-1);
    problems.push(
      `${unresolved.length} of ${records.length} awards never got a definite answer; their last answers: ${first(
        unresolved,
      )
        .map(
          (r) =>
            `${r.key}: ${last(r)?.status ?? '-'} ${last(r)?.code ?? ''} after ${r.attempts.length} attempts`,
        )
        .join('; ')}`,
    );
  }
  for (const label of Object.keys(refused))
    if (!label.startsWith('409 concurrency_conflict'))
      problems.push(`${refused[label]} awards were refused with ${label}`);

  const events = await query<EventRow>(
    `select data->>'reference' as reference, data->>'transactionId' as transaction_id,
            data->>'memberId' as member_id, (data->>'points')::int as points
       from incentable_events where type = 'PointsAwarded' and metadata->>'programId' = $1`,
    [programId],
  );
  const byKey = new Map<string, EventRow[]>();
  for (const e of events) {
    if (e.reference === null) continue;
    byKey.set(e.reference, [...(byKey.get(e.reference) ?? []), e]);
  }
  const appliedTwice = [...byKey].filter(([, rows]) => rows.length > 1);
  if (appliedTwice.length > 0)
    problems.push(
      `${appliedTwice.length} keys were applied more than once: ${first(appliedTwice)
        .map(([key, rows]) => `${key} x${rows.length}`)
        .join(', ')}`,
    );
  const ackLost = acknowledged.filter((r) => !byKey.has(r.key));
  if (ackLost.length > 0)
    problems.push(
      `${ackLost.length} acknowledged (201) awards are not in the event log: ${first(ackLost)
        .map((r) => r.key)
        .join(', ')}`,
    );
  const wrongTransaction = acknowledged.filter(
    (r) =>
      byKey.has(r.key) &&
      !byKey.get(r.key)!.some((e) => e.transaction_id === r.final!.transactionId),
  );
  if (wrongTransaction.length > 0)
    problems.push(
      `${wrongTransaction.length} acknowledged awards answered another transaction id than the one applied`,
    );
  const unacknowledged = [...byKey.keys()].filter(
    (key) => client.records.get(key)?.final?.status !== 201,
  );
  if (unacknowledged.length > 0) {
    const unknown = unacknowledged.filter((key) => !client.records.has(key));
    const unanswered = unacknowledged.filter((key) => client.records.get(key)?.final === null);
    problems.push(
      `${unacknowledged.length} awards were applied without a 201 reaching the client (${unanswered.length} of them unresolved, ${unknown.length} with a key the client never sent): ${first(
        unacknowledged,
      ).join(', ')}`,
    );
  }
  const unattributed = events.filter((e) => e.reference === null).length;
  if (unattributed > 0)
    problems.push(`${unattributed} PointsAwarded events carry no reference (key)`);

  const ledger = await query<{ rows: number; transactions: number; events: number }>(
    `select count(*)::int as rows, count(distinct transaction_id)::int as transactions,
            (select count(*)::int from incentable_events
              where type = 'PointsAwarded' and metadata->>'programId' = $1) as events
       from rm_ledger where program_id = $1 and kind = 'awarded'`,
    [programId],
  );
  const l = ledger[0]!;
  if (l.rows !== l.transactions || l.rows !== l.events)
    problems.push(
      `the ledger has ${l.rows} award rows for ${l.transactions} distinct transactions; the log has ${l.events} awards`,
    );
  const ledgerKeys = await query<{ reference: string; n: number }>(
    `select reference, count(*)::int as n from rm_ledger
      where program_id = $1 and kind = 'awarded' group by reference having count(*) > 1`,
    [programId],
  );
  if (ledgerKeys.length > 0)
    problems.push(
      `${ledgerKeys.length} keys have more than one ledger row: ${first(ledgerKeys)
        .map((r) => `${r.reference} x${r.n}`)
        .join(', ')}`,
    );

  const expectedBalance = new Map<string, number>();
  for (const r of acknowledged)
    expectedBalance.set(r.memberId, (expectedBalance.get(r.memberId) ?? 0) + r.points);
  const appliedBalance = new Map<string, number>();
  for (const e of events)
    appliedBalance.set(e.member_id, (appliedBalance.get(e.member_id) ?? 0) + e.points);
  const balances = await query<{ member_id: string; balance: number }>(
    `select member_id, balance::int as balance from rm_members where program_id = $1`,
    [programId],
  );
  const wrongBalances = balances.filter(
    (b) => b.balance !== (expectedBalance.get(b.member_id) ?? 0),
  );
  if (wrongBalances.length > 0)
    problems.push(
      `${wrongBalances.length} of ${balances.length} members' balances differ from the sum of their acknowledged awards: ${first(
        wrongBalances,
      )
        .map(
          (b) =>
            `${b.member_id} has ${b.balance}, acknowledged ${expectedBalance.get(b.member_id) ?? 0}, applied ${appliedBalance.get(b.member_id) ?? 0}`,
        )
        .join('; ')}`,
    );

  const pending = await query<{ key: string; age_s: number }>(
    `select key, extract(epoch from now() - created_at)::int as age_s
       from idempotency_keys where status = 'pending' order by created_at`,
  );
  if (pending.length > 0) {
    const appliedPending = pending.filter((p) => byKey.has(p.key)).length;
    problems.push(
      `${pending.length} idempotency keys are left 'pending' (${appliedPending} of them applied, ${pending.length - appliedPending} not): ${first(
        pending,
      )
        .map((p) => `${p.key} (${p.age_s} s old)`)
        .join(', ')}`,
    );
  }

  // Webhooks: every transaction in the log, including ones the client was never told about.
  const expected = new Set(events.map((e) => e.transaction_id));
  const arrivedFor = () =>
    new Set(
      recorder.deliveries
        .filter((d) => d.type === 'points.awarded' && d.transactionId !== null)
        .map((d) => d.transactionId!),
    );
  await waitUntil(
    'every points.awarded webhook to arrive',
    () => {
      const arrived = arrivedFor();
      return [...expected].every((id) => arrived.has(id));
    },
    { timeoutMs: settleTimeoutMs, intervalMs: 50 },
  ).catch(() => {});
  const deliveries = recorder.deliveries.filter((d) => d.type === 'points.awarded');
  const arrived = arrivedFor();
  const missing = [...expected].filter((id) => !arrived.has(id));
  if (missing.length > 0) {
    const rows = await query<{ status: string; n: number; err: string | null }>(
      `select d.status, count(*)::int as n, max(d.last_error) as err from webhook_deliveries d
         join webhook_envelopes e using (envelope_id)
        where e.type = 'points.awarded' and e.body::jsonb->'data'->>'transaction_id' = any($1)
        group by d.status`,
      [missing],
    ).catch(() => []);
    problems.push(
      `${missing.length} of ${expected.size} points.awarded webhooks never arrived (their delivery rows: ${JSON.stringify(rows)})`,
    );
  }
  const invented = [...arrived].filter((id) => !expected.has(id));
  if (invented.length > 0)
    problems.push(
      `${invented.length} points.awarded webhooks arrived for transactions not in the log`,
    );
  const byTransaction = new Map<string, typeof deliveries>();
  for (const d of deliveries)
    if (d.transactionId)
      byTransaction.set(d.transactionId, [...(byTransaction.get(d.transactionId) ?? []), d]);
  let duplicates = 0;
  const manyIds: string[] = [];
  const changedBytes: string[] = [];
  for (const [id, received] of byTransaction) {
    duplicates += received.length - 1;
    if (new Set(received.map((d) => d.envelopeId)).size !== 1) manyIds.push(id);
    if (received.some((d) => !d.raw.equals(received[0]!.raw))) changedBytes.push(id);
  }
  if (manyIds.length > 0)
    problems.push(
      `${manyIds.length} transactions arrived under more than one envelope id: ${first(manyIds).join(', ')}`,
    );
  if (changedBytes.length > 0)
    problems.push(
      `${changedBytes.length} transactions arrived with differing bytes: ${first(changedBytes).join(', ')}`,
    );
  const unverified = deliveries.filter((d) => !d.verified).length;
  if (unverified > 0) problems.push(`${unverified} webhooks failed signature verification`);

  const audit = await auditVerify(cluster.url(database));
  if (!audit.ok) problems.push(`audit verify is not clean: ${audit.detail}`);

  const crashes = services.flatMap((s) => s.describeCrashes());
  problems.push(...crashes);

  return {
    awardsSent: records.length,
    acknowledged: acknowledged.length,
    refused,
    unresolved: unresolved.length,
    applied: events.length,
    appliedTwice: appliedTwice.length,
    appliedUnacknowledged: unacknowledged.length,
    pendingKeys: pending.length,
    webhooksReceived: deliveries.length,
    duplicatesDelivered: duplicates,
    webhooksMissing: missing.length,
    auditClean: audit.ok,
    crashes: crashes.length,
    startFailures: services.reduce((n, s) => n + s.startFailures.length, 0),
    problems,
  };
};

/** One line of counts for a test's diagnostics or the soak's report. */
export const summarize = (r: Reconciliation): string =>
  `sent ${r.awardsSent}, acknowledged ${r.acknowledged}, refused ${JSON.stringify(r.refused)}, unresolved ${r.unresolved}, applied ${r.applied} (twice ${r.appliedTwice}, unacknowledged ${r.appliedUnacknowledged}), pending keys ${r.pendingKeys}, webhooks ${r.webhooksReceived} (duplicates ${r.duplicatesDelivered}, missing ${r.webhooksMissing}), audit ${r.auditClean ? 'clean' : 'NOT clean'}, crashes ${r.crashes} (restarts that failed to start ${r.startFailures})`;
