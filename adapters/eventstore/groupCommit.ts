/**
 * Group commit: requests that arrive while earlier batches are being written wait, and go out
 * together in the next batch, one transaction and one commit for all of them.
 *
 * Nothing waits on a timer: a request that finds a free slot leaves at once (a batch of one), so
 * a quiet store answers as fast as before, and a busy one writes as many appends per commit as
 * arrived during the previous commit. `maxInFlight` batches are written at a time, so one
 * batch's statement overlaps another's commit (PostgreSQL flushes concurrent commits together).
 *
 * `write` answers each request of a batch on its own (a value, or the error that request alone
 * failed with); a rejection of `write` itself (the connection dropped, the database is down)
 * fails every request of that batch with it: none of them is known to have committed.
 */
export type GroupCommitOptions<Request, Result> = {
  write: (batch: readonly Request[]) => Promise<ReadonlyArray<Result | Error>>;
  /** Requests per batch at most. */
  maxBatch: number;
  /** Summed `sizeOf` per batch at most (a single larger request still goes, alone). */
  maxBytes: number;
  sizeOf: (request: Request) => number;
  /** Batches being written at once. */
  maxInFlight: number;
};

type Pending<Request, Result> = {
  request: Request;
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
};

export class GroupCommit<Request, Result> {
  readonly #options: GroupCommitOptions<Request, Result>;
  #queue: Pending<Request, Result>[] = [];
  #inFlight = 0;
  /** Batches written and requests in them, for the benchmarks' "appends per commit". */
  batches = 0;
  requests = 0;

  constructor(options: GroupCommitOptions<Request, Result>) {
    if (options.maxBatch < 1 || options.maxInFlight < 1)
      throw new RangeError('maxBatch and maxInFlight must be at least 1');
    this.#options = options;
  }

  submit(request: Request): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      this.#drain();
    });
  }

  #drain(): void {
    while (this.#inFlight < this.#options.maxInFlight && this.#queue.length > 0) {
      void this.#writeBatch(this.#take());
    }
  }

  /** The next batch: FIFO, cut at maxBatch requests or maxBytes. */
  #take(): Pending<Request, Result>[] {
    const { maxBatch, maxBytes, sizeOf } = this.#options;
    let bytes = 0;
    let n = 0;
    for (const pending of this.#queue) {
      if (n === maxBatch) break;
      const size = sizeOf(pending.request);
      if (n > 0 && bytes + size > maxBytes) break;
      bytes += size;
      n++;
    }
    return this.#queue.splice(0, n);
  }

  async #writeBatch(batch: Pending<Request, Result>[]): Promise<void> {
    this.#inFlight++;
    this.batches++;
    this.requests += batch.length;
    try {
      const results = await this.#options.write(batch.map((p) => p.request));
      batch.forEach((pending, i) => {
        const result = results[i];
        if (result === undefined)
          pending.reject(new Error(`group commit: no result for request ${i} of ${batch.length}`));
        else if (result instanceof Error) pending.reject(result);
        else pending.resolve(result);
      });
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    } finally {
      this.#inFlight--;
      this.#drain();
    }
  }
}
