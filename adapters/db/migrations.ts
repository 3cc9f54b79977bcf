import type { Migration } from 'kysely';
import { eventStoreMigration } from './migrations/001_eventStore.ts';
import { readModelsMigration } from './migrations/002_readModels.ts';
import { webhooksMigration } from './migrations/003_webhooks.ts';
import { apiKeysMigration } from './migrations/004_apiKeysAndIdempotency.ts';
import { policyStateMigration } from './migrations/005_policyState.ts';
import { webhookForeignKeysMigration } from './migrations/006_webhookForeignKeys.ts';
import { webhookIndexesMigration } from './migrations/007_webhookIndexes.ts';
import { leasesMigration } from './migrations/008_leases.ts';
import { apiKeyUseMigration } from './migrations/009_apiKeyUse.ts';
import { leaderboardReadModelsMigration } from './migrations/010_leaderboardReadModels.ts';
import { ordersListingMigration } from './migrations/011_ordersListing.ts';
import { reversalReadModelsMigration } from './migrations/012_reversalsAndOverrides.ts';
import { expiryLotsMigration } from './migrations/013_expiryLots.ts';
import { tierReevaluationMigration } from './migrations/014_tierReevaluation.ts';
import { appendBatchMigration } from './migrations/015_appendBatch.ts';
import { destinationCredentialsMigration } from './migrations/016_destinationCredentials.ts';
import { attemptRetryAfterMigration } from './migrations/017_attemptRetryAfter.ts';
import { endpointHealthMigration } from './migrations/018_endpointHealth.ts';
import { endpointRateLimitMigration } from './migrations/019_endpointRateLimit.ts';
import { envelopeStreamMigration } from './migrations/020_envelopeStream.ts';
import { orderedEndpointsMigration } from './migrations/021_orderedEndpoints.ts';
import { auditTreeMigration } from './migrations/022_auditTree.ts';
import { envelopeTraceparentMigration } from './migrations/023_envelopeTraceparent.ts';

/** Every migration, in order. Names sort lexically; never rename or reorder a shipped one. */
export const migrations: Record<string, Migration> = {
  '001_event_store': eventStoreMigration,
  '002_read_models': readModelsMigration,
  '003_webhooks': webhooksMigration,
  '004_api_keys_and_idempotency': apiKeysMigration,
  '005_policy_state': policyStateMigration,
  '006_webhook_foreign_keys': webhookForeignKeysMigration,
  '007_webhook_indexes': webhookIndexesMigration,
  '008_leases': leasesMigration,
  '009_api_key_use': apiKeyUseMigration,
  '010_leaderboard_read_models': leaderboardReadModelsMigration,
  '011_orders_listing': ordersListingMigration,
  '012_reversals_and_overrides': reversalReadModelsMigration,
  '013_expiry_lots': expiryLotsMigration,
  '014_tier_reevaluation': tierReevaluationMigration,
  '015_append_batch': appendBatchMigration,
  '016_destination_credentials': destinationCredentialsMigration,
  '017_attempt_retry_after': attemptRetryAfterMigration,
  '018_endpoint_health': endpointHealthMigration,
  '019_endpoint_rate_limit': endpointRateLimitMigration,
  '020_envelope_stream': envelopeStreamMigration,
  '021_ordered_endpoints': orderedEndpointsMigration,
  '022_audit_tree': auditTreeMigration,
  '023_envelope_traceparent': envelopeTraceparentMigration,
};
