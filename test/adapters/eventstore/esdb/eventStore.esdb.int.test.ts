import { eventStoreContract } from '../contract.ts';
import { esdbFixture } from './standIn.ts';

// Against a real EventStoreDB whenever ESDB_CONNECTION_STRING is set (`npm run test:esdb`).
// Without one this is SKIPPED, and says so: the stand-in run does not count as this one.
const connectionString = process.env.ESDB_CONNECTION_STRING;
const skip = connectionString
  ? false
  : 'no real EventStoreDB: ESDB_CONNECTION_STRING is not set (the stand-in run is not this run)';
if (skip) console.log(`SKIPPED: EventStore contract against a real EventStoreDB server: ${skip}`);

eventStoreContract('real EventStoreDB server', () => esdbFixture(connectionString!), skip);
