import { randomUUID } from 'node:crypto';
import type { Clock } from '../../application/ports.ts';
import { endpointHealthNotice, type EndpointHealthPolicy } from '../../delivery/endpointHealth.ts';
import { failureNotice } from '../../delivery/failureNotice.ts';
import type { DeliveryDecision } from '../../delivery/outcome.ts';
import type {
  DeliveryQueue,
  FailureNotification,
  FinishedAttempt,
  Mailer,
} from '../../delivery/ports.ts';
import { backoff } from '../backoff.ts';

/** pino-compatible, at its smallest. */
export type WorkerLogger = {
  info(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
};

export type AttemptRecorderOptions = {
  queue: DeliveryQueue;
  clock: Clock;
  /** Base of the dashboard links in notification emails, without a trailing slash. */
  publicUrl: string;
  /** null: notifications are stored (sent_at null) and logged, not mailed. */
  mailer: Mailer | null;
  notificationAddressOf: (programId: string) => Promise<string | null>;
  /** When a failing endpoint is warned about and disabled (delivery/endpointHealth.ts). */
  health: EndpointHealthPolicy;
  logger: WorkerLogger;
  /** Told of every recorded attempt (metrics): the outcome and how long the POST took. */
  onAttempt?: (attempt: { outcome: DeliveryDecision['status']; durationMs: number }) => void;
  /** While true, a batch whose recording failed is tried again. */
  running: () => boolean;
  /** A batch is recorded, or given up on (the worker stopped): its retries can be scheduled. */
  onBatchDone: (batch: readonly FinishedAttempt[]) => void;
};

/** Attempts recorded per statement at most. */
const recordBatch = 500;

/** Tries of a batch whose recording failed, while running, 100 ms doubling to 5 s apart. */
const recordRetries = 20;

/**
 * The delivery worker's recording half: finished attempts wait here and are recorded in batched
 * statements (the sends that finish in one tick share one), then the failure emails they stored
 * are mailed. A slot is free as soon as its POST ends, so sending and recording overlap; the row
 * stays leased until recorded, so no claim takes it again meanwhile.
 */
export class AttemptRecorder {
  readonly #options: AttemptRecorderOptions;
  #finished: FinishedAttempt[] = [];
  #flushing: Promise<void> | null = null;

  constructor(options: AttemptRecorderOptions) {
    this.#options = options;
  }

  /** Attempts waiting to be recorded. */
  get waiting(): number {
    return this.#finished.length;
  }

  add(attempt: FinishedAttempt): void {
    this.#finished.push(attempt);
  }

  /** Records what waits, soon: once the sends that finish in this tick have joined. */
  schedule(): void {
    if (this.#flushing) return;
    this.#flushing = (async () => {
      await new Promise((resolve) => setImmediate(resolve));
      while (this.#finished.length > 0) {
        const batch = this.#finished.splice(0, recordBatch);
        await this.#recordWithRetry(batch);
      }
    })().finally(() => {
      this.#flushing = null;
      if (this.#finished.length > 0) this.schedule();
    });
  }

  /** Resolves when nothing waits to be recorded. */
  async flush(): Promise<void> {
    while (this.#flushing || this.#finished.length > 0) {
      if (!this.#flushing) this.schedule();
      await this.#flushing;
    }
  }

  /**
   * Records a batch; on a database fault keeps trying while running. If the worker stops first,
   * the rows stay leased and any worker retries them after the lease (at least once, never lost).
   */
  async #recordWithRetry(batch: FinishedAttempt[]): Promise<void> {
    const { logger, onAttempt } = this.#options;
    for (let attempt = 0; ; attempt += 1) {
      try {
        await this.#record(batch);
        for (const f of batch)
          onAttempt?.({ outcome: f.decision.status, durationMs: f.result.durationMs });
        break;
      } catch (error) {
        logger.error({ err: error, deliveries: batch.length }, 'recording webhook attempts failed');
        if (!this.#options.running() || attempt >= recordRetries) break;
        const delayMs = backoff({ attempt, baseMs: 100, maxMs: 5_000 });
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
    this.#options.onBatchDone(batch);
  }

  /** One transaction for the batch, then the notifications it stored are mailed. */
  async #record(batch: FinishedAttempt[]): Promise<void> {
    const { clock, queue, notificationAddressOf, publicUrl } = this.#options;
    const now = clock.now();
    const notifications = new Map<string, FailureNotification>();
    const addresses = new Map<string, string | null>();
    const addressOf = async (programId: string) => {
      if (!addresses.has(programId))
        addresses.set(programId, await notificationAddressOf(programId).catch(() => null));
      return addresses.get(programId) ?? null;
    };
    const { health } = this.#options;
    const tracksHealth = health.disableAfterMs > 0;
    for (const f of batch) {
      // A failing endpoint may cross a threshold in this batch: its notice needs the address.
      if (tracksHealth && f.decision.status !== 'delivered') await addressOf(f.delivery.program_id);
      if (f.decision.status !== 'failed' && f.decision.status !== 'gone') continue;
      const programId = f.delivery.program_id;
      notifications.set(f.delivery.delivery_id, {
        notificationId: randomUUID(),
        kind: 'delivery_failed',
        programId,
        deliveryId: f.delivery.delivery_id,
        endpointId: f.delivery.endpoint_id,
        to: await addressOf(programId),
        ...failureNotice(f, publicUrl),
      });
    }
    const stored = await queue.record(batch, notifications, now, {
      policy: health,
      draft: (kind, endpoint) => ({
        notificationId: randomUUID(),
        kind,
        programId: endpoint.programId,
        deliveryId: null,
        endpointId: endpoint.endpointId,
        to: addresses.get(endpoint.programId) ?? null,
        ...endpointHealthNotice(kind, endpoint, health, now, publicUrl),
      }),
    });
    for (const notification of stored) await this.#mail(notification);
  }

  /** After the commit: mail it, or leave sent_at null and log why. Never throws. */
  async #mail(n: FailureNotification): Promise<void> {
    const { mailer, logger } = this.#options;
    const fields = {
      notificationId: n.notificationId,
      deliveryId: n.deliveryId,
      endpointId: n.endpointId,
    };
    if (mailer === null || n.to === null) {
      const reason = mailer === null ? 'no SMTP configured' : 'program has no notification address';
      logger.info({ ...fields, reason }, `webhook notification stored, not mailed: ${n.subject}`);
      return;
    }
    let error: string | null = null;
    try {
      await mailer.send({ to: n.to, subject: n.subject, text: n.text });
    } catch (cause) {
      error = messageOf(cause);
      logger.error({ ...fields, err: cause }, 'sending webhook notification failed');
    }
    try {
      await this.#options.queue.markNotified(
        n.notificationId,
        error === null ? { sentAt: this.#options.clock.now() } : { error },
      );
    } catch (cause) {
      logger.error({ ...fields, err: cause }, 'recording webhook notification failed');
    }
  }
}

export const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);
