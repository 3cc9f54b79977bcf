// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const bannedNondeterminism = [
  {
    selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']",
    message: 'domain/ is deterministic: the time arrives in the command.',
  },
  {
    selector: "NewExpression[callee.name='Date'][arguments.length=0]",
    message: 'domain/ is deterministic: the time arrives in the command.',
  },
  {
    selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']",
    message: 'domain/ is deterministic: randomness arrives in the command.',
  },
];
/** Imports of the given layers' folders, at any depth. */
const layerBan = (layers, message) => ({
  group: layers.flatMap((layer) => [`../${layer}/*`, `**/${layer}/**`]),
  message,
});
/** Packages that do I/O: the adapters' business. */
const ioPackages = ['pg', 'express', 'undici', 'node:http', 'node:https', 'nodemailer', 'node:fs'];
const noProcessEnv = {
  selector: "MemberExpression[object.name='process'][property.name='env']",
  message: 'Only adapters/config.ts reads process.env.',
};

export default tseslint.config(
  {
    ignores: [
      '.scratch/**',
      'dist/**',
      'packages/*/dist/**',
      'node_modules/**',
      'data/**',
      'test-results/**',
      'eslint.config.js',
      'test/run.mjs',
      'bin/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-restricted-syntax': [
        'error',
        noProcessEnv,
        { selector: 'TSEnumDeclaration', message: 'Use a union of string literals.' },
      ],
    },
  },
  // The runnable examples are plain Node for readers to copy: linted, without type information.
  {
    files: ['examples/**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { console: 'readonly', process: 'readonly', Buffer: 'readonly' },
    },
    rules: { ...tseslint.configs.disableTypeChecked.rules, 'no-restricted-syntax': 'off' },
  },
  // The layers, innermost first: domain, projections, delivery, application, adapters. A folder
  // imports only the folders before it; projections/ and delivery/ never import each other.
  {
    files: ['domain/**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error', noProcessEnv, ...bannedNondeterminism],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            layerBan(
              ['projections', 'delivery', 'application', 'adapters'],
              'domain/ imports domain/ only.',
            ),
            {
              group: ['zod', 'kysely', 'pg', 'node:*', 'express', 'undici'],
              message: 'domain/ is pure: no I/O, no zod, no database.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['projections/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            layerBan(
              ['delivery', 'application', 'adapters'],
              'projections/ depend on domain/ and kysely only.',
            ),
            { group: ioPackages, message: 'projections/ reach the database through kysely only.' },
          ],
        },
      ],
    },
  },
  {
    files: ['delivery/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            layerBan(
              ['projections', 'application', 'adapters'],
              'delivery/ depends on domain/ and its own ports only.',
            ),
            {
              group: [...ioPackages, 'kysely'],
              message: 'delivery/ is pure: its ports do the I/O.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['application/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            layerBan(['adapters'], 'application/ owns its ports: the adapters implement them.'),
            { group: ioPackages, message: 'application/ does no I/O of its own: use a port.' },
          ],
        },
      ],
    },
  },
  {
    files: ['adapters/http/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                'kysely',
                'pg',
                '**/db/database.ts',
                '**/db/migrations/**',
                '**/db/pglite.ts',
              ],
              message:
                'http/ reaches the database only through application/ or a named store in db/.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['adapters/db/schema.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '../http/**',
                '../webhooks/**',
                '../audit/**',
                '../eventstore/**',
                '../cli/**',
                '../mail/**',
              ],
              message: 'db/schema.ts imports no feature folder: the tables live in db/.',
            },
          ],
        },
      ],
    },
  },
  // The receiver package is published on its own: it imports its own files, node: built-ins and
  // its optional peer express (in src/express.ts, the ./express entry), nothing of the service.
  {
    files: ['packages/webhooks/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: String.raw`^(?!node:|express$|\./[^/]+$)`,
              message: '@incentable/webhooks imports only its own files, node: and express.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['packages/webhooks/src/**/*.ts'],
    ignores: ['packages/webhooks/src/express.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: String.raw`^(?!node:|\./[^/]+$)`,
              message: 'Only src/express.ts imports express: the main entry works without it.',
            },
          ],
        },
      ],
    },
  },
  // Size and shape, as signals (tests and benchmarks aside).
  {
    files: [
      'domain/**/*.ts',
      'projections/**/*.ts',
      'delivery/**/*.ts',
      'application/**/*.ts',
      'adapters/**/*.ts',
      'packages/*/src/**/*.ts',
    ],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'error',
      'max-params': ['error', 5],
      'max-lines': ['error', { max: 600, skipBlankLines: false, skipComments: false }],
      'max-lines-per-function': ['error', { max: 150 }],
    },
  },
  {
    files: ['adapters/config.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['describe', 'it', 'test', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Tests and benchmarks read their own settings (TEST_DATABASE_URL, BENCH_*); the app reads only config.ts.
      'no-restricted-syntax': 'off',
    },
  },
);
