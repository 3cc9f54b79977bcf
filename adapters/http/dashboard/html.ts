/**
 * The dashboard's only way to make markup. `html` escapes every interpolation unless it is itself
 * the result of `html` (or of `trusted`), so a value from the database can never become markup:
 * an endpoint description of `<script>` renders as text. Arrays render each item and join them;
 * null, undefined and false render nothing, so `${cond && html`...`}` works.
 */

const marker: unique symbol = Symbol('SafeHtml');

/** Markup that is safe to send as is: made by `html`, or declared so with `trusted`. */
export type SafeHtml = { readonly [marker]: string };

type Interpolation =
  SafeHtml | string | number | bigint | boolean | null | undefined | Interpolation[];

const entities: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Escapes text for element content and for quoted attribute values alike. */
export const escapeHtml = (text: string): string =>
  text.replace(/[&<>"'`]/g, (c) => entities[c] ?? c);

const isSafe = (value: unknown): value is SafeHtml =>
  typeof value === 'object' && value !== null && marker in value;

const render = (value: Interpolation): string => {
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  if (isSafe(value)) return value[marker];
  return escapeHtml(String(value));
};

/** Marks a string as markup. Only for text that never holds user or stored data. */
export const trusted = (markup: string): SafeHtml => ({ [marker]: markup });

export const html = (strings: TemplateStringsArray, ...values: Interpolation[]): SafeHtml => {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '');
  });
  return trusted(out);
};

/** The markup as a string, for the response body. */
export const toHtmlString = (markup: SafeHtml): string => markup[marker];
