/**
 * One service process of bench/telemetry/run.ts's paired rounds: the runtime with the api and
 * projector roles, started in a child process of its own so that two of them (tracing off and
 * on) can run at the same time against their own databases, and each process's CPU is its own.
 * Driven over IPC: `start` (the database, the config's env, the process env the OpenTelemetry SDK
 * reads at start, and whether to enable an AsyncLocalStorage first), `cpu` (this process's CPU
 * so far, µs), `caughtUp` (the projections have handled every event), `stop`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Runtime } from '../../adapters/runtime.ts';
import { startBenchRuntime } from '../webhooks/harness.ts';

export type ServiceMessage =
  | {
      cmd: 'start';
      databaseUrl: string;
      env: Record<string, string>;
      processEnv: Record<string, string>;
      asyncLocalStorage: boolean;
    }
  | { cmd: 'cpu' }
  | { cmd: 'caughtUp' }
  | { cmd: 'stop' };

let runtime: Runtime | null = null;

const handle = async (message: ServiceMessage): Promise<unknown> => {
  switch (message.cmd) {
    case 'start': {
      Object.assign(process.env, message.processEnv);
      // Its hooks stay on for the life of the process once it has been entered.
      if (message.asyncLocalStorage) new AsyncLocalStorage<number>().enterWith(1);
      runtime = await startBenchRuntime(message.databaseUrl, message.env);
      return { url: runtime.url };
    }
    case 'cpu': {
      const { user, system } = process.cpuUsage();
      return { us: user + system };
    }
    case 'caughtUp':
      await Promise.all([runtime?.readModels?.caughtUp(), runtime?.webhookProjection?.caughtUp()]);
      return {};
    case 'stop':
      await runtime?.stop();
      return {};
  }
};

process.on('message', (message: ServiceMessage) => {
  handle(message).then(
    (reply) => {
      process.send?.(reply);
      if (message.cmd === 'stop') process.disconnect();
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});
