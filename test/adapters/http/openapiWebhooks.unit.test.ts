import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { openApiDocument } from '../../../adapters/http/api/openapi.ts';
import { subscribableEventTypes } from '../../../delivery/catalogue.ts';
import { validate } from '../../delivery/jsonSchemaSubset.ts';

type WebhookEntry = {
  post: {
    parameters: { name: string; in: string; required: boolean }[];
    requestBody: {
      content: {
        'application/json': {
          schema: { properties: { data: Record<string, unknown> } } & Record<string, unknown>;
          example: { type: string; data: unknown };
        };
      };
    };
  };
};

const document = openApiDocument('1.2.3') as { webhooks: Record<string, WebhookEntry> };

describe("the OpenAPI document's webhooks", () => {
  it('validates as OpenAPI 3.1 (@seriousme/openapi-schema-validator)', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document));
    assert.equal(validator.version, '3.1');
    assert.deepEqual(result.errors ?? [], []);
    assert.equal(result.valid, true);
  });

  it('has one entry per type we send, the opt-in ones included, and no other', () => {
    assert.deepEqual(Object.keys(document.webhooks).sort(), [...subscribableEventTypes].sort());
  });

  it('gives each the signing headers, and an example that is its catalogue sample and fits its schema', () => {
    for (const [type, entry] of Object.entries(document.webhooks)) {
      const names = entry.post.parameters.filter((p) => p.in === 'header').map((p) => p.name);
      for (const name of [
        'X-Incentable-Signature',
        'X-Incentable-Event',
        'X-Incentable-Delivery',
        'webhook-id',
        'webhook-timestamp',
        'webhook-signature',
      ])
        assert.ok(names.includes(name), `${type}: ${name}`);
      const body = entry.post.requestBody.content['application/json'];
      assert.equal(body.example.type, type);
      assert.deepEqual(validate(body.schema.properties.data, body.example.data), [], type);
      // The schema is closed: a field the sample lacks is required, an extra one refused.
      assert.notDeepEqual(
        validate(body.schema.properties.data, { ...(body.example.data as object), extra: 1 }),
        [],
        type,
      );
    }
  });
});
