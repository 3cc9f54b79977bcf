import type { Logger } from 'pino';
import { isDatabaseUnavailable } from './db/unavailable.ts';

/**
 * The last line of defence of a long-running process. Every connection and loop handles its own
 * errors; whatever still escapes is logged here instead of ending the process. A promise nobody
 * awaited that rejects is logged and the process carries on. An uncaught exception carries on
 * only when it is a database connection's (the pool or a loop recovers from those); any other
 * leaves the process in a state nobody reasoned about, so it exits 1 with the error in the log.
 */
export const installProcessGuards = (log: Logger): void => {
  process.on('unhandledRejection', (reason) => {
    log.error({ err: reason }, 'unhandled promise rejection (the process carries on)');
  });
  process.on('uncaughtException', (error) => {
    if (isDatabaseUnavailable(error)) {
      log.error({ err: error }, 'database connection error outside any request (recovering)');
      return;
    }
    log.fatal({ err: error }, 'uncaught exception: exiting');
    process.exitCode = 1;
    // pino writes synchronously to stdout by default; exit after the line is out.
    setImmediate(() => process.exit(1));
  });
};
