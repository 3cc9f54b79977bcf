/**
 * Seeds the audit bench's history (bench/audit/history.ts) into a new database and keeps it, so
 * the CLI can be measured against it again and again without a 35 s seed each time. Prints the
 * database's URL; drop it yourself (`dropdb <name>`) when done.
 *
 *   npx tsx bench/audit/seed.ts [events]      (BENCH_PG: admin URL, default postgres@127.0.0.1)
 *   DATABASE_URL=<printed url> /usr/bin/time -f %M node bin/incentable.js replay --verify --json
 *
 * Run `replay --swap` once first: a verify compares against the live read models it fills.
 */
import { openDatabase } from '../../adapters/db/database.ts';
import { createBenchDatabase } from '../eventstore/support.ts';
import { seedHistory } from './history.ts';

const total = Number(process.argv[2] ?? 1_000_000);
const adminUrl = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const database = await createBenchDatabase(adminUrl);
const handle = await openDatabase({ kind: 'postgres', url: database.url });
await handle.close();
const started = performance.now();
const { events } = await seedHistory(database.url, { total });
console.error(
  `seeded ${events} events into ${database.name} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
);
console.log(database.url);
