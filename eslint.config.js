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
const noProcessEnv = {
  selector: "MemberExpression[object.name='process'][property.name='env']",
  message: 'Only adapters/config.ts reads process.env.',
};

export default tseslint.config(
  {
    ignores: [
      '.scratch/**',
      'dist/**',
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
  {
    files: ['domain/**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error', noProcessEnv, ...bannedNondeterminism],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '../projections/*',
                '../delivery/*',
                '../adapters/*',
                '**/adapters/**',
                '**/projections/**',
                '**/delivery/**',
              ],
              message: 'domain/ imports domain/ only.',
            },
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
            {
              group: ['**/delivery/**', '**/adapters/**'],
              message: 'projections/ depend on domain/ and kysely only.',
            },
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
            {
              group: ['**/projections/**', '**/adapters/**'],
              message: 'delivery/ depends on domain/ and its own ports only.',
            },
          ],
        },
      ],
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
