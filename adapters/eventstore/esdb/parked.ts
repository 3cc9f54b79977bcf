import { StreamNotFoundError, type EventStoreDBClient } from '@eventstore/db-client';

/** A parked event of a projector's group, as `subscriptions parked` shows it. */
export type ParkedEvent = {
  /** The original event's id, stream and revision, and when and why it was parked. */
  eventId: string | null;
  stream: string;
  revision: bigint | null;
  type: string | null;
  parkedAt: string | null;
  reason: string | null;
};

/** EventStoreDB keeps a group's parked events as links in this stream. */
export const parkedStreamName = (group: string): string =>
  `$persistentsubscription-$all::${group}-parked`;

const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/**
 * The events parked in a group and not yet replayed, oldest first (links resolved). The reason
 * comes from the link's metadata where the server put it there.
 */
export const listParked = async (
  client: EventStoreDBClient,
  group: string,
  limit = 1_000,
): Promise<ParkedEvent[]> => {
  const parked: ParkedEvent[] = [];
  try {
    for await (const resolved of client.readStream(parkedStreamName(group), {
      resolveLinkTos: true,
      maxCount: limit,
    })) {
      const link = resolved.link;
      const target = resolved.event;
      const meta =
        link?.metadata && !(link.metadata instanceof Uint8Array)
          ? (link.metadata as Record<string, unknown>)
          : {};
      const pointer = link ? Buffer.from(link.data).toString('utf8') : '';
      const [revision, ...stream] = pointer.split('@');
      parked.push({
        eventId: target?.id ?? null,
        stream: target?.streamId ?? stream.join('@'),
        revision:
          target?.revision ?? (revision && /^\d+$/.test(revision) ? BigInt(revision) : null),
        type: target?.type ?? null,
        parkedAt: text(meta.added) ?? link?.created.toISOString() ?? null,
        reason: text(meta.reason) ?? text(meta.Reason),
      });
    }
  } catch (error) {
    if (error instanceof StreamNotFoundError) return parked;
    throw error;
  }
  return parked;
};

/** Hands every parked event of the group back to its consumers (ahead of new events). */
export const replayParked = (
  client: EventStoreDBClient,
  group: string,
  stopAt?: number,
): Promise<void> => client.replayParkedMessagesToAll(group, stopAt === undefined ? {} : { stopAt });
