import { readFileSync } from 'node:fs';

/** The product version, from package.json (named in the webhook User-Agent and the OpenAPI info). */
export const productVersion: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;
