/**
 * What tracing costs (issue 19): the award API's throughput and the delivery worker's, each with
 * tracing off beside tracing on, in one run on real PostgreSQL. "On" is the product as an operator
 * runs it with OTEL_EXPORTER_OTLP_ENDPOINT set and every other OTEL_* setting at its default
 * (parent-based always-on sampler, batch span processor, OTLP/HTTP protobuf: mode "protobuf"),
 * and the same with OTEL_EXPORTER_OTLP_PROTOCOL=http/json (mode "json"); on request, also
 * protobuf with one trace in ten sampled (mode "sampled": OTEL_TRACES_SAMPLER=
 * parentbased_traceidratio, OTEL_TRACES_SAMPLER_ARG=0.1), and protobuf with an AsyncLocalStorage
 * enabled in the process through the round (mode "als": the promise hooks the SDK's default
 * context manager would turn on, which the product does not register); the spans go to a
 * loopback receiver in a process of its own (otlpSink.ts) that reads and discards them. Each
 * round runs every mode, in an order turned by one each round, so a machine whose load drifts
 * weighs on all of them; the medians, their ratios to off and the bytes exported per op (the
 * warm-up's spans included) are printed.
 *
 * - API: POST /points/award from the load generator of bench/api (a child process, keep-alive
 *   connections, 1,000 members), against one process with the api and projector roles: per award
 *   the request, command and append spans, and the subscriptions' batch and envelope spans.
 * - Delivery: N PointsAwarded events appended (with a traceparent in their metadata when on, as
 *   the API would have written it) and projected into deliveries, then a delivery-only process is
 *   timed from its start until the receiver (bench/webhooks receivers, a child process) holds N:
 *   one attempt span per delivery, each with a link.
 *
 *   npx tsx bench/telemetry/run.ts                  (a warm-up and 4 rounds of each mode, ~6 min)
 *   BENCH_QUICK=1 npx tsx bench/telemetry/run.ts    (smoke run: 1 round each, small sizes)
 *   BENCH_ROUNDS=3 BENCH_SECONDS=10 BENCH_EVENTS=5000 BENCH_CONNECTIONS=32 BENCH_ONLY=api,delivery
 *   BENCH_MODES=off,protobuf,json (the default; off must be among them) BENCH_WARMUP_ROUNDS=1
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { streams } from '../../application/incentives.ts';
import type { NewEvent } from '../../application/ports.ts';
import type { Runtime } from '../../adapters/runtime.ts';
import { newId } from '../../adapters/ids.ts';
import { fmtInt, fmtRatio, printTable, sleep } from '../eventstore/support.ts';
import {
  adminApiKey,
  databases,
  printMachine,
  seedProgram,
  Receivers,
  startBenchRuntime,
  tuningEnv,
} from '../webhooks/harness.ts';
import { runLoad } from '../api/load.ts';
import type { ServiceMessage } from './service.ts';

const quick = process.env.BENCH_QUICK === '1';
const rounds = Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 4));
const seconds = Number(process.env.BENCH_SECONDS ?? (quick ? 2 : 10));
const warmupSeconds = quick ? 0.5 : 2;
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const memberCount = Number(process.env.BENCH_MEMBERS ?? (quick ? 100 : 1_000));
const events = Number(process.env.BENCH_EVENTS ?? (quick ? 300 : 5_000));
const only = (
  process.env.BENCH_ONLY ?? (quick ? 'alternating,delivery' : 'alternating,api,delivery')
).split(',');
/** The alternating sessions' slices: this many of each side, of this many seconds each. */
const slices = Number(process.env.BENCH_SLICES ?? (quick ? 1 : 8));
const sliceSeconds = Number(process.env.BENCH_SLICE_SECONDS ?? (quick ? 1 : 3));
const timeoutMs = 240_000;
const tuning = tuningEnv();
const dbs = databases();

/** Tracing off, or on with the spans exported in one of OTLP/HTTP's two encodings. */
const allModes = ['off', 'protobuf', 'json', 'sampled', 'als'] as const;
const defaultModes = ['off', 'protobuf', 'json'];
type Mode = (typeof allModes)[number];
type TracedMode = Exclude<Mode, 'off'>;
const modes = (process.env.BENCH_MODES ?? defaultModes.join(',')).split(',') as Mode[];
for (const mode of modes)
  if (!allModes.includes(mode)) throw new Error(`BENCH_MODES: unknown mode ${mode}`);
if (!modes.includes('off')) throw new Error('BENCH_MODES must include off');
/**
 * Each round runs every mode once, in the order of the modes and then reversed (off, protobuf,
 * json; json, protobuf, off; ...), so that with an even number of rounds a rate that drifts
 * steadily through the run (the delivery rounds sped up from 3.7k to 5.3k/s over one run, the
 * machine warming) weighs on every mode alike. The warm-up rounds before them (one of each mode
 * by default) are run and not counted.
 */
const warmupRounds = Number(process.env.BENCH_WARMUP_ROUNDS ?? (quick ? 0 : 1));
const ordered = (round: number): Mode[] => (round % 2 === 0 ? modes : [...modes].reverse());
const warmups: Mode[] = Array.from({ length: warmupRounds }, (_, round) => ordered(round)).flat();
const schedule: Mode[] = Array.from({ length: rounds }, (_, round) => ordered(round)).flat();

/** The OTLP sink's child process: where "on" sends its spans, and how much it received. */
const startSink = async () => {
  const child: ChildProcess = fork(fileURLToPath(new URL('./otlpSink.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [{ port }] = (await once(child, 'message')) as [{ port: number }];
  return {
    origin: `http://127.0.0.1:${port}`,
    stats: async () => {
      child.send({ cmd: 'stats' });
      const [stats] = (await once(child, 'message')) as [{ requests: number; bytes: number }];
      return stats;
    },
    stop: async () => {
      child.send({ cmd: 'exit' });
      await once(child, 'exit');
    },
  };
};
type Sink = Awaited<ReturnType<typeof startSink>>;

/** protobuf is the default encoding (OTEL_EXPORTER_OTLP_PROTOCOL unset), as an operator gets it. */
const tracingEnv = (mode: Mode, sink: Sink): Record<string, string> =>
  mode === 'off'
    ? {}
    : {
        OTEL_EXPORTER_OTLP_ENDPOINT: sink.origin,
        ...(mode === 'json' && { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }),
      };

/**
 * Runs one round in its mode's process-wide settings: the SDK reads the sampler from the
 * environment when the provider starts, and an AsyncLocalStorage's hooks stay on from its first
 * use until it is disabled.
 */
const inMode = async <T>(mode: Mode, round: () => Promise<T>): Promise<T> => {
  const saved = {
    OTEL_TRACES_SAMPLER: process.env.OTEL_TRACES_SAMPLER,
    OTEL_TRACES_SAMPLER_ARG: process.env.OTEL_TRACES_SAMPLER_ARG,
  };
  const als = mode === 'als' ? new AsyncLocalStorage<number>() : null;
  if (mode === 'sampled') {
    process.env.OTEL_TRACES_SAMPLER = 'parentbased_traceidratio';
    process.env.OTEL_TRACES_SAMPLER_ARG = '0.1';
  }
  try {
    return await (als ? als.run(1, round) : round());
  } finally {
    als?.disable();
    for (const [key, value] of Object.entries(saved))
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
  }
};

/** A program and its members; with `endpointUrl`, an endpoint for points.awarded too. */
const seedTracedProgram = async (runtime: Runtime, endpointUrl?: string) => {
  const seeded = await seedProgram(runtime, 'Tracing benchmark', memberCount);
  if (endpointUrl)
    await runtime.webhooks.createEndpoint({
      programId: seeded.programId,
      url: endpointUrl,
      events: ['points.awarded'],
    });
  return seeded;
};

/** What `sampled` changes in the environment the SDK reads when its provider starts. */
const samplerEnv = (mode: Mode): Record<string, string> =>
  mode === 'sampled'
    ? { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' }
    : {};

/** A service process of its own (service.ts) in a mode, and what the paired rounds ask it. */
const startService = async (databaseUrl: string, mode: Mode, sink: Sink) => {
  const child = fork(fileURLToPath(new URL('./service.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit');
  const ask = async <T>(message: ServiceMessage): Promise<T> => {
    child.send(message);
    const reply = await Promise.race([
      once(child, 'message'),
      exited.then(() => {
        throw new Error(`service process (${mode}) exited during ${message.cmd}`);
      }),
    ]);
    return (reply as [T])[0];
  };
  const { url } = await ask<{ url: string }>({
    cmd: 'start',
    databaseUrl,
    env: {
      ...tuning,
      ROLES: 'api,projector',
      ADMIN_API_KEY: adminApiKey,
      ...tracingEnv(mode, sink),
    },
    processEnv: samplerEnv(mode),
    asyncLocalStorage: mode === 'als',
  });
  return {
    url,
    cpuUs: async () => (await ask<{ us: number }>({ cmd: 'cpu' })).us,
    caughtUp: () => ask({ cmd: 'caughtUp' }),
    stop: async () => {
      await ask({ cmd: 'stop' });
      child.kill();
      await exited;
    },
  };
};

/**
 * An alternating session: two service processes, tracing off in one and `mode` in the other,
 * each on a fresh database of its own with the same program, loaded in turn: a slice of
 * `sliceSeconds` of awards to one, then to the other, `slices` times each, the order mirrored
 * every pair of slices. Only one is loaded at a time, so each runs at the rate a lone service
 * has (run together on two cores, each fell to a fifth of it and its CPU per award tripled, the
 * projector's batches shrinking), and the machine's drift within the session (same-mode rounds
 * minutes apart differ by up to 20 % here) weighs on both alike. A slice's CPU is the loaded
 * process's own, read when its projections have caught up with the slice's awards.
 */
const alternatingSession = async (mode: TracedMode, sink: Sink) => {
  const sides = ['off', mode] as const;
  const created = await Promise.all(sides.map(() => dbs.create()));
  try {
    const seeded: { programId: string; memberIds: string[] }[] = [];
    for (const db of created) {
      const setup = await startBenchRuntime(db.url, { ...tuning, ROLES: 'api' });
      seeded.push(await seedTracedProgram(setup));
      await setup.stop();
    }
    const services = await Promise.all(
      sides.map((side, i) => startService(created[i]!.url, side, sink)),
    );
    try {
      const slice = async (i: number, forSeconds: number) => {
        const service = services[i]!;
        const cpu0 = await service.cpuUs();
        const result = await runLoad({
          url: service.url,
          key: adminApiKey,
          ...seeded[i]!,
          connections,
          seconds: forSeconds,
          // The load generator's own start (a new process) stays out of the count.
          warmupSeconds: 0.5,
        });
        await service.caughtUp();
        const cpu = (await service.cpuUs()) - cpu0;
        const rejected = result.requests - (result.statuses['201'] ?? 0);
        if (rejected > 0) throw new Error(`awards not 201: ${JSON.stringify(result.statuses)}`);
        return { perS: result.perS, cpuUs: cpu, ops: result.requests };
      };
      for (const i of [0, 1]) await slice(i, warmupSeconds);
      const totals = sides.map(() => ({ cpuUs: 0, ops: 0 }));
      const ratios: number[] = [];
      let exportedBytes = 0;
      for (let pair = 0; pair < slices; pair++) {
        const rates = [0, 0];
        for (const i of pair % 2 === 0 ? [0, 1] : [1, 0]) {
          const before = await sink.stats();
          const result = await slice(i, sliceSeconds);
          if (i === 1) exportedBytes += (await sink.stats()).bytes - before.bytes;
          rates[i] = result.perS;
          totals[i]!.cpuUs += result.cpuUs;
          totals[i]!.ops += result.ops;
        }
        ratios.push(rates[1]! / rates[0]!);
      }
      const [off, on] = totals.map((total) => ({
        cpuUsPer: total.cpuUs / total.ops,
        ops: total.ops,
      }));
      return { ratios, off: off!, on: on!, exportedBytes };
    } finally {
      await Promise.all(services.map((service) => service.stop()));
    }
  } finally {
    for (const db of created) await db.drop();
  }
};

/** One award-API round against a process with the api and projector roles. */
const apiRound = async (
  databaseUrl: string,
  seeded: { programId: string; memberIds: string[] },
  env: Record<string, string>,
) => {
  const runtime = await startBenchRuntime(databaseUrl, {
    ...tuning,
    ROLES: 'api,projector',
    ...env,
  });
  try {
    const cpu0 = process.cpuUsage();
    const result = await runLoad({
      url: runtime.url!,
      key: adminApiKey,
      ...seeded,
      connections,
      seconds,
      warmupSeconds,
    });
    const cpu = process.cpuUsage(cpu0);
    // The projector catches up before the next round, so no round inherits another's backlog.
    await Promise.all([runtime.readModels?.caughtUp(), runtime.webhookProjection?.caughtUp()]);
    const rejected = result.requests - (result.statuses['201'] ?? 0);
    if (rejected > 0) throw new Error(`awards not 201: ${JSON.stringify(result.statuses)}`);
    return {
      perS: result.perS,
      p99: result.p99,
      cpuUsPer: (cpu.user + cpu.system) / result.requests,
      ops: result.requests,
    };
  } finally {
    await runtime.stop();
  }
};

const waitUntil = async (done: () => Promise<boolean>, what: string): Promise<void> => {
  const t0 = performance.now();
  while (!(await done())) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
};

/** N awards appended straight to the store, ten per append, as delivery's input. */
const appendAwards = async (
  runtime: Runtime,
  programId: string,
  memberIds: string[],
  mode: Mode,
) => {
  for (let a = 0; a * 10 < events; a++) {
    const memberId = memberIds[a % memberIds.length]!;
    const at = new Date().toISOString();
    // The context the API's command span would have written (tracing on only).
    const traceparent = `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
    const batch: NewEvent[] = Array.from({ length: Math.min(10, events - a * 10) }, () => ({
      id: randomUUID(),
      type: 'PointsAwarded',
      data: {
        transactionId: newId('transaction'),
        memberId,
        points: 100,
        reason: 'Benchmark',
        reference: null,
        newBalance: 100,
        lifetimePoints: 100,
        at,
      },
      metadata: {
        programId,
        correlationId: randomUUID(),
        causationId: null,
        actor: 'key_benchmark01',
        recordedAt: at,
        ...(mode !== 'off' && { traceparent }),
      },
    }));
    await runtime.store.append(streams.points(programId, memberId), batch, 'any');
  }
};

/** One delivery round on a fresh database: deliveries/s from the worker's start to all held. */
const deliveryRound = async (receivers: Receivers, mode: Mode, env: Record<string, string>) => {
  const db = await dbs.create();
  await receivers.reset({ latency: false });
  const setup = await startBenchRuntime(db.url, { ...tuning, ROLES: 'scheduler' });
  const seeded = await seedTracedProgram(setup, receivers.urls()[0]);
  await appendAwards(setup, seeded.programId, seeded.memberIds, mode);
  await setup.stop();
  const projector = await startBenchRuntime(db.url, { ...tuning, ROLES: 'projector', ...env });
  await waitUntil(async () => {
    const r = await sql<{ n: number }>`select count(*)::int as n from webhook_deliveries`.execute(
      projector.database.db,
    );
    return r.rows[0]!.n >= events;
  }, 'the projector');
  await projector.stop();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const worker = await startBenchRuntime(db.url, { ...tuning, ROLES: 'delivery', ...env });
  try {
    await waitUntil(async () => (await receivers.stats()).total >= events, 'the receiver');
    const elapsedS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return { perS: events / elapsedS, cpuUsPer: (cpu.user + cpu.system) / events, ops: events };
  } finally {
    await worker.stop();
    await db.drop();
  }
};

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

type Figures = Record<Mode, { perS: number; cpuUsPer: number }[]>;
const noFigures = (): Figures => ({ off: [], protobuf: [], json: [], sampled: [], als: [] });

/** One line per traced mode: its median against off's, and the bytes it exported per op. */
const summarise = (
  what: string,
  unit: string,
  figures: Figures,
  exported: Record<TracedMode, { bytes: number; ops: number }>,
): string[][] => {
  const off = median(figures.off.map((f) => f.perS));
  const cpuOff = median(figures.off.map((f) => f.cpuUsPer));
  return modes
    .filter((mode): mode is TracedMode => mode !== 'off')
    .map((mode) => {
      const on = median(figures[mode].map((f) => f.perS));
      const cpuOn = median(figures[mode].map((f) => f.cpuUsPer));
      const { bytes, ops } = exported[mode];
      return [
        what,
        mode,
        `${fmtInt(off)} ${unit}`,
        `${fmtInt(on)} ${unit}`,
        fmtRatio(on / off),
        `${((1 - on / off) * 100).toFixed(1)}%`,
        `${fmtInt(cpuOff)} / ${fmtInt(cpuOn)} us`,
        ops > 0 ? `${fmtInt(bytes / ops)} B` : '',
      ];
    });
};

/**
 * The alternating sessions, one per traced mode, each against an off process of its own: per
 * mode the median of its slices' throughput ratios, the CPU per award over all its slices, and
 * the bytes it exported per award.
 */
const runAlternating = async (sink: Sink, rows: string[][]): Promise<string[][]> => {
  const summary: string[][] = [];
  for (const mode of modes.filter((m): m is TracedMode => m !== 'off')) {
    const { ratios, off, on, exportedBytes } = await alternatingSession(mode, sink);
    const ratio = median(ratios);
    rows.push([
      'API awards, alternating',
      mode,
      `${ratios.length} x 2 slices`,
      ratios.map((r) => fmtRatio(r)).join(' '),
      '',
      `${fmtInt(off.cpuUsPer)} / ${fmtInt(on.cpuUsPer)} us`,
    ]);
    summary.push([
      'API awards, alternating',
      mode,
      '',
      '',
      fmtRatio(ratio),
      `${((1 - ratio) * 100).toFixed(1)}%`,
      `${fmtInt(off.cpuUsPer)} / ${fmtInt(on.cpuUsPer)} us (+${fmtInt(on.cpuUsPer - off.cpuUsPer)})`,
      `${fmtInt(exportedBytes / on.ops)} B`,
    ]);
  }
  return summary;
};

/** Runs the schedule's rounds of one scenario, keeping each round's row and what it exported. */
const runRounds = async (
  what: string,
  unit: string,
  sink: Sink,
  round: (mode: Mode) => Promise<{ perS: number; cpuUsPer: number; ops: number; p99?: number }>,
  rows: string[][],
): Promise<string[][]> => {
  const figures = noFigures();
  const exported = Object.fromEntries(
    allModes.filter((mode) => mode !== 'off').map((mode) => [mode, { bytes: 0, ops: 0 }]),
  ) as Record<TracedMode, { bytes: number; ops: number }>;
  for (const mode of warmups) await inMode(mode, () => round(mode));
  for (const [index, mode] of schedule.entries()) {
    const before = await sink.stats();
    const result = await inMode(mode, () => round(mode));
    const after = await sink.stats();
    figures[mode].push(result);
    if (mode !== 'off') {
      exported[mode].bytes += after.bytes - before.bytes;
      exported[mode].ops += result.ops;
    }
    rows.push([
      what,
      mode,
      String(index + 1),
      `${fmtInt(result.perS)}/s`,
      result.p99 === undefined ? '' : `p99 ${result.p99.toFixed(1)} ms`,
      `${fmtInt(result.cpuUsPer)} us`,
    ]);
  }
  return summarise(what, unit, figures, exported);
};

const main = async (): Promise<void> => {
  await printMachine('Tracing overhead, off beside on (bench/telemetry/run.ts)');
  console.log(
    `settings: BENCH_ROUNDS=${rounds} BENCH_WARMUP_ROUNDS=${warmupRounds} BENCH_SECONDS=${seconds} BENCH_CONNECTIONS=${connections} BENCH_MEMBERS=${memberCount} BENCH_EVENTS=${events} BENCH_ONLY=${only.join(',')} BENCH_MODES=${modes.join(',')} BENCH_SLICES=${slices} BENCH_SLICE_SECONDS=${sliceSeconds}`,
  );
  const sink = await startSink();
  const receivers = await Receivers.start(1);
  const rows: string[][] = [];
  const summary: string[][] = [];
  try {
    if (only.includes('alternating')) summary.push(...(await runAlternating(sink, rows)));
    if (only.includes('api')) {
      // A fresh database each round: on one database the rounds slowed as its tables grew (930
      // to 487 awards/s over nine rounds, the CPU per award up by half), which the modes' order
      // would have turned into overhead.
      const round = async (mode: Mode) => {
        const db = await dbs.create();
        try {
          const setup = await startBenchRuntime(db.url, { ...tuning, ROLES: 'api' });
          const seeded = await seedTracedProgram(setup);
          await setup.stop();
          return await apiRound(db.url, seeded, tracingEnv(mode, sink));
        } finally {
          await db.drop();
        }
      };
      summary.push(...(await runRounds('API awards', 'awards/s', sink, round, rows)));
    }
    if (only.includes('delivery')) {
      const round = (mode: Mode) => deliveryRound(receivers, mode, tracingEnv(mode, sink));
      summary.push(...(await runRounds('deliveries', 'deliveries/s', sink, round, rows)));
    }
    const exported = await sink.stats();
    printTable(
      ['scenario', 'tracing', 'round', 'throughput', 'p99, or on/off', 'CPU of the service per op'],
      rows,
    );
    console.log(
      `OTLP receiver: ${fmtInt(exported.requests)} export requests, ${fmtInt(exported.bytes / 1024)} KiB`,
    );
    printTable(
      [
        'tracing overhead',
        'mode',
        'off (median)',
        'on (median)',
        'on/off',
        'throughput lost',
        'CPU/op off / on',
        'exported per op',
      ],
      summary,
    );
  } finally {
    await receivers.stop();
    await sink.stop();
    await dbs.dropAll();
  }
};

await main();
