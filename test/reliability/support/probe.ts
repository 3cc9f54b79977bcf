/** One answer of a polled URL: its status, or 0 when nothing answered. */
export type Sample = { at: number; status: number };

export type Probe = { samples: Sample[]; stop: () => Promise<void> };

/** Polls `url` (e.g. /readyz) one request at a time, each at most `intervalMs` after the last. */
export const startProbe = (url: string, intervalMs = 100): Probe => {
  const samples: Sample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const began = Date.now();
      const status = await fetch(url, { signal: AbortSignal.timeout(3000) }).then(
        async (response) => {
          await response.arrayBuffer();
          return response.status;
        },
        () => 0,
      );
      samples.push({ at: Date.now(), status });
      const wait = intervalMs - (Date.now() - began);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  })();
  return {
    samples,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
};
