import { canonicalEvent, chainHash } from '../canonical.ts';
import type { RecordedEvent } from '../../../domain/recordedEvent.ts';
import { ConcurrencyError, type EventStore, type NewEvent } from '../../../application/ports.ts';

export type CopyReport = {
  events: number;
  appended: number;
  alreadyThere: number;
  streams: number;
};

/**
 * Copies a whole history from one store to another in the source's global order: ids, types,
 * data, metadata and revisions as they were, so the target computes the same hash chain (checked
 * against the source's hashes on the way). Consecutive events of one stream go in one append at
 * the exact revision. Resumable: a batch the target already holds (same ids) is skipped, one
 * that conflicts stops the copy.
 */
export const copyHistory = async (options: {
  from: EventStore<unknown>;
  to: EventStore<unknown>;
  pageSize?: number;
  onProgress?: (events: number) => void;
}): Promise<CopyReport> => {
  const report: CopyReport = { events: 0, appended: 0, alreadyThere: 0, streams: 0 };
  const lastHash = new Map<string, string>();
  const flush = async (batch: RecordedEvent[]) => {
    const [first] = batch;
    if (first === undefined) return;
    const events: NewEvent[] = batch.map((e) => ({
      id: e.id,
      type: e.type,
      data: e.data,
      metadata: e.metadata,
    }));
    try {
      await options.to.append(
        first.streamName,
        events,
        first.revision === 0n ? 'no_stream' : first.revision - 1n,
      );
      report.appended += batch.length;
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
      const there = await options.to.readStream(first.streamName, {
        fromRevision: first.revision,
        limit: batch.length,
      });
      if (there.length !== batch.length || there.some((e, i) => e.id !== batch[i]?.id))
        throw new Error(
          `target stream ${first.streamName} at revision ${first.revision} holds other events: refusing to copy over them`,
          { cause: error },
        );
      report.alreadyThere += batch.length;
    }
  };
  let after = null;
  let pending: RecordedEvent[] = [];
  for (;;) {
    const page = await options.from.readAll({ after, limit: options.pageSize ?? 500 });
    if (page.length === 0) break;
    for (const event of page) {
      const previous = lastHash.get(event.streamName) ?? null;
      if (previous === null && event.revision !== 0n && !lastHash.has(event.streamName))
        throw new Error(`source stream ${event.streamName} starts at revision ${event.revision}`);
      if (chainHash(previous, canonicalEvent(event)) !== event.hash)
        throw new Error(
          `source hash chain broken at ${event.streamName}@${event.revision}: run \`incentable audit verify\` first`,
        );
      if (!lastHash.has(event.streamName)) report.streams++;
      lastHash.set(event.streamName, event.hash);
      if (pending[0] !== undefined && pending[0].streamName !== event.streamName) {
        await flush(pending);
        pending = [];
      }
      pending.push(event);
      report.events++;
    }
    after = page.at(-1)?.position ?? after;
    options.onProgress?.(report.events);
  }
  if (pending.length > 0) await flush(pending);
  return report;
};
