import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { onProcessEnd } from './cleanup.ts';
import { freePort } from './ports.ts';
import { waitUntil } from './wait.ts';

const root = new URL('../../../', import.meta.url).pathname;

/** Characters of output kept per process run; older output is dropped, the tail is what matters. */
const outputLimit = 2_000_000;

/** What main.ts prints once startRuntime returned: with the api role, else at LOG_LEVEL info. */
const startedPattern = /Incentable is listening on|"msg":"incentable started"/;

/** Shared by every process of one installation: they must read each other's secrets. */
export type Installation = {
  /** DATABASE_URL without application_name; each process adds its own name. */
  databaseUrl: string;
  rootKey: string;
  /** WEBHOOK_SECRET_KEY: endpoint secrets are encrypted with it, so all processes share it. */
  secretKey: string;
  dataDir: string;
};

export const newInstallation = (databaseUrl: string, dataDir: string): Installation => ({
  databaseUrl,
  // The root key must be at least 16 characters; 24 random bytes give 32 base64url ones.
  rootKey: randomBytes(24).toString('base64url'),
  secretKey: randomBytes(32).toString('base64'),
  dataDir,
});

/** One exit of the service process. */
export type Exit = {
  /** Date.now() of the exit. */
  at: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Whether the test asked for it (kill, stop); an exit it did not ask for is a crash. */
  expected: boolean;
  /** Whether the run had finished starting (it printed that it listens, or "started"). */
  started: boolean;
  /** The last output of the run that ended. */
  outputTail: string;
};

export type ServiceOptions = {
  installation: Installation;
  /** Label in reports, and the PostgreSQL application_name of every connection it opens. */
  name: string;
  /** ROLES; every role by default. */
  roles?: string;
  /** More environment (or overrides), e.g. INCENTABLE_TRACE_BATCHES. */
  env?: Record<string, string>;
  /**
   * Start it again after an exit the test did not cause, as a process manager would, so the
   * scenario goes on and the reconciliation can still say what else broke. The crash is kept.
   */
  restartOnCrash?: boolean;
};

/**
 * Environment of the service under test. Unknown keys are ignored by the config schema, so a key
 * that only a fixed product reads (IDEMPOTENCY_LEASE_MS) is harmless to today's code.
 */
const serviceEnv = (options: ServiceOptions, port: number): Record<string, string> => {
  const url = new URL(options.installation.databaseUrl);
  url.searchParams.set('application_name', options.name);
  const roles = options.roles ?? 'api,projector,scheduler,delivery';
  return {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'test',
    DATABASE_URL: url.toString(),
    PORT: String(port),
    HOST: '127.0.0.1',
    ROLES: roles,
    ADMIN_API_KEY: options.installation.rootKey,
    WEBHOOK_SECRET_KEY: options.installation.secretKey,
    DATA_DIR: options.installation.dataDir,
    // Without the api role nothing is printed at warn: readiness is the "incentable started" line.
    LOG_LEVEL: roles.split(',').includes('api') ? 'warn' : 'info',
    WEBHOOK_TIMEOUT_MS: '1000',
    WEBHOOK_RETRY_SCHEDULE: '0s,1s,1s,1s,1s',
    // The issue asks for a lease of at most 30 s on an idempotency record whose request died;
    // the suite shortens it so a taken-over key answers within its drain time.
    IDEMPOTENCY_LEASE_MS: '3000',
    SHUTDOWN_TIMEOUT_MS: '5000',
    ...options.env,
  };
};

/**
 * The real service as `npm start` runs it (`node --import tsx adapters/main.ts`), in a child
 * process the test can kill -9 and start again on the same port. Its output is kept; every exit
 * is recorded, and one the test did not cause counts as a crash.
 */
export class ServiceProcess {
  readonly name: string;
  readonly port: number;
  readonly baseUrl: string;
  readonly exits: Exit[] = [];
  /** Date.now() at each start. */
  readonly starts: number[] = [];
  readonly #options: ServiceOptions;
  readonly #env: Record<string, string>;
  #child: ChildProcess | null = null;
  #output = '';
  #expectExit = false;
  #closed = false;
  #restarting: Promise<void> | null = null;

  private constructor(options: ServiceOptions, port: number) {
    this.name = options.name;
    this.port = port;
    this.baseUrl = `http://127.0.0.1:${port}`;
    this.#options = options;
    this.#env = serviceEnv(options, port);
  }

  /** Starts the process and waits until it is ready. */
  static async start(options: ServiceOptions): Promise<ServiceProcess> {
    const service = new ServiceProcess(options, await freePort());
    service.spawn();
    await service.ready();
    return service;
  }

  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  get hasApi(): boolean {
    return this.#env.ROLES!.split(',').includes('api');
  }

  /** Exits the test did not cause, of runs that had started. */
  get crashes(): Exit[] {
    return this.exits.filter((e) => !e.expected && e.started);
  }

  /**
   * Exits the test did not cause, of runs that never finished starting: a restart after a crash
   * that met the database still down. Reported, not counted as crashes: a start that cannot
   * reach its database may stop with a message.
   */
  get startFailures(): Exit[] {
    return this.exits.filter((e) => !e.expected && !e.started);
  }

  /** This run's output so far. */
  get output(): string {
    return this.#output;
  }

  alive(): boolean {
    return this.#child !== null && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  spawn(): void {
    if (this.alive()) throw new Error(`${this.name} is already running`);
    this.#output = '';
    this.#expectExit = false;
    const child = spawn(process.execPath, ['--import', 'tsx', 'adapters/main.ts'], {
      cwd: root,
      env: this.#env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      this.#output += chunk.toString('utf8');
      if (this.#output.length > outputLimit) this.#output = this.#output.slice(-outputLimit / 2);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('exit', (code, signal) => {
      const expected = this.#expectExit || this.#closed;
      const started = startedPattern.test(this.#output);
      this.exits.push({
        at: Date.now(),
        code,
        signal,
        expected,
        started,
        outputTail: this.#output.slice(-6000),
      });
      if (!expected && this.#options.restartOnCrash !== false && !this.#closed) {
        // A start that failed is retried less eagerly: the database may still be down.
        const delayMs = started ? 200 : 1000;
        this.#restarting = new Promise<void>((resolve) => setTimeout(resolve, delayMs)).then(() => {
          this.#restarting = null;
          if (!this.#closed && !this.alive()) this.spawn();
        });
      }
    });
    // A child is not ended with its parent: a cancelled run must not leave services running.
    const unregister = onProcessEnd(() => child.kill('SIGKILL'));
    child.once('exit', unregister);
    this.#child = child;
    this.starts.push(Date.now());
  }

  /**
   * Resolves when the service answers: /readyz 200 with the api role, else the "incentable
   * started" log line; a crash being restarted is waited out. Fails with the output when it
   * exits otherwise or takes longer than `timeoutMs`.
   */
  async ready(timeoutMs = 60_000): Promise<void> {
    await waitUntil(
      `${this.name} to be ready`,
      async () => {
        if (!this.alive()) {
          // A crash being restarted (restartOnCrash) is waited out; any other exit fails now.
          if (this.#restarting) return false;
          throw new Error(`${this.name} exited while starting:\n${this.#output.slice(-4000)}`);
        }
        if (!this.hasApi) return startedPattern.test(this.#output);
        const response = await fetch(`${this.baseUrl}/readyz`, {
          signal: AbortSignal.timeout(2000),
        }).catch(() => null);
        return response?.status === 200;
      },
      {
        timeoutMs,
        intervalMs: 25,
        describe: () => [...this.describeCrashes(), this.#output.slice(-4000)].join('\n'),
      },
    );
  }

  /** Sends `signal` (SIGKILL by default) as an expected exit and waits for the process to end. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.#restarting;
    const child = this.#child;
    if (!child || !this.alive()) return;
    this.#expectExit = true;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }

  /** kill -9, then start again and wait until ready; returns ms from the kill to ready. */
  async killAndRestart(): Promise<number> {
    const killedAt = Date.now();
    await this.kill('SIGKILL');
    this.spawn();
    await this.ready();
    return Date.now() - killedAt;
  }

  /** Ends the process for good (SIGKILL: the reconciliation has read what it needs). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#restarting;
    await this.kill('SIGKILL');
  }

  /** Waits until a process the test did not close is running and ready (crashes restarted). */
  async up(timeoutMs = 60_000): Promise<void> {
    if (this.#closed || (!this.alive() && !this.#restarting)) return;
    await this.ready(timeoutMs);
  }

  /** Every crash for a failure message: the first three with their output, the rest in a line. */
  describeCrashes(): string[] {
    return this.crashes.map((e, i) => {
      const head = `${this.name} exited unexpectedly at ${new Date(e.at).toISOString()} (code ${e.code}, signal ${e.signal})`;
      if (i < 3) return `${head}; its last output:\n${e.outputTail.slice(-2500)}`;
      const line = e.outputTail.split('\n').find((l) => /error/i.test(l)) ?? '';
      return `${head}: ${line.trim()}`;
    });
  }
}
