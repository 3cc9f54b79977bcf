import { channel } from 'node:diagnostics_channel';
import type { RecordedEvent } from '../domain/recordedEvent.ts';

/**
 * One event's way from its append to its webhook's recorded attempt, as diagnostics channels
 * (node:diagnostics_channel): nothing is built or published while no one subscribes, so the
 * stages cost nothing in production. bench/webhooks/run.ts subscribes to draw the latency
 * timeline that docs/architecture.md ("Webhook latency, stage by stage") explains.
 *
 * Every time is epoch milliseconds with a fraction (performance.timeOrigin + performance.now()),
 * comparable across processes on one machine.
 */
export const timelineChannels = {
  /** An append committed: its events' ids. */
  appended: channel('incentable:eventstore:appended'),
  /**
   * A subscription batch committed: when the loop woke for it (its read began), when the read
   * returned, when the transaction committed, and its events.
   */
  batch: channel('incentable:subscription:batch'),
  /** A projector's hand-over reached the delivery worker: the rows' envelope ids. */
  handedOver: channel('incentable:delivery:handed-over'),
  /** A POST ended: when it started and ended, and its delivery's envelope id. */
  posted: channel('incentable:delivery:posted'),
  /** A batch of attempts was recorded: their envelope ids. */
  recorded: channel('incentable:delivery:recorded'),
};

export type AppendedMessage = { at: number; eventIds: readonly string[] };
export type BatchMessage = {
  subscription: string;
  wokeAt: number;
  readAt: number;
  committedAt: number;
  events: readonly RecordedEvent[];
};
export type HandedOverMessage = { at: number; envelopeIds: readonly string[] };
export type PostedMessage = { startedAt: number; endedAt: number; envelopeId: string };
export type RecordedMessage = { at: number; envelopeIds: readonly string[] };

/** Epoch milliseconds with a fraction. */
export const timelineNow = (): number => performance.timeOrigin + performance.now();
