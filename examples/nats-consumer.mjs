// Consumes the webhooks a `nats://` endpoint publishes (docs/webhooks.md, "Broker destinations").
//
//   node examples/nats-consumer.mjs <nats server> <subject prefix> <endpoint secret> [count]
//
// Creates a stream for `<prefix>.>` if there is none and a durable consumer on it, checks each
// message's X-Incentable-Signature exactly as an HTTP receiver does, prints one line per event
// and acknowledges it. Exits after `count` messages when given.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

const [server, prefix, secret, count] = process.argv.slice(2);
if (!server || !prefix || !secret) {
  console.error(
    'usage: nats-consumer.mjs <nats server> <subject prefix> <endpoint secret> [count]',
  );
  process.exit(2);
}

const verify = (body, signature, key) => {
  const expected = createHmac('sha256', key).update(body).digest('hex');
  return (
    signature.length === expected.length &&
    timingSafeEqual(Buffer.from(signature), Buffer.from(expected))
  );
};

const connection = await connect({ servers: server });
const manager = await jetstreamManager(connection);
const stream = `${prefix.replace(/[^A-Za-z0-9_-]/g, '_').toUpperCase()}_WEBHOOKS`;
try {
  await manager.streams.info(stream);
} catch {
  await manager.streams.add({ name: stream, subjects: [`${prefix}.>`] });
}
await manager.consumers.add(stream, { durable_name: 'consumer', ack_policy: 'explicit' });
const consumer = await jetstream(connection).consumers.get(stream, 'consumer');
console.log(`ready: stream ${stream} captures ${prefix}.>`);

let seen = 0;
for await (const message of await consumer.consume()) {
  const body = message.string();
  const ok = verify(body, message.headers?.get('x-incentable-signature') ?? '', secret);
  const event = JSON.parse(body);
  console.log(`${message.subject} ${event.id} signature ${ok ? 'ok' : 'INVALID'}`);
  message.ack();
  seen += 1;
  if (count !== undefined && seen >= Number(count)) break;
}
await connection.close();
