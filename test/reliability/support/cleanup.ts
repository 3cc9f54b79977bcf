/**
 * Synchronous clean-ups that must run however the test process ends: normally ('exit'), or on
 * SIGINT/SIGTERM (a cancelled run), which would otherwise leave a postmaster and service
 * processes behind on the machine. Returns a function that unregisters the clean-up.
 */
const cleanups = new Set<() => void>();
let installed = false;

const runAll = () => {
  for (const cleanup of [...cleanups]) {
    cleanups.delete(cleanup);
    try {
      cleanup();
    } catch {
      // Best effort: the next clean-up must still run.
    }
  }
};

export const onProcessEnd = (cleanup: () => void): (() => void) => {
  if (!installed) {
    installed = true;
    process.once('exit', runAll);
    for (const signal of ['SIGINT', 'SIGTERM'] as const)
      process.once(signal, () => {
        runAll();
        process.exit(signal === 'SIGINT' ? 130 : 143);
      });
  }
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
};
