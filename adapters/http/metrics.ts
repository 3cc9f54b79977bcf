import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MetricsQueries } from '../db/metricsQueries.ts';

/**
 * Prometheus metrics. Counters and the histogram are fed by the delivery worker in this process;
 * the gauges are read from the database at scrape time, so any process reports the cluster's
 * queue and lag.
 */
export const createMetrics = (queries: MetricsQueries, subscriptions: readonly string[]) => {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'incentable_process_' });
  const deliveries = new Counter({
    name: 'incentable_webhook_deliveries_total',
    help: 'Webhook delivery attempts by result (delivered, pending = will retry, failed, gone)',
    labelNames: ['result'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'incentable_webhook_attempt_duration_seconds',
    help: 'Duration of one webhook POST',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  new Gauge({
    name: 'incentable_webhook_due_deliveries',
    help: 'Deliveries due now and not yet sent',
    registers: [registry],
    async collect() {
      this.set(await queries.dueDeliveries());
    },
  });
  new Gauge({
    name: 'incentable_webhook_oldest_due_seconds',
    help: 'Age of the oldest due delivery (0 when none is due)',
    registers: [registry],
    async collect() {
      this.set(Math.max(0, (await queries.oldestDueSeconds()) ?? 0));
    },
  });
  new Gauge({
    name: 'incentable_projection_lag_events',
    help: 'Events recorded but not yet handled by a subscription (capped at 100000)',
    labelNames: ['subscription'],
    registers: [registry],
    async collect() {
      for (const name of subscriptions)
        this.set({ subscription: name }, await queries.projectionLag(name));
    },
  });
  return {
    registry,
    onAttempt: (attempt: { outcome: string; durationMs: number }) => {
      deliveries.inc({ result: attempt.outcome });
      duration.observe(attempt.durationMs / 1000);
    },
  };
};

export type Metrics = ReturnType<typeof createMetrics>;
