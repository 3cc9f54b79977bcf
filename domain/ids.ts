/**
 * Ids carry the prefixes of the public docs (`mem_abc123`). The random part is made outside the
 * domain (adapters/ids.ts, from crypto) and arrives in commands; here we only name and check them.
 */
export const idPrefixes = {
  program: 'prg',
  member: 'mem',
  transaction: 'txn',
  reward: 'rwd',
  order: 'ord',
  leaderboard: 'lb',
  reservation: 'rsv',
  event: 'evt',
  apiKey: 'key',
  webhookEndpoint: 'we',
  webhookDelivery: 'wdl',
} as const;

export type IdKind = keyof typeof idPrefixes;

/** 1-64 characters of [A-Za-z0-9] after the prefix and underscore. */
const idBody = /^[A-Za-z0-9]{1,64}$/;

export const isId = (kind: IdKind, value: string): boolean => {
  const prefix = `${idPrefixes[kind]}_`;
  return value.startsWith(prefix) && idBody.test(value.slice(prefix.length));
};

/** Stream names follow `<aggregate>-<programId>-<id>` (DESIGN.md). */
export const streamName = (aggregate: string, programId: string, id: string): string =>
  `${aggregate}-${programId}-${id}`;
