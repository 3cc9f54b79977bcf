/**
 * A validator for the JSON Schema keywords the catalogue uses, no more: no 2020-12 validator is
 * installed (ajv here is v6, draft-07 only). `unknownKeywords` lets the catalogue test prove the
 * schemas stay inside this subset, so a passing sample really is valid.
 */
type Schema = { readonly [keyword: string]: unknown };

export const supportedKeywords: ReadonlySet<string> = new Set([
  '$schema',
  '$id',
  'title',
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'maxItems',
  'minimum',
  'minLength',
  'minProperties',
  'format',
  'pattern',
  'enum',
]);

export const unknownKeywords = (schema: Schema): string[] => {
  const own = Object.keys(schema).filter((k) => !supportedKeywords.has(k));
  const nested = [
    ...Object.values((schema.properties ?? {}) as Record<string, Schema>),
    ...(schema.items ? [schema.items as Schema] : []),
  ].flatMap(unknownKeywords);
  return [...own, ...nested];
};

const typeOf = (value: unknown): string => {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
};

const formats: Record<string, RegExp> = {
  'date-time': /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/,
  email: /^[^@\s]+@[^@\s]+$/,
};

/** Error paths; empty when `value` is valid. */
export const validate = (schema: Schema, value: unknown, path = '$'): string[] => {
  const errors: string[] = [];
  if (schema.type !== undefined) {
    const allowed = Array.isArray(schema.type)
      ? (schema.type as string[])
      : [schema.type as string];
    const actual = typeOf(value);
    const ok = allowed.includes(actual) || (actual === 'integer' && allowed.includes('number'));
    if (!ok) return [`${path}: ${actual} is not ${allowed.join('|')}`];
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((allowed) => allowed === value)) {
    errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  }
  if (typeof value === 'number' && typeof schema.minimum === 'number' && value < schema.minimum) {
    errors.push(`${path}: below ${schema.minimum}`);
  }
  if (typeof value === 'string') {
    if (typeof schema.minLength === 'number' && value.length < schema.minLength) {
      errors.push(`${path}: shorter than ${schema.minLength}`);
    }
    // ECMA-262 regular expressions, as JSON Schema's `pattern` is (unanchored).
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) {
      errors.push(`${path}: does not match ${schema.pattern}`);
    }
    const format = typeof schema.format === 'string' ? formats[schema.format] : undefined;
    if (format && !format.test(value)) errors.push(`${path}: not a ${String(schema.format)}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) {
      errors.push(`${path}: more than ${schema.maxItems} items`);
    }
    if (schema.items) {
      value.forEach((item, i) =>
        errors.push(...validate(schema.items as Schema, item, `${path}[${i}]`)),
      );
    }
  }
  if (typeOf(value) === 'object') {
    const object = value as Record<string, unknown>;
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    if (
      typeof schema.minProperties === 'number' &&
      Object.keys(object).length < schema.minProperties
    ) {
      errors.push(`${path}: fewer than ${schema.minProperties} properties`);
    }
    for (const key of (schema.required ?? []) as string[]) {
      if (!(key in object)) errors.push(`${path}.${key}: required`);
    }
    for (const [key, child] of Object.entries(object)) {
      const propertySchema = properties[key];
      if (propertySchema) errors.push(...validate(propertySchema, child, `${path}.${key}`));
      else if (schema.additionalProperties === false) errors.push(`${path}.${key}: not allowed`);
    }
  }
  return errors;
};
