/**
 * Ordered endpoints (docs/webhooks.md, "Ordered endpoints"): on an endpoint with
 * `"ordering": "ordered"`, the events of one subject arrive in the order they happened, and each
 * carries its place in that order (`X-Incentable-Sequence`, from 1 per endpoint and subject).
 */
export const endpointOrderings = ['unordered', 'ordered'] as const;
export type EndpointOrdering = (typeof endpointOrderings)[number];

/**
 * Whose events must stay in order: the member of points and member events, the order of a
 * redemption and its shipping, the leaderboard of leaderboard events. null: the event has none
 * (it is sent as soon as it is due, as on an unordered endpoint).
 */
export const subjectOf = (type: string, data: Readonly<Record<string, unknown>>): string | null => {
  const id = (field: string) => {
    const value = data[field];
    return typeof value === 'string' && value !== '' ? value : null;
  };
  const group = type.slice(0, type.indexOf('.'));
  const [kind, field] =
    group === 'points' || group === 'member'
      ? ['member', 'member_id']
      : group === 'order' || type === 'reward.redeemed'
        ? ['order', 'order_id']
        : group === 'leaderboard'
          ? ['leaderboard', 'leaderboard_id']
          : [null, null];
  if (kind === null) return null;
  const value = id(field);
  return value === null ? null : `${kind}:${value}`;
};

/**
 * Sequence numbers for a batch's new deliveries to ordered endpoints, in the batch's order: each
 * (endpoint, subject) continues from `last` (what it had before the batch; 0 for a new one).
 */
export const assignSequences = <T extends { endpointId: string; subject: string }>(
  rows: readonly T[],
  last: ReadonlyMap<string, bigint>,
): (T & { sequence: bigint })[] => {
  const next = new Map(last);
  return rows.map((row) => {
    const key = sequenceKey(row.endpointId, row.subject);
    const sequence = (next.get(key) ?? 0n) + 1n;
    next.set(key, sequence);
    return { ...row, sequence };
  });
};

export const sequenceKey = (endpointId: string, subject: string): string =>
  `${endpointId}\u0000${subject}`;
