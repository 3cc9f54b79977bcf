import type { Kysely } from 'kysely';
import { readGlobalPage, type AuditRow, type GlobalPageOptions } from '../audit/events.ts';
import { verifyChains, type VerifyOptions, type VerifyReport } from '../audit/verify.ts';
import type { Database } from './schema.ts';

/**
 * The auditors' reads of the event log, as the API's audit routes make them: a page of events in
 * the global order, and the hash chains' check. Read-only.
 */
export const auditQueries = (db: Kysely<Database>) => ({
  /** One page of events in the global order (adapters/audit/events.ts's readGlobalPage). */
  eventsPage: (options: GlobalPageOptions): Promise<AuditRow[]> => readGlobalPage(db, options),

  /** The hash chains' check, breaks reported as found (adapters/audit/verify.ts's verifyChains). */
  verifyChains: (options: VerifyOptions): Promise<VerifyReport> => verifyChains(db, options),
});

export type AuditQueries = ReturnType<typeof auditQueries>;
