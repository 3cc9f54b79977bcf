import { sql, type Kysely } from 'kysely';
import type { ReactorProgress } from '../../application/policyReactor.ts';
import type { Database } from '../db/schema.ts';
import type { Position } from '../../domain/recordedEvent.ts';
import { EsdbEventStore } from './esdb/esdbEventStore.ts';
import { checkpointKey } from './esdb/persistentSubscription.ts';
import type { EventStore } from '../../application/ports.ts';

/**
 * How far the subscription `name` has got against the log's head, read from the database so it
 * holds for a consumer in any process: its checkpoint row (`esdb:<name>` on EventStoreDB, whose
 * positions are $all's) against the last committed event (in `incentable_events`, or $all).
 */
export const reactorProgress = (
  store: EventStore<unknown>,
  db: Kysely<Database>,
  name: string,
): ReactorProgress => {
  const esdb = store instanceof EsdbEventStore ? store : null;
  return {
    head: async () => {
      if (esdb) return esdb.headPosition();
      const row = await db
        .selectFrom('incentable_events')
        .select([
          sql<string>`transaction_id::text`.as('commit'),
          sql<string>`global_position::text`.as('prepare'),
        ])
        .orderBy('transaction_id', 'desc')
        .orderBy('global_position', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row ? { commit: BigInt(row.commit), prepare: BigInt(row.prepare) } : null;
    },
    handled: async (): Promise<Position | null> => {
      const row = await db
        .selectFrom('incentable_subscriptions')
        .select([
          sql<string>`commit_position::text`.as('commit'),
          sql<string>`prepare_position::text`.as('prepare'),
        ])
        .where('name', '=', esdb ? checkpointKey(name) : name)
        .executeTakeFirst();
      return row ? { commit: BigInt(row.commit), prepare: BigInt(row.prepare) } : null;
    },
  };
};
