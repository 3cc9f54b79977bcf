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
