/**
 * One award's webhook, stage by stage: subscribes to the runtime's diagnostics channels
 * (adapters/timeline.ts) while the latency run goes, and splits each delivery's 201 -> receiver
 * time into the stages docs/architecture.md describes. Only for the runtime in this process.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { envelopeIdFor } from '../../delivery/envelope.ts';
import {
  timelineChannels,
  type AppendedMessage,
  type BatchMessage,
  type HandedOverMessage,
  type PostedMessage,
  type RecordedMessage,
} from '../../adapters/timeline.ts';
import { quantile } from '../eventstore/support.ts';

type EventTimes = {
  transactionId: string;
  appendedAt?: number;
  wokeAt?: number;
  readAt?: number;
  committedAt?: number;
  handedOverAt?: number;
  /** The last endpoint's POST start and end, and the last record. */
  postedAt?: number;
  answeredAt?: number;
  recordedAt?: number;
};

export type Stage = { stage: string; p50: number; p99: number; n: number };

export const recordTimeline = () => {
  const appendedAt = new Map<string, number>();
  const byEnvelope = new Map<string, EventTimes>();
  const names = {
    appended: timelineChannels.appended.name,
    batch: timelineChannels.batch.name,
    handedOver: timelineChannels.handedOver.name,
    posted: timelineChannels.posted.name,
    recorded: timelineChannels.recorded.name,
  };
  const onAppended = (message: unknown) => {
    const m = message as AppendedMessage;
    for (const id of m.eventIds) appendedAt.set(id, m.at);
  };
  const onBatch = (message: unknown) => {
    const m = message as BatchMessage;
    if (m.subscription !== 'webhooks') return;
    for (const event of m.events) {
      const transactionId = (event.data as { transactionId?: unknown }).transactionId;
      if (event.type !== 'PointsAwarded' || typeof transactionId !== 'string') continue;
      byEnvelope.set(envelopeIdFor(event.id), {
        transactionId,
        ...(appendedAt.has(event.id) && { appendedAt: appendedAt.get(event.id) }),
        wokeAt: m.wokeAt,
        readAt: m.readAt,
        committedAt: m.committedAt,
      });
    }
  };
  const onHandedOver = (message: unknown) => {
    const m = message as HandedOverMessage;
    for (const id of m.envelopeIds) {
      const times = byEnvelope.get(id);
      if (times) times.handedOverAt ??= m.at;
    }
  };
  const onPosted = (message: unknown) => {
    const m = message as PostedMessage;
    const times = byEnvelope.get(m.envelopeId);
    if (!times) return;
    times.postedAt = Math.max(times.postedAt ?? 0, m.startedAt);
    times.answeredAt = Math.max(times.answeredAt ?? 0, m.endedAt);
  };
  const onRecorded = (message: unknown) => {
    const m = message as RecordedMessage;
    for (const id of m.envelopeIds) {
      const times = byEnvelope.get(id);
      if (times) times.recordedAt = Math.max(times.recordedAt ?? 0, m.at);
    }
  };
  const handlers: [string | symbol, (message: unknown) => void][] = [
    [names.appended, onAppended],
    [names.batch, onBatch],
    [names.handedOver, onHandedOver],
    [names.posted, onPosted],
    [names.recorded, onRecorded],
  ];
  for (const [name, handler] of handlers) subscribe(name, handler);
  return {
    /**
     * Stops listening and returns each stage's p50 / p99 in ms. `responded` and `received` are
     * the bench's own times by transaction id: the 201 reaching the client, and the last
     * endpoint's receiver getting the POST.
     */
    stop(responded: Map<string, number>, received: Map<string, number>): Stage[] {
      for (const [name, handler] of handlers) unsubscribe(name, handler);
      const stages: [string, (t: EventTimes) => number | undefined][] = [
        [
          'append commit -> 201 at the client',
          (t) => gap(t.appendedAt, responded.get(t.transactionId)),
        ],
        [
          'append commit -> webhook projector wakes (its read begins)',
          (t) => gap(t.appendedAt, t.wokeAt),
        ],
        ['projector read (xmin-guarded page)', (t) => gap(t.wokeAt, t.readAt)],
        [
          'projector batch: envelopes + deliveries inserted, committed',
          (t) => gap(t.readAt, t.committedAt),
        ],
        ['commit -> hand-over reaches the worker', (t) => gap(t.committedAt, t.handedOverAt)],
        ["hand-over -> last endpoint's POST starts", (t) => gap(t.handedOverAt, t.postedAt)],
        [
          'POST start -> receiver has it (last endpoint)',
          (t) => gap(t.postedAt, received.get(t.transactionId)),
        ],
        ['POST answered -> attempt recorded', (t) => gap(t.answeredAt, t.recordedAt)],
        [
          'append commit -> receiver (total)',
          (t) => gap(t.appendedAt, received.get(t.transactionId)),
        ],
      ];
      const times = [...byEnvelope.values()];
      return stages.map(([stage, of]) => {
        const values = times
          .map(of)
          .filter((v): v is number => v !== undefined)
          .sort((a, b) => a - b);
        return { stage, p50: quantile(values, 0.5), p99: quantile(values, 0.99), n: values.length };
      });
    },
  };
};

const gap = (from: number | undefined, to: number | undefined): number | undefined =>
  from === undefined || to === undefined ? undefined : to - from;
