// Consumes the webhooks an `amqp://` endpoint publishes (docs/webhooks.md, "Broker destinations").
//
//   node examples/rabbitmq-consumer.mjs <amqp url> <exchange> <endpoint secret> [count]
//
// Declares the exchange (topic, durable) and a durable queue bound to every event type, checks
// each message's X-Incentable-Signature exactly as an HTTP receiver does, prints one line per
// event and acknowledges it. Exits after `count` messages when given.
import { createHmac, timingSafeEqual } from 'node:crypto';
import amqp from 'amqplib';

const [url, exchange, secret, count] = process.argv.slice(2);
if (!url || !exchange || !secret) {
  console.error('usage: rabbitmq-consumer.mjs <amqp url> <exchange> <endpoint secret> [count]');
  process.exit(2);
}

const verify = (body, signature, key) => {
  const expected = createHmac('sha256', key).update(body).digest('hex');
  return (
    signature.length === expected.length &&
    timingSafeEqual(Buffer.from(signature), Buffer.from(expected))
  );
};

const connection = await amqp.connect(url);
const channel = await connection.createChannel();
await channel.assertExchange(exchange, 'topic', { durable: true });
const { queue } = await channel.assertQueue(`${exchange}.consumer`, { durable: true });
await channel.bindQueue(queue, exchange, '#');
console.log(`ready: queue ${queue} bound to ${exchange} for #`);

let seen = 0;
await channel.consume(queue, async (message) => {
  if (message === null) return;
  const body = message.content.toString('utf8');
  const headers = message.properties.headers ?? {};
  const ok = verify(body, String(headers['x-incentable-signature'] ?? ''), secret);
  const event = JSON.parse(body);
  console.log(`${message.fields.routingKey} ${event.id} signature ${ok ? 'ok' : 'INVALID'}`);
  channel.ack(message);
  seen += 1;
  if (count !== undefined && seen >= Number(count)) {
    await channel.close();
    await connection.close();
  }
});
