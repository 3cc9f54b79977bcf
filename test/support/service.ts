import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type AddressInfo } from 'node:net';

const root = new URL('../../', import.meta.url).pathname;

/** A port nothing listens on at the moment of asking. */
export const freePort = async (): Promise<number> => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
};

export type Service = {
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr, in order. */
  output: string[];
  /** Resolves with the exit code (null when a signal ended it) and the signal. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

/** The real service, as `npm start` runs it minus npm and the tsx CLI, in a child process. */
export const startService = (env: Record<string, string>): Service => {
  const output: string[] = [];
  const child = spawn(process.execPath, ['--import', 'tsx', 'adapters/main.ts'], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (c: Buffer) => output.push(c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => output.push(c.toString('utf8')));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output, exit };
};

/**
 * The URL a service started with PORT=0 printed once it listened. The kernel picked its port, so
 * no other test can hold it: a port taken with freePort() and bound later can be given to a test
 * running beside this one in between, and then requests reach that test's server instead.
 */
export const listeningUrl = async (
  service: { child: ChildProcess; output: string[] },
  timeoutMs = 120_000,
): Promise<string> => {
  const pattern = /Incentable is listening on (http:\/\/\S+)/;
  let url: string | null = null;
  const deadline = Date.now() + timeoutMs;
  while (url === null) {
    url = pattern.exec(service.output.join(''))?.[1] ?? null;
    if (url) break;
    if (service.child.exitCode !== null || service.child.signalCode !== null)
      throw new Error(`the service exited while starting: ${service.output.join('')}`);
    if (Date.now() > deadline)
      throw new Error(
        `the service did not listen within ${timeoutMs} ms: ${service.output.join('')}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return url;
};

/** The pino lines the service logged, parsed (other output is skipped). */
export const logLines = (service: Service): { msg?: string; [field: string]: unknown }[] =>
  service.output
    .join('')
    .split('\n')
    .flatMap((line) => {
      if (!line.startsWith('{')) return [];
      try {
        return [JSON.parse(line) as { msg?: string }];
      } catch {
        return [];
      }
    });

/** Whether a TCP connection to 127.0.0.1:`port` is refused (rather than accepted). */
export const connectionRefused = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
