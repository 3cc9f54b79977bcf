/**
 * Delivery throughput per destination kind (issue 17, part 4), side by side in one run on real
 * PostgreSQL: one endpoint each of HTTP (a loopback receiver in a child process), RabbitMQ
 * (`amqp://…?exchange=…`, publisher confirms, a queue bound to it) and NATS JetStream
 * (`nats://…?subject=…`, a stream capturing it). For each: N PointsAwarded events are appended
 * and projected into deliveries first; then a process with the delivery role alone drains them,
 * timed from its start until the destination holds all N (receiver count, queue depth, stream
 * size; nothing consumes meanwhile), so only the worker and the destination are measured.
 *
 * `http-ordered` is the HTTP receiver again behind an ordered endpoint (`"ordering": "ordered"`):
 * each member's events one at a time, the members side by side (BENCH_MEMBERS of them, 1,000).
 *
 *   npx tsx bench/destinations/run.ts                 (N = 10,000 per kind)
 *   BENCH_QUICK=1 npx tsx bench/destinations/run.ts   (smoke run, N = 500, 100 members)
 *   BENCH_EVENTS=20000 BENCH_MEMBERS=1000 BENCH_ONLY=http,amqp,nats,http-ordered
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import amqp from 'amqplib';
import { sql } from 'kysely';
import { streams } from '../../application/incentives.ts';
import type { NewEvent } from '../../application/ports.ts';
import type { Runtime } from '../../adapters/runtime.ts';
import { newId } from '../../adapters/ids.ts';
import { fmtInt, printTable, sleep } from '../eventstore/support.ts';
import {
  databases,
  printMachine,
  Receivers,
  seedProgram,
  startBenchRuntime,
  tuningEnv,
} from '../webhooks/harness.ts';

const quick = process.env.BENCH_QUICK === '1';
const events = Number(process.env.BENCH_EVENTS ?? (quick ? 500 : 10_000));
const kinds = (process.env.BENCH_ONLY ?? 'http,amqp,nats,http-ordered').split(',');
const memberCount = Number(process.env.BENCH_MEMBERS ?? (quick ? 100 : 1_000));
const timeoutMs = Number(process.env.BENCH_DRAIN_TIMEOUT_S ?? 240) * 1000;
const tuning = tuningEnv();
const dbs = databases();

type Destination = {
  kind: string;
  url: string;
  ordering?: 'ordered';
  /** Messages the destination holds (or received) so far. */
  count: () => Promise<number>;
  close: () => Promise<void>;
};

const httpDestination = async (): Promise<Destination> => {
  const receivers = await Receivers.start(1);
  await receivers.reset({ latency: false });
  return {
    kind: 'http',
    url: receivers.urls()[0]!,
    count: async () => (await receivers.stats()).total,
    close: () => receivers.stop(),
  };
};

const amqpDestination = async (): Promise<Destination> => {
  const connection = await amqp.connect('amqp://guest:guest@127.0.0.1:5672');
  const channel = await connection.createChannel();
  const exchange = `incentable-bench-${randomBytes(4).toString('hex')}`;
  await channel.assertExchange(exchange, 'topic', { durable: false });
  const { queue } = await channel.assertQueue('', { exclusive: true });
  await channel.bindQueue(queue, exchange, '#');
  return {
    kind: 'amqp',
    url: `amqp://guest:guest@127.0.0.1:5672/?exchange=${exchange}`,
    count: async () => (await channel.checkQueue(queue)).messageCount,
    close: async () => {
      await channel.deleteExchange(exchange);
      await connection.close();
    },
  };
};

const natsDestination = async (): Promise<Destination> => {
  const connection = await natsConnect({ servers: '127.0.0.1:4222' });
  const manager = await jetstreamManager(connection);
  const suffix = randomBytes(4).toString('hex');
  const stream = `INCENTABLE_BENCH_${suffix}`;
  await manager.streams.add({ name: stream, subjects: [`bench_${suffix}.>`] });
  return {
    kind: 'nats',
    url: `nats://127.0.0.1:4222?subject=bench_${suffix}`,
    count: async () => (await manager.streams.info(stream)).state.messages,
    close: async () => {
      await manager.streams.delete(stream);
      await connection.close();
    },
  };
};

/** A program with BENCH_MEMBERS members and one endpoint for points.awarded; N awards appended. */
const seed = async (runtime: Runtime, destination: Destination): Promise<void> => {
  const { programId, memberIds: members } = await seedProgram(
    runtime,
    'Destination benchmark',
    memberCount,
  );
  await runtime.webhooks.createEndpoint({
    programId,
    url: destination.url,
    events: ['points.awarded'],
    ...(destination.ordering && { ordering: destination.ordering }),
  });
  const balances = new Map<string, number>();
  for (let a = 0; a * 10 < events; a++) {
    const memberId = members[a % members.length]!;
    const batch: NewEvent[] = [];
    for (let i = 0; i < Math.min(10, events - a * 10); i++) {
      const balance = (balances.get(memberId) ?? 0) + 100;
      balances.set(memberId, balance);
      const at = new Date().toISOString();
      batch.push({
        id: randomUUID(),
        type: 'PointsAwarded',
        data: {
          transactionId: newId('transaction'),
          memberId,
          points: 100,
          reason: 'Benchmark',
          reference: null,
          newBalance: balance,
          lifetimePoints: balance,
          at,
        },
        metadata: {
          programId,
          correlationId: randomUUID(),
          causationId: null,
          actor: 'key_benchmark01',
          recordedAt: at,
        },
      });
    }
    await runtime.store.append(streams.points(programId, memberId), batch, 'any');
  }
};

const waitFor = async (done: () => Promise<boolean>, what: string): Promise<void> => {
  const t0 = performance.now();
  while (!(await done())) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
};

const measure = async (destination: Destination) => {
  const db = await dbs.create();
  const setup = await startBenchRuntime(db.url, { ...tuning, ROLES: 'scheduler' });
  await seed(setup, destination);
  await setup.stop();
  const projector = await startBenchRuntime(db.url, { ...tuning, ROLES: 'projector' });
  await waitFor(async () => {
    const r = await sql<{ n: number }>`select count(*)::int as n from webhook_deliveries`.execute(
      projector.database.db,
    );
    return r.rows[0]!.n >= events;
  }, 'the projector');
  await projector.stop();
  const t0 = performance.now();
  const worker = await startBenchRuntime(db.url, { ...tuning, ROLES: 'delivery' });
  await waitFor(
    async () => (await destination.count()) >= events,
    `${destination.kind} to hold all`,
  );
  const seconds = (performance.now() - t0) / 1000;
  await waitFor(async () => {
    const r = await sql<{ n: number }>`
      select count(*)::int as n from webhook_deliveries where status = 'delivered'`.execute(
      worker.database.db,
    );
    return r.rows[0]!.n >= events;
  }, 'every attempt recorded');
  const recordedSeconds = (performance.now() - t0) / 1000;
  await worker.stop();
  return { seconds, recordedSeconds, held: await destination.count() };
};

const main = async (): Promise<void> => {
  await printMachine('Delivery throughput per destination kind (bench/destinations/run.ts)');
  console.log(
    `settings: BENCH_EVENTS=${events} BENCH_MEMBERS=${memberCount} BENCH_ONLY=${kinds.join(',')}`,
  );
  const rows: string[][] = [];
  try {
    for (const kind of kinds) {
      const make = {
        http: httpDestination,
        amqp: amqpDestination,
        nats: natsDestination,
        'http-ordered': async () => ({
          ...(await httpDestination()),
          kind,
          ordering: 'ordered' as const,
        }),
      }[kind];
      if (!make) throw new Error(`unknown destination kind ${kind}`);
      const destination = await make();
      try {
        const result = await measure(destination);
        rows.push([
          kind,
          fmtInt(events),
          fmtInt(result.held),
          `${fmtInt(events / result.seconds)}/s`,
          `${fmtInt(events / result.recordedSeconds)}/s`,
        ]);
      } finally {
        await destination.close();
      }
    }
  } finally {
    await dbs.dropAll();
  }
  printTable(
    ['destination', 'deliveries', 'held at the end', 'sent (worker start to all held)', 'recorded'],
    rows,
  );
};

await main();
