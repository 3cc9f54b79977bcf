import type { ColumnType, Generated } from 'kysely';

/** Written as a Date, read back as a Date (pg parses timestamptz). */
type Timestamp = ColumnType<Date, Date, Date>;
type NullableTimestamp = ColumnType<Date | null, Date | null | undefined, Date | null>;

export type DeliveryStatus = 'pending' | 'delivering' | 'delivered' | 'failed' | 'gone';

/** Tables of adapters/db/migrations/003_webhooks.ts. */
export type WebhookTables = {
  webhook_endpoints: {
    seq: Generated<number>;
    endpoint_id: string;
    program_id: string;
    url: string;
    /** A broker URL's user-info, encrypted (migrations/016_destinationCredentials.ts). */
    url_userinfo_encrypted: ColumnType<string | null, string | null | undefined, string | null>;
    description: Generated<string>;
    /** Subscribed webhook types, or ['*'] for every type. */
    events: string[];
    enabled: Generated<boolean>;
    secret_encrypted: string;
    previous_secret_encrypted: string | null;
    previous_secret_expires_at: NullableTimestamp;
    disabled_reason: string | null;
    /** migrations/018_endpointHealth.ts */
    disabled_code: ColumnType<string | null, string | null | undefined, string | null>;
    failing_since: NullableTimestamp;
    failed_deliveries: Generated<number>;
    failure_warned_at: NullableTimestamp;
    /** migrations/019_endpointRateLimit.ts; null: no limit. */
    rate_limit_per_second: ColumnType<number | null, number | null | undefined, number | null>;
    /** migrations/021_orderedEndpoints.ts */
    ordering: Generated<'unordered' | 'ordered'>;
    created_at: Timestamp;
    updated_at: Timestamp;
  };
  webhook_envelopes: {
    seq: Generated<number>;
    envelope_id: string;
    program_id: string;
    type: string;
    body: string;
    source_event_id: string | null;
    is_test: Generated<boolean>;
    created_at: Timestamp;
    /** migrations/023_envelopeTraceparent.ts: the command's span context; null when untraced. */
    traceparent: ColumnType<string | null, string | null | undefined, string | null>;
  };
  webhook_deliveries: {
    seq: Generated<number>;
    delivery_id: string;
    program_id: string;
    endpoint_id: string;
    envelope_id: string;
    series: Generated<number>;
    status: DeliveryStatus;
    attempts: Generated<number>;
    next_attempt_at: NullableTimestamp;
    lease_expires_at: NullableTimestamp;
    lease_owner: string | null;
    last_status: number | null;
    last_error: string | null;
    /** migrations/021_orderedEndpoints.ts; bigint, read back as text. */
    subject: ColumnType<string | null, string | null | undefined, string | null>;
    sequence: ColumnType<string | null, string | null | undefined, string | null>;
    created_at: Timestamp;
    updated_at: Timestamp;
  };
  webhook_subject_sequences: {
    endpoint_id: string;
    subject: string;
    last_sequence: string;
  };
  webhook_attempts: {
    delivery_id: string;
    attempt_number: number;
    started_at: Timestamp;
    duration_ms: number;
    http_status: number | null;
    response_body: string | null;
    error_kind: string | null;
    error_message: string | null;
    /** migrations/017_attemptRetryAfter.ts (pg returns bigint as text). */
    retry_after_s: ColumnType<string | null, number | null | undefined, number | null>;
  };
  webhook_rate_buckets: {
    endpoint_id: string;
    tokens: number;
    refreshed_at: Timestamp;
  };
  webhook_notifications: {
    notification_id: string;
    program_id: string;
    /** null: about the endpoint, not one delivery (kind endpoint_failing, endpoint_disabled). */
    delivery_id: string | null;
    kind: Generated<string>;
    endpoint_id: string;
    to_address: string | null;
    subject: string;
    body: string;
    sent_at: NullableTimestamp;
    error: string | null;
    created_at: Timestamp;
  };
};
