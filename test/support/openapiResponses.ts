import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

/**
 * Checks real answers against the OpenAPI document the service serves: the status is declared for
 * the operation, the body validates against the declared schema (ajv, JSON Schema 2020-12,
 * compiled against the document's components), the declared required headers are there and the
 * API's own headers appear only where declared. Records which operation answered which status.
 */

type Header = { required?: boolean; schema?: { enum?: string[] } };
type Media = { schema?: { $ref?: string }; 'x-line-schema'?: { $ref: string } };
type ResponseObject = {
  $ref?: string;
  headers?: Record<string, Header>;
  content?: Record<string, Media>;
};
type OpenApi = {
  paths: Record<string, Record<string, { responses: Record<string, ResponseObject> }>>;
  components: { schemas: Record<string, object>; responses: Record<string, ResponseObject> };
};

/** The part of ajv 8's API used here (ajv 8 is installed only under ajv-formats; ajv is v6). */
type ValidateFunction = ((data: unknown) => boolean) & {
  errors?: { instancePath: string; message?: string }[] | null;
};
type Ajv = {
  addSchema: (schema: object, key: string) => Ajv;
  compile: (schema: object) => ValidateFunction;
};

const load = (): { Ajv2020: new (options: object) => Ajv; addFormats: (ajv: Ajv) => void } => {
  const require = createRequire(import.meta.url);
  const formatsPath = require.resolve('ajv-formats');
  const fromFormats = createRequire(formatsPath);
  return {
    Ajv2020: (fromFormats('ajv/dist/2020') as { default: new (options: object) => Ajv }).default,
    addFormats: (require('ajv-formats') as { default: (ajv: Ajv) => void }).default,
  };
};

/** The API's headers that the document must declare where they are sent. */
const ownHeaders = ['Incentable-Position-Reached', 'Idempotent-Replayed', 'Retry-After'];

const base = 'https://incentable.test/openapi.json';

export type ResponseCheck = {
  /** Validates one answer of `method template`; returns the parsed JSON body (or null). */
  check: (
    method: string,
    template: string,
    response: { status: number; headers: Headers; text: string },
  ) => unknown;
  /** Every `METHOD template` with the statuses it answered. */
  seen: Map<string, Set<number>>;
  /** Every `METHOD template` of the document. */
  operations: string[];
};

export const responseChecker = (document: unknown): ResponseCheck => {
  const doc = document as OpenApi;
  const { Ajv2020, addFormats } = load();
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ $id: base, components: { schemas: doc.components.schemas } }, base);
  const compiled = new Map<string, ValidateFunction>();
  const validator = (ref: string): ValidateFunction => {
    let validate = compiled.get(ref);
    if (!validate) {
      assert.ok(ref.startsWith('#/components/schemas/'), `a body schema is a component: ${ref}`);
      validate = ajv.compile({ $ref: `${base}${ref}` });
      compiled.set(ref, validate);
    }
    return validate;
  };
  const validateBody = (ref: string, body: unknown, what: string) => {
    const validate = validator(ref);
    if (!validate(body))
      assert.fail(
        `${what}: the body does not match ${ref}: ${JSON.stringify(validate.errors?.slice(0, 5))}\n${JSON.stringify(body).slice(0, 2_000)}`,
      );
  };

  const seen = new Map<string, Set<number>>();
  const operations = Object.entries(doc.paths).flatMap(([template, methods]) =>
    Object.keys(methods).map((method) => `${method.toUpperCase()} ${template}`),
  );

  const check: ResponseCheck['check'] = (method, template, response) => {
    const name = `${method.toUpperCase()} ${template}`;
    const what = `${name} -> ${response.status}`;
    const operation = doc.paths[template]?.[method.toLowerCase()];
    assert.ok(operation, `${name} is not in the document`);
    let declared = operation.responses[String(response.status)];
    assert.ok(declared, `${what}: status not declared (body: ${response.text.slice(0, 500)})`);
    if (declared.$ref)
      declared = doc.components.responses[declared.$ref.replace('#/components/responses/', '')];
    assert.ok(declared, `${what}: the response's $ref resolves`);
    (seen.get(name) ?? seen.set(name, new Set()).get(name)!).add(response.status);

    const headers = declared.headers ?? {};
    for (const [header, spec] of Object.entries(headers)) {
      const value = response.headers.get(header);
      if (spec.required) assert.ok(value !== null, `${what}: header ${header} missing`);
      if (value !== null && spec.schema?.enum)
        assert.ok(spec.schema.enum.includes(value), `${what}: ${header}: ${value}`);
    }
    for (const header of ownHeaders)
      if (response.headers.get(header) !== null)
        assert.ok(header in headers, `${what}: sends ${header}, which the document does not name`);

    const content = declared.content;
    if (!content) {
      assert.equal(response.text, '', `${what}: declared without a body`);
      return null;
    }
    const type = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
    const media = content[type];
    assert.ok(media, `${what}: content type ${type} not declared (${Object.keys(content).join()})`);
    if (type === 'application/json') {
      const body = JSON.parse(response.text) as unknown;
      assert.ok(media.schema?.$ref, `${what}: a JSON body has a schema`);
      validateBody(media.schema.$ref, body, what);
      return body;
    }
    if (type === 'application/x-ndjson') {
      const line = media['x-line-schema'];
      assert.ok(line, `${what}: NDJSON names the schema of a line`);
      const lines = response.text.split('\n').filter((l) => l.length > 0);
      assert.ok(lines.length > 0, `${what}: at least the summary line`);
      for (const text of lines) validateBody(line.$ref, JSON.parse(text), what);
      return lines.map((text) => JSON.parse(text) as unknown);
    }
    return response.text;
  };
  return { check, seen, operations };
};
