import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, configKeys, loadConfig } from '../../adapters/config.ts';

/** Fails with the ConfigError's text, or throws when the environment was accepted. */
const refusal = (env: Record<string, string>): string => {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `not a ConfigError: ${String(error)}`);
    return error.message;
  }
  assert.fail(`accepted ${JSON.stringify(env)}`);
};

/**
 * A bad value for every key (each distinctive, so a message that echoes it is caught). Keys that
 * accept any non-empty text are refused empty; those refusals cannot echo a value.
 */
const badValues: Record<(typeof configKeys)[number], string> = {
  NODE_ENV: 'staging-x1',
  PORT: '70000',
  HOST: '',
  DATABASE_URL: 'mysql://secret-host-x2/db',
  DATABASE_POOL_SIZE: '0',
  DATABASE_QUEUE_TIMEOUT_MS: 'soon-x3',
  DATA_DIR: '',
  ADMIN_API_KEY: 'short-x4',
  METRICS_TOKEN: 'has spaces in it x5',
  LOG_LEVEL: 'verbose-x6',
  PUBLIC_URL: 'not a url x7',
  ROLES: 'api,cook-x8',
  MAX_BODY_BYTES: '12',
  READ_WAIT_TIMEOUT_MS: '-5',
  SHUTDOWN_TIMEOUT_MS: '1.5',
  WEBHOOK_SECRET_KEY: 'not-base64-x9',
  WEBHOOK_TIMEOUT_MS: '99',
  WEBHOOK_RETRY_SCHEDULE: '0s,forever-x10',
  WEBHOOK_DISABLE_AFTER: 'forever-x16',
  WEBHOOK_DISABLE_MIN_FAILED: '0',
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'perhaps-x11',
  WEBHOOK_CONCURRENCY: '0',
  WEBHOOK_PER_ENDPOINT_IN_FLIGHT: '100000',
  SMTP_URL: 'http://mail-x12',
  SMTP_FROM: 'x',
  TRUST_PROXY: 'a;b-x13',
  SUBSCRIPTION_LEASE_MS: '10',
  IDEMPOTENCY_LEASE_MS: '60000000',
  INCENTABLE_TRACE_BATCHES: '',
  EVENTSTORE: 'kafka-x14',
  EVENTSTORE_GROUP_COMMIT: '65',
  EVENTSTORE_GROUP_COMMIT_IN_FLIGHT: '0',
  OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url x19',
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url x20',
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/xml-x23',
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/xml-x22',
  OTEL_SDK_DISABLED: 'perhaps-x21',
  ESDB_CONNECTION_STRING: 'tcp://x15',
  AUDIT_SIGNING_KEY: 'not-a-key-x17',
  AUDIT_ORIGIN: 'has space x18',
  AUDIT_CHECKPOINT_INTERVAL: '0s',
  AUDIT_CHECKPOINT_DIR: '',
};

describe('config', () => {
  it('starts with nothing set, on the embedded database', () => {
    const config = loadConfig({});
    assert.deepEqual(config.database, { kind: 'pglite', dataDir: './data' });
    assert.equal(config.shutdownTimeoutMs, 10_000);
    assert.deepEqual(config.roles, ['api', 'projector', 'scheduler', 'delivery']);
    assert.ok(Object.isFrozen(config));
  });

  for (const key of configKeys) {
    it(`refuses a bad ${key}, naming the key and not the value`, () => {
      const value = badValues[key];
      const message = refusal({ [key]: value });
      assert.match(message, new RegExp(`\\b${key}( \\(entry \\d+\\))?: `));
      if (value.length > 1) assert.ok(!message.includes(value), message);
      // Nothing else is blamed.
      for (const other of configKeys)
        if (other !== key && !key.startsWith(other))
          assert.doesNotMatch(message, new RegExp(`\\b${other}: `));
    });
  }

  it('reads the sustained-failure settings: one duration, and a count', () => {
    assert.deepEqual(loadConfig({}).webhooks.health, {
      disableAfterMs: 5 * 86_400_000,
      minFailedDeliveries: 10,
    });
    const short = loadConfig({ WEBHOOK_DISABLE_AFTER: '90s', WEBHOOK_DISABLE_MIN_FAILED: '2' });
    assert.deepEqual(short.webhooks.health, { disableAfterMs: 90_000, minFailedDeliveries: 2 });
    assert.equal(loadConfig({ WEBHOOK_DISABLE_AFTER: '0s' }).webhooks.health.disableAfterMs, 0);
    assert.match(refusal({ WEBHOOK_DISABLE_AFTER: '1d,2d' }), /WEBHOOK_DISABLE_AFTER: /);
  });

  it('turns tracing on only with an OTLP endpoint, and off again with OTEL_SDK_DISABLED', () => {
    assert.equal(loadConfig({}).tracing, null);
    const endpoint = 'http://127.0.0.1:4318/';
    assert.deepEqual(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }).tracing, {
      url: 'http://127.0.0.1:4318/v1/traces',
      protocol: 'http/protobuf',
    });
    const traces = 'http://127.0.0.1:4318/custom';
    const both = {
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: traces,
    };
    assert.deepEqual(loadConfig(both).tracing, { url: traces, protocol: 'http/protobuf' });
    const json = { ...both, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' };
    assert.equal(loadConfig(json).tracing?.protocol, 'http/json');
    // The traces variable wins over the general one, as the specification says.
    const tracesProtocol = { ...json, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' };
    assert.equal(loadConfig(tracesProtocol).tracing?.protocol, 'http/protobuf');
    assert.match(
      refusal({ ...both, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }),
      /OTEL_EXPORTER_OTLP_PROTOCOL: must be http\/protobuf or http\/json/,
    );
    const disabled = { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SDK_DISABLED: 'true' };
    assert.equal(loadConfig(disabled).tracing, null);
  });

  it('names every bad key at once', () => {
    const message = refusal({ PORT: 'x', LOG_LEVEL: 'loud', ROLES: '' });
    for (const key of ['PORT', 'LOG_LEVEL', 'ROLES']) assert.match(message, new RegExp(`${key}: `));
  });

  it('requires ESDB_CONNECTION_STRING with EVENTSTORE=esdb', () => {
    assert.match(
      refusal({ EVENTSTORE: 'esdb' }),
      /ESDB_CONNECTION_STRING: required when EVENTSTORE=esdb/,
    );
  });

  it('reads values of every kind', () => {
    const config = loadConfig({
      SHUTDOWN_TIMEOUT_MS: '2500',
      DATABASE_URL: 'postgres://u@127.0.0.1/db',
      DATABASE_POOL_SIZE: '4',
      TRUST_PROXY: '2',
      ROLES: ' api , delivery ',
      WEBHOOK_RETRY_SCHEDULE: '0s,5s,1m',
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false',
      NODE_ENV: 'production',
    });
    assert.equal(config.shutdownTimeoutMs, 2_500);
    assert.deepEqual(config.database, {
      kind: 'postgres',
      url: 'postgres://u@127.0.0.1/db',
      poolSize: 4,
    });
    assert.equal(config.trustProxy, 2);
    assert.deepEqual(config.roles, ['api', 'delivery']);
    assert.deepEqual(config.webhooks.delaysS, [0, 5, 60]);
    assert.equal(config.webhooks.allowPrivateNetworks, false);
  });
});
