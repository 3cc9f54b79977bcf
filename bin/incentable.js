#!/usr/bin/env node
// The CLI entry: runs the TypeScript sources through tsx, as `npm start` does.
import { register } from 'tsx/esm/api';

register();
await import('../adapters/cli/main.ts');
