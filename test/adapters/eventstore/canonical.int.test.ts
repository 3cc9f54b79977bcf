import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { sql } from 'kysely';
import { openDatabase, type DatabaseHandle } from '../../../adapters/db/database.ts';
import { canonicalEvent, chainHash, jsonbText } from '../../../adapters/eventstore/canonical.ts';
import type { EventMetadata } from '../../../domain/recordedEvent.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  type TestDatabase,
} from '../../support/postgres.ts';

/** Any character, with the ones that need escaping, and multi-byte ones for the key order. */
const character = fc.oneof(
  fc.constantFrom('"', '\\', '/', '\n', '\t', '\b', '\f', '\r', '\u0001', '\u001f', '\u007f'),
  fc.constantFrom('\u2028', 'é', 'ß', '€', '中', '😀', 'Z', 'a', '_'),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
);
const json = fc.jsonValue({ stringUnit: character, maxDepth: 4 });

/** Numbers whose JavaScript text has an exponent or many digits, where numeric's differs most. */
const awkwardNumbers = [
  1e21,
  1.5e21,
  -1e21,
  1e-7,
  -1.5e-7,
  1.2345e-10,
  5e-324,
  1.7976931348623157e308,
  2 ** 53 + 2,
  -0,
  0.1,
  123.456,
  1e20,
  0.000001,
];

const metadata: fc.Arbitrary<EventMetadata> = fc.record({
  programId: fc.string({ unit: character }),
  correlationId: fc.uuid(),
  causationId: fc.option(fc.uuid(), { nil: null }),
  actor: fc.string({ unit: character }),
  recordedAt: fc.constant('2026-01-01T00:00:00.000Z'),
});

const canonicalSuite = (name: string, open: () => Promise<DatabaseHandle>) => {
  describe(`canonical bytes against ${name}`, () => {
    let handle: DatabaseHandle;
    before(async () => {
      handle = await open();
    });
    after(async () => {
      await handle?.close();
    });

    /** jsonb's own text for each value, sent as JSON.stringify sends it. */
    const stored = async (values: readonly unknown[]): Promise<string[]> => {
      const result = await sql<{ text: string }>`
        select v::jsonb::text as text from unnest(${values.map((v) => JSON.stringify(v))}::text[])
          with ordinality as u(v, n)
        order by n`.execute(handle.db);
      return result.rows.map((row) => row.text);
    };

    it('writes any JSON value as jsonb prints it', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(json, { minLength: 1, maxLength: 40 }), async (values) => {
          assert.deepEqual(values.map(jsonbText), await stored(values));
        }),
        { numRuns: 60 },
      );
    });

    it('writes numbers as numeric prints them, without exponents', async () => {
      const values = [...awkwardNumbers, awkwardNumbers, { n: awkwardNumbers }];
      assert.deepEqual(values.map(jsonbText), await stored(values));
      assert.equal(jsonbText(1e21), '1000000000000000000000');
      assert.equal(jsonbText(1.5e-7), '0.00000015');
    });

    it('orders keys by UTF-8 length, then bytes, and drops what JSON.stringify drops', async () => {
      const value = {
        zz: 1,
        é: 2,
        b: [undefined, () => 0],
        aaa: 3,
        a: { toJSON: () => 'via toJSON' },
        gone: undefined,
        '😀': true,
        at: new Date(0),
      };
      assert.deepEqual([jsonbText(value)], await stored([value]));
    });

    it('gives an event the bytes incentable_canonical and jsonb_build_object give its row', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.uuid(),
          fc.string({ unit: character }),
          fc.string({ unit: character }),
          json,
          metadata,
          async (id, streamName, type, data, meta) => {
            const result = await sql<{ canonical: string; built: string }>`
              select incentable_canonical(${id}::uuid, ${streamName}, ${type},
                  ${JSON.stringify(data)}::jsonb, ${JSON.stringify(meta)}::jsonb) as canonical,
                jsonb_build_object('id', ${id}::uuid, 'stream', ${streamName}::text,
                  'type', ${type}::text, 'data', ${JSON.stringify(data)}::jsonb,
                  'metadata', ${JSON.stringify(meta)}::jsonb)::text as built`.execute(handle.db);
            const row = result.rows[0]!;
            const ours = canonicalEvent({ id, streamName, type, data, metadata: meta });
            assert.equal(ours, row.canonical);
            assert.equal(ours, row.built);
          },
        ),
        { numRuns: 100 },
      );
    });

    it('matches the hash PostgreSQL chains on append', async () => {
      const id = randomUUID();
      const stream = `canonical-prg_c-${randomUUID().slice(0, 8)}`;
      const meta: EventMetadata = {
        programId: 'prg_c',
        correlationId: id,
        causationId: null,
        actor: 'key_t',
        recordedAt: '2026-01-01T00:00:00.000Z',
      };
      const data = { points: 1e21, tiny: 1.5e-7, note: 'tab\there "quoted" é' };
      await sql`select incentable_append(${stream}, -1, array[${id}]::uuid[], array['Noted'],
          array[${JSON.stringify(data)}]::text[]::jsonb[],
          array[${JSON.stringify(meta)}]::text[]::jsonb[])`.execute(handle.db);
      const appended = await sql<{ hash: string }>`
        select hash from incentable_events where stream_name = ${stream}`.execute(handle.db);
      assert.equal(
        appended.rows[0]!.hash,
        chainHash(
          null,
          canonicalEvent({ id, streamName: stream, type: 'Noted', data, metadata: meta }),
        ),
      );
    });
  });
};

describe('canonical event bytes', () => {
  describe('on PostgreSQL', { skip: skipWithoutPostgres }, () => {
    let database: TestDatabase;
    canonicalSuite('PostgreSQL', async () => {
      database = await createTestDatabase();
      const handle = await openDatabase({ kind: 'postgres', url: database.url });
      return {
        ...handle,
        close: async () => {
          await handle.close();
          await database.drop();
        },
      };
    });
  });
  canonicalSuite('PGlite', () => openDatabase({ kind: 'pglite', dataDir: null }));
});
