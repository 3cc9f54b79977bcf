import type { Migration } from 'kysely';
import { eventStoreMigration } from './migrations/001_eventStore.ts';

/** Every migration, in order. Names sort lexically; never rename or reorder a shipped one. */
export const migrations: Record<string, Migration> = {
  '001_event_store': eventStoreMigration,
};
