import { createHash } from 'node:crypto';
import type { EventMetadata } from '../../domain/recordedEvent.ts';

/**
 * JSON with object keys sorted at every depth and no white space: the same value always gives
 * the same bytes, whichever store or driver handed it back.
 */
export const canonicalJson = (value: unknown): string => {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
};

/**
 * The bytes an event's hash covers. The revision is not among them: the chain itself fixes the
 * order, so a swapped pair breaks it as surely as an altered one.
 */
export const canonicalEvent = (event: {
  id: string;
  streamName: string;
  type: string;
  data: unknown;
  metadata: EventMetadata;
}): string =>
  canonicalJson({
    id: event.id,
    stream: event.streamName,
    type: event.type,
    data: event.data,
    metadata: event.metadata,
  });

/** sha256 hex of the previous hash (empty for a stream's first event) then the canonical bytes. */
export const chainHash = (previousHash: string | null, canonical: string): string =>
  createHash('sha256')
    .update(previousHash ?? '')
    .update(canonical)
    .digest('hex');
