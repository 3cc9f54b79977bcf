import { endpointLabel } from './failureNotice.ts';
import type { FinishedAttempt } from './ports.ts';

/**
 * Sustained failure (the Standard Webhooks recommendation): an endpoint whose every attempt has
 * failed for `disableAfterMs`, with at least `minFailedDeliveries` deliveries failed for good in
 * that time, is disabled (`disabled_code` `sustained_failure`); a warning goes out once half of
 * that time has passed. Any delivered attempt starts the clock again. `disableAfterMs` 0: off.
 */
export type EndpointHealthPolicy = { disableAfterMs: number; minFailedDeliveries: number };

export const defaultEndpointHealthPolicy: EndpointHealthPolicy = Object.freeze({
  disableAfterMs: 5 * 24 * 60 * 60 * 1000,
  minFailedDeliveries: 10,
});

/** What one recorded batch changes in an endpoint's failure clock. */
export type HealthChange = {
  endpointId: string;
  /** A delivered attempt is in the batch: the clock starts again from what came after it. */
  reset: boolean;
  /** The first failed attempt after the last success in the batch (or in it at all); null: none. */
  firstFailureAt: Date | null;
  /** Deliveries failed for good after that success (or in the batch at all). */
  failedDeliveries: number;
};

/**
 * Each endpoint's change from a batch of recorded attempts, in the order they started: what
 * follows its last delivered attempt counts, what came before is wiped by that success.
 */
export const healthChanges = (batch: readonly FinishedAttempt[]): HealthChange[] => {
  const byEndpoint = new Map<string, FinishedAttempt[]>();
  for (const f of batch) {
    const list = byEndpoint.get(f.delivery.endpoint_id);
    if (list) list.push(f);
    else byEndpoint.set(f.delivery.endpoint_id, [f]);
  }
  const changes: HealthChange[] = [];
  for (const [endpointId, attempts] of byEndpoint) {
    attempts.sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime());
    let reset = false;
    let firstFailureAt: Date | null = null;
    let failedDeliveries = 0;
    for (const f of attempts) {
      if (f.decision.status === 'delivered') {
        reset = true;
        firstFailureAt = null;
        failedDeliveries = 0;
        continue;
      }
      firstFailureAt ??= f.startedAt;
      if (f.decision.status === 'failed') failedDeliveries += 1;
    }
    changes.push({ endpointId, reset, firstFailureAt, failedDeliveries });
  }
  return changes;
};

/** An endpoint past a threshold, as the record transaction read it. */
export type FailingEndpoint = {
  endpointId: string;
  programId: string;
  url: string;
  failingSince: Date;
  failedDeliveries: number;
};

const day = 24 * 60 * 60 * 1000;
const span = (ms: number): string =>
  ms >= day
    ? `${+(ms / day).toFixed(1)} days`
    : ms >= 3_600_000
      ? `${+(ms / 3_600_000).toFixed(1)} hours`
      : `${Math.round(ms / 1000)} seconds`;

/** The warning at half time and the notice of the disabling, as emailed. */
export const endpointHealthNotice = (
  kind: 'endpoint_failing' | 'endpoint_disabled',
  endpoint: FailingEndpoint,
  policy: EndpointHealthPolicy,
  now: Date,
  publicUrl: string,
): { subject: string; text: string } => {
  const label = endpointLabel(endpoint.endpointId, endpoint.url);
  const link = `${publicUrl}/dashboard/settings/webhooks/${endpoint.endpointId}`;
  const since = endpoint.failingSince.toISOString();
  const failedFor = span(now.getTime() - endpoint.failingSince.getTime());
  const disableAt = new Date(endpoint.failingSince.getTime() + policy.disableAfterMs);
  if (kind === 'endpoint_failing')
    return {
      subject: `Webhook endpoint failing for ${failedFor}: ${label}`,
      text: [
        `Every delivery attempt to your webhook endpoint has failed since ${since} (${failedFor}).`,
        `If nothing is delivered before ${disableAt.toISOString()}, the endpoint will be disabled (reason: sustained_failure) and no further events will be sent to it.`,
        '',
        `Endpoint: ${label}`,
        `Failing since: ${since}`,
        `Deliveries failed for good so far: ${endpoint.failedDeliveries}`,
        '',
        `Delivery log: ${link}`,
      ].join('\n'),
    };
  return {
    subject: `Webhook endpoint disabled after ${failedFor} of failures: ${label}`,
    text: [
      `Every delivery attempt to your webhook endpoint has failed since ${since} (${failedFor}, ${endpoint.failedDeliveries} deliveries failed for good), so it has been disabled (reason: sustained_failure).`,
      'No further events will be sent to it until you re-enable it; replay the events since then to catch up.',
      '',
      `Endpoint: ${label}`,
      `Failing since: ${since}`,
      `Deliveries failed for good: ${endpoint.failedDeliveries}`,
      '',
      `Re-enable and replay: ${link}`,
    ].join('\n'),
  };
};
