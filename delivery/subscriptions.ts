import { optInEventTypes, webhookEventTypes } from './catalogue.ts';

/**
 * Which endpoint wants which event: an endpoint's `events` lists the types it subscribes to, or
 * holds `*` for every type (docs/webhooks.md). The projector asks it of each new envelope; a
 * replay by time range asks `subscribedTypes` for the filter of its INSERT ... SELECT.
 */
export const allEvents = '*';

const optIn: ReadonlySet<string> = new Set(optInEventTypes);

/** `*` is every type of the docs' catalogue; an opt-in type (audit.checkpoint) only by name. */
export const subscribes = (events: readonly string[], type: string): boolean =>
  events.includes(type) || (events.includes(allEvents) && !optIn.has(type));

/** The types an endpoint subscribes to, spelt out: `*` as the catalogue's, beside those named. */
export const subscribedTypes = (events: readonly string[]): readonly string[] =>
  events.includes(allEvents)
    ? [...webhookEventTypes, ...events.filter((type) => type !== allEvents)]
    : events;

/**
 * A live listener's filter (`incentable listen --events points.awarded,member.*`): exact types,
 * `*`, or a group's types as `<group>.*`. True when `pattern` is one of those forms and names at
 * least one type of `types` (the catalogue's).
 */
export const isEventPattern = (pattern: string, types: readonly string[]): boolean =>
  pattern === allEvents ||
  (pattern.endsWith('.*')
    ? types.some((type) => type.startsWith(pattern.slice(0, -1)))
    : types.includes(pattern));

export const matchesPatterns = (patterns: readonly string[], type: string): boolean =>
  patterns.some(
    (pattern) =>
      (pattern === allEvents && !optIn.has(type)) ||
      pattern === type ||
      (pattern.endsWith('.*') && type.startsWith(pattern.slice(0, -1))),
  );
