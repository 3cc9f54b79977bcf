import type { Observation } from './client.ts';
import type { Sample } from './probe.ts';

/** A fault the test caused: from its start to when the database answered again (Date.now()). */
export type Outage = { label: string; from: number; to: number };

/** The fault model's bound: loops and requests resume within 5 s of the database answering. */
export const resumeWithinMs = 5_000;

const histogram = (observations: readonly Observation[]): string => {
  const counts = new Map<string, number>();
  for (const o of observations) {
    const label =
      o.status === 0 ? `no answer (${o.code})` : `${o.status}${o.code ? ` ${o.code}` : ''}`;
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return [...counts].map(([label, n]) => `${label}: ${n}`).join(', ') || 'none';
};

/**
 * What the API answered around database faults, against the fault model: no 500 (a 500 says "our
 * bug"), every 503 is `database_unavailable` (or `overloaded`: shed while the pool queue is long,
 * as when retries meet a database that just came back) with Retry-After, the API answers (503) rather than
 * vanishing while the database is away, /readyz says 503 meanwhile, and an award succeeds again
 * within 5 s of the database answering. Returns the problems and, per outage, what was seen.
 */
/** The 503 codes that mean "retry shortly" (docs/api.md). */
const retryCodes = new Set(['database_unavailable', 'overloaded']);

export const checkOutages = (options: {
  outages: readonly Outage[];
  observations: readonly Observation[];
  readiness?: readonly Sample[];
  /** Whether each outage lasted long enough that requests must have met it (a stop, not a kill). */
  expectAnswersDuring: boolean;
}): { problems: string[]; seen: string[]; resumeMs: (number | null)[] } => {
  const { outages, observations } = options;
  const problems: string[] = [];
  const seen: string[] = [];
  const resumeMs: (number | null)[] = [];

  const errors = observations.filter((o) => o.status >= 500 && o.status !== 503);
  if (errors.length > 0)
    problems.push(
      `${errors.length} requests got a ${[...new Set(errors.map((o) => o.status))].join('/')} instead of 503 database_unavailable (first body: ${errors[0]!.excerpt ?? ''})`,
    );
  const bad503 = observations.filter(
    (o) => o.status === 503 && (!retryCodes.has(o.code ?? '') || o.retryAfter === null),
  );
  if (bad503.length > 0)
    problems.push(
      `${bad503.length} 503 answers lack code database_unavailable/overloaded or Retry-After (first: code ${bad503[0]!.code}, Retry-After ${bad503[0]!.retryAfter})`,
    );

  for (const outage of outages) {
    // Answers to requests in flight during the outage, and to those sent in it.
    const during = observations.filter((o) => o.at >= outage.from && o.sentAt <= outage.to);
    seen.push(`${outage.label} (${outage.to - outage.from} ms): ${histogram(during)}`);
    if (options.expectAnswersDuring && !during.some((o) => o.status === 503))
      problems.push(
        `${outage.label}: no request was answered 503 while the database was away (${histogram(during)})`,
      );
    if (options.readiness && options.expectAnswersDuring) {
      const ready = options.readiness.filter((s) => s.at >= outage.from && s.at <= outage.to);
      if (!ready.some((s) => s.status === 503))
        problems.push(
          `${outage.label}: /readyz never said 503 while the database was away (saw ${[...new Set(ready.map((s) => s.status))].join(', ') || 'nothing'})`,
        );
    }
    const firstOk = observations
      .filter((o) => o.status === 201 && o.sentAt >= outage.to)
      .reduce<number | null>((min, o) => (min === null || o.at < min ? o.at : min), null);
    const ms = firstOk === null ? null : firstOk - outage.to;
    resumeMs.push(ms);
    if (ms === null || ms > resumeWithinMs)
      problems.push(
        `${outage.label}: no award succeeded within ${resumeWithinMs} ms of the database answering again (${ms === null ? 'none at all' : `first after ${ms} ms`})`,
      );
  }
  return { problems, seen, resumeMs };
};
