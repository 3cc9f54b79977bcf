import type { EventStoreDBClient } from '@eventstore/db-client';
import type { Command } from 'commander';
import { esdbConnectionString } from './eventstore.ts';

/** The EventStoreDB client and our parked-event helpers, loaded only by these commands. */
const esdbModules = async () => {
  const [client, parked] = await Promise.all([
    import('@eventstore/db-client'),
    import('../eventstore/esdb/parked.ts'),
  ]);
  return { EventStoreDBClient: client.EventStoreDBClient, ...parked };
};

const withClient = async <T>(
  option: string | undefined,
  work: (client: EventStoreDBClient) => Promise<T>,
) => {
  const { EventStoreDBClient } = await esdbModules();
  const client = EventStoreDBClient.connectionString(esdbConnectionString(option));
  try {
    return await work(client);
  } finally {
    await client.dispose();
  }
};

/** Groups to look at: the one named, else every persistent subscription to $all. */
const groupsOf = async (
  client: EventStoreDBClient,
  group: string | undefined,
): Promise<string[]> =>
  group !== undefined
    ? [group]
    : (await client.listPersistentSubscriptionsToAll()).map((info) => info.groupName);

const json = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));

/** Adds `subscriptions parked` and `subscriptions replay-parked` (EventStoreDB projectors). */
export const registerSubscriptionCommands = (program: Command): void => {
  const subscriptions = program
    .command('subscriptions')
    .description("Projectors' persistent subscriptions on EventStoreDB");
  subscriptions
    .command('parked')
    .description(
      'List the events a projector parked (failed past the retry limit or unreadable), with the reason',
    )
    .option('--group <name>', "one projector's group (default: every group on $all)")
    .option(
      '--esdb <connection-string>',
      'EventStoreDB connection string (default ESDB_CONNECTION_STRING)',
    )
    .option('--json', 'print as JSON lines')
    .action(async (options: { group?: string; esdb?: string; json?: boolean }) => {
      const { listParked } = await esdbModules();
      await withClient(options.esdb, async (client) => {
        let total = 0;
        for (const group of await groupsOf(client, options.group)) {
          for (const parked of await listParked(client, group)) {
            total++;
            if (options.json) console.log(json({ group, ...parked }));
            else
              console.log(
                `${group}  ${parked.stream}@${parked.revision ?? '?'}  ${parked.type ?? '?'}  ${parked.eventId ?? '?'}  parked ${parked.parkedAt ?? '?'}: ${parked.reason ?? '(no reason recorded)'}`,
              );
          }
        }
        if (!options.json) console.log(`${total} parked event(s)`);
        if (total > 0) process.exitCode = 1;
      });
    });
  subscriptions
    .command('replay-parked')
    .description("Hand a group's parked events back to its consumers (after fixing the cause)")
    .requiredOption('--group <name>', "the projector's group")
    .option('--stop-at <count>', 'replay at most this many', (value: string) =>
      Number.parseInt(value, 10),
    )
    .option(
      '--esdb <connection-string>',
      'EventStoreDB connection string (default ESDB_CONNECTION_STRING)',
    )
    .action(async (options: { group: string; stopAt?: number; esdb?: string }) => {
      const { listParked, replayParked } = await esdbModules();
      await withClient(options.esdb, async (client) => {
        const parked = await listParked(client, options.group);
        await replayParked(client, options.group, options.stopAt);
        console.log(
          `replaying ${options.stopAt === undefined ? parked.length : Math.min(options.stopAt, parked.length)} parked event(s) of ${options.group}`,
        );
      });
    });
};
