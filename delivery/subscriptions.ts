/**
 * Which endpoint wants which event: an endpoint's `events` lists the types it subscribes to, or
 * holds `*` for every type (docs/webhooks.md). The projector asks it of each new envelope; a
 * replay by time range asks `subscribedTypes` for the filter of its INSERT ... SELECT.
 */
export const allEvents = '*';

export const subscribes = (events: readonly string[], type: string): boolean =>
  events.includes(allEvents) || events.includes(type);

/** The types an endpoint subscribes to, or 'every' when it takes every type. */
export const subscribedTypes = (events: readonly string[]): readonly string[] | 'every' =>
  events.includes(allEvents) ? 'every' : events;
