import { eventStoreContract } from '../contract.ts';
import { standInFixture } from './standIn.ts';

// The real @eventstore/db-client over real gRPC against the in-process stand-in
// (test/esdbStandIn): proves our use of the client, not compatibility with a real server.
eventStoreContract('EventStoreDB client against the stand-in server', standInFixture);
