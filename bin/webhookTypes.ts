// `npm run webhook-types`: writes packages/webhooks/src/events.ts, the receiver package's type of
// every webhook, from the event catalogue (delivery/catalogue.ts: the docs' types, then the
// opt-in ones). test/packages/webhooks/eventTypes.unit.test.ts renders it again in memory and
// fails when the committed file differs, so the catalogue and the published types cannot drift.
//
// The catalogue's data schemas use a small part of JSON Schema; this emits TypeScript for that
// part and throws on any other keyword, so a schema it cannot express stops the generator instead
// of turning into `unknown`. Validation keywords with no TypeScript form (minimum, format, …)
// become the property's doc comment.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { catalogue, optInCatalogue, type JsonSchema } from '../delivery/catalogue.ts';

export const eventTypesPath = fileURLToPath(
  new URL('../packages/webhooks/src/events.ts', import.meta.url),
);

const typeKeywords = new Set(['type', 'properties', 'required', 'additionalProperties', 'items']);
const valueKeywords = new Set(['enum', 'const']);
const annotationKeywords = new Set(['$schema', '$id', 'title', 'description']);
/** Checked at run time by JSON Schema, shown in the doc comment here. */
const constraintKeywords = [
  'format',
  'pattern',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'minProperties',
] as const;
const known = new Set<string>([
  ...typeKeywords,
  ...valueKeywords,
  ...annotationKeywords,
  ...constraintKeywords,
]);

const checkKeywords = (schema: JsonSchema, where: string): void => {
  for (const keyword of Object.keys(schema)) {
    if (!known.has(keyword)) {
      throw new Error(
        `${where}: JSON Schema keyword "${keyword}" has no TypeScript rendering here`,
      );
    }
  }
};

const docOf = (schema: JsonSchema): string | null => {
  const parts = [
    typeof schema.description === 'string' ? schema.description : null,
    ...constraintKeywords
      .filter((keyword) => schema[keyword] !== undefined)
      // "minLength: 1" on every id says nothing a reader of the type needs.
      .filter((keyword) => keyword !== 'minLength' || schema[keyword] !== 1)
      .map((keyword) => {
        const value = schema[keyword];
        return `${keyword}: ${typeof value === 'string' ? value : JSON.stringify(value)}`;
      }),
  ].filter((part): part is string => part !== null);
  return parts.length === 0 ? null : `/** ${parts.join('; ')} */`;
};

const quoteKey = (name: string): string =>
  /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name);

const renderObject = (schema: JsonSchema, where: string): string => {
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required ?? []) as string[]);
  const names = Object.keys(properties);
  if (names.length === 0) return 'Record<string, unknown>';
  const lines = names.map((name) => {
    const property = properties[name] as JsonSchema;
    const doc = docOf(property);
    const optional = required.has(name) ? '' : '?';
    const line = `${quoteKey(name)}${optional}: ${renderSchema(property, `${where}.${name}`)};`;
    return doc === null ? line : `${doc}\n${line}`;
  });
  // An object schema that is not closed lets other fields through; the type says so too.
  if (schema.additionalProperties !== false) lines.push('[field: string]: unknown;');
  return `{\n${lines.join('\n')}\n}`;
};

const renderType = (type: unknown, schema: JsonSchema, where: string): string => {
  switch (type) {
    case 'string':
      return 'string';
    case 'integer':
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'object':
      return renderObject(schema, where);
    case 'array': {
      if (schema.items === undefined) return 'unknown[]';
      const item = renderSchema(schema.items as JsonSchema, `${where}[]`);
      return /^[A-Za-z]+$/.test(item) ? `${item}[]` : `Array<${item}>`;
    }
    default:
      throw new Error(`${where}: JSON Schema type ${JSON.stringify(type)} is not rendered here`);
  }
};

const renderSchema = (schema: JsonSchema, where: string): string => {
  checkKeywords(schema, where);
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  const types = Array.isArray(schema.type) ? (schema.type as unknown[]) : [schema.type];
  if (schema.type === undefined) throw new Error(`${where}: a schema without "type"`);
  return types
    .map((type) => {
      if (schema.enum !== undefined && type !== 'null') {
        return (schema.enum as unknown[]).map((value) => JSON.stringify(value)).join(' | ');
      }
      return renderType(type, schema, where);
    })
    .join(' | ');
};

/** `points.awarded` -> `PointsAwarded`, `member.tier_changed` -> `MemberTierChanged`. */
const typeNameOf = (wireName: string): string =>
  wireName
    .split(/[._]/)
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('');

const header = `// Generated from delivery/catalogue.ts by \`npm run webhook-types\` (bin/webhookTypes.ts): do
// not edit. test/packages/webhooks/eventTypes.unit.test.ts fails when this file and the
// catalogue differ.

/**
 * The body of every webhook, byte for byte in this key order. \`data\` has every field its type
 * lists; webhooks sent before a field was added (and their redeliveries, which repeat the same
 * bytes) lack it (docs/webhooks.md names each).
 */
export type WebhookEnvelope<T extends string, D> = {
  /** The event id (\`evt_…\`): the same on every delivery, redelivery and replay of the event. */
  id: string;
  type: T;
  /** When the fact happened: ISO 8601, UTC, whole seconds, \`Z\`. */
  created_at: string;
  data: D;
};
`;

/** The whole file, formatted as the repository's Prettier settings format it. */
export const renderEventTypes = async (): Promise<string> => {
  const entries = [
    ...catalogue.flatMap((group) => group.entries.map((entry) => ({ ...entry, optIn: false }))),
    ...optInCatalogue.flatMap((group) => group.entries.map((entry) => ({ ...entry, optIn: true }))),
  ];
  const blocks = entries.map(({ type, description, schema, optIn }) => {
    const name = typeNameOf(type);
    const note =
      optIn && !description.includes('Opt-in')
        ? ' Opt-in: sent only to endpoints that list it, never with `*`.'
        : '';
    return [
      `/** \`${type}\` data: ${description.replace(/\.$/, '')}.${note} */`,
      `export type ${name}Data = ${renderSchema(schema, type)};`,
      `/** The \`${type}\` webhook. */`,
      `export type ${name}Event = WebhookEnvelope<${JSON.stringify(type)}, ${name}Data>;`,
    ].join('\n');
  });
  const union = entries.map(({ type }) => `| ${typeNameOf(type)}Event`).join('\n');
  const list = entries.map(({ type }) => JSON.stringify(type)).join(', ');
  const source = `${header}
${blocks.join('\n\n')}

/** Every webhook we send, told apart by \`type\`: \`switch (event.type)\` narrows \`data\`. */
export type WebhookEvent =\n${union};

/** Every event type, the opt-in ones included. */
export type WebhookEventType = WebhookEvent['type'];

/** The webhook of one type: \`WebhookEventOf<'points.awarded'>['data']['new_balance']\`. */
export type WebhookEventOf<T extends WebhookEventType> = Extract<WebhookEvent, { type: T }>;

/** The event types at run time, in the catalogue's order (the opt-in ones last). */
export const webhookEventTypes = [${list}] as const satisfies readonly WebhookEventType[];
`;
  const options = await prettier.resolveConfig(eventTypesPath);
  return prettier.format(source, { ...options, filepath: eventTypesPath });
};

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(eventTypesPath, await renderEventTypes());
  console.log(`wrote ${eventTypesPath}`);
}
