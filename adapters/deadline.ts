/** A shutdown's deadline: `signal` aborts after `ms`; `clear` lets a finished shutdown cancel it. */
export const startDeadline = (ms: number): { signal: AbortSignal; clear: () => void } => {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
};

/** True when `work` settles before `signal` aborts; false as soon as it aborts. */
export const settlesBefore = (work: Promise<unknown>, signal: AbortSignal): Promise<boolean> => {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => resolve(false);
    signal.addEventListener('abort', onAbort, { once: true });
    const settled = () => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    };
    work.then(settled, settled);
  });
};
