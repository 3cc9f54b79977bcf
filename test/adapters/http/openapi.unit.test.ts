import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openApiDocument, operations } from '../../../adapters/http/api/openapi.ts';
import { apiRouters, type ApiDeps } from '../../../adapters/http/api/app.ts';

type Layer = { route?: { path: string; methods: Record<string, boolean> } };

describe('the OpenAPI document', () => {
  it('documents exactly the routes the router serves', () => {
    // Building the router touches none of its dependencies; handlers never run here.
    const routers = apiRouters({} as ApiDeps) as unknown as {
      stack: Layer[];
    }[];
    const served = routers
      .flatMap((router) => router.stack)
      .filter((layer) => layer.route)
      .flatMap((layer) =>
        Object.keys(layer.route!.methods).map(
          (method) => `${method} /v1${layer.route!.path.replace(/:(\w+)/g, '{$1}')}`,
        ),
      )
      .sort();
    const documented = operations.map((op) => `${op.method} ${op.path}`).sort();
    assert.deepEqual(documented, served);
  });

  it('documents the broker destinations an endpoint URL may name', () => {
    const document = openApiDocument('1.2.3') as {
      components: { schemas: Record<string, { properties: { url: { description?: string } } }> };
    };
    for (const name of ['CreateWebhookEndpoint', 'UpdateWebhookEndpoint']) {
      const description = document.components.schemas[name]!.properties.url.description ?? '';
      assert.match(description, /amqp\(s\):\/\/.*exchange=/, name);
      assert.match(description, /nats:\/\/.*subject=/, name);
    }
  });

  it('documents as_of on GET member', () => {
    const document = openApiDocument('1.2.3') as {
      paths: Record<string, Record<string, { parameters: { name: string; in: string }[] }>>;
    };
    const names = document.paths[
      '/v1/programs/{programId}/members/{memberId}'
    ]!.get!.parameters.filter((p) => p.in === 'query').map((p) => p.name);
    assert.ok(names.includes('as_of'), names.join(', '));
  });

  it('is OpenAPI 3.1 with every request body schema generated from zod', () => {
    const document = openApiDocument('1.2.3') as {
      openapi: string;
      info: { version: string };
      components: {
        schemas: Record<
          string,
          { properties?: Record<string, unknown>; additionalProperties?: boolean }
        >;
      };
    };
    assert.equal(document.openapi, '3.1.0');
    assert.equal(document.info.version, '1.2.3');
    const points = document.components.schemas.PointsMovement!;
    assert.deepEqual(points.properties?.points, {
      type: 'integer',
      minimum: 1,
      maximum: 1_000_000_000,
    });
    assert.equal(points.additionalProperties, false);
    for (const op of operations) if (op.body) assert.ok(op.method !== 'get');
  });

  it('documents the query parameters a route validates, from the same schemas', () => {
    type Parameter = { name: string; in: string; schema: Record<string, unknown> };
    const document = openApiDocument('1.2.3') as {
      paths: Record<string, Record<string, { parameters: Parameter[] }>>;
    };
    const query = (path: string) =>
      Object.fromEntries(
        document.paths[path]!.get!.parameters.filter((p) => p.in === 'query').map((p) => [
          p.name,
          p.schema,
        ]),
      );
    const members = query('/v1/programs/{programId}/members');
    assert.deepEqual(Object.keys(members).sort(), [
      'after_position',
      'cursor',
      'email',
      'external_id',
      'limit',
      'q',
      'tier',
    ]);
    assert.deepEqual(members.limit, { type: 'integer', minimum: 1, maximum: 200, default: 50 });
    assert.deepEqual(Object.keys(query('/v1/programs/{programId}/audit/events')).sort(), [
      'after_position',
      'limit',
      'stream',
      'type',
    ]);
    assert.deepEqual(Object.keys(query('/v1/programs/{programId}/leaderboards')), [
      'after_position',
    ]);
  });

  it('documents the 409 member_exists, with the member id, on creating and changing a member', () => {
    type Ref = { $ref: string };
    const document = openApiDocument('1.2.3') as {
      paths: Record<string, Record<string, { responses: Record<string, Ref> }>>;
      components: {
        responses: Record<string, { content: Record<string, { schema: unknown }> }>;
        schemas: Record<string, { properties: { error: { properties: Record<string, unknown> } } }>;
      };
    };
    const conflictOf = (path: string, method: string) =>
      document.paths[path]![method]!.responses['409']!.$ref;
    assert.equal(
      conflictOf('/v1/programs/{programId}/members', 'post'),
      '#/components/responses/MemberExists',
    );
    assert.equal(
      conflictOf('/v1/programs/{programId}/members/{memberId}', 'patch'),
      '#/components/responses/MemberExists',
    );
    assert.equal(
      conflictOf('/v1/programs/{programId}/rewards', 'post'),
      '#/components/responses/Error',
    );
    const { $ref } = document.components.responses.MemberExists!.content['application/json']!
      .schema as Ref;
    const error =
      document.components.schemas[$ref.replace('#/components/schemas/', '')]!.properties.error;
    assert.ok('member_id' in error.properties);
  });
});
