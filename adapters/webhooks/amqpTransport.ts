import { randomUUID } from 'node:crypto';
import amqp, { type ChannelModel, type ConfirmChannel, type Message } from 'amqplib';
import { destinationOf, type Destination } from '../../delivery/destinations.ts';
import type { AttemptResult } from '../../delivery/outcome.ts';
import type { HttpRequest, HttpTransport } from '../../delivery/ports.ts';
import {
  BrokerFailure,
  closeAll,
  boundedAttempt,
  brokerLookup,
  checkLiteralHost,
  type BrokerTransportOptions,
} from './brokerSupport.ts';

type AmqpDestination = Extract<Destination, { kind: 'amqp' }>;

/** One connection and its confirm channel; dropped from the pool when either closes. */
type Link = {
  model: ChannelModel;
  channel: ConfirmChannel;
  /** correlationIds of messages the broker returned as unroutable (basic.return precedes the ack). */
  returned: Set<string>;
  /** Why the channel or connection closed, as the broker said it (e.g. 404 NOT_FOUND - no exchange). */
  closedBecause: string | null;
};

/**
 * Delivers to RabbitMQ (`amqp://` and `amqps://` endpoint URLs): each delivery is published to
 * the URL's exchange, routing key the event type, persistent and mandatory, and counts as sent
 * only once the broker confirms it (publisher confirms). A message no queue is bound for comes
 * back (basic.return) and is a failed attempt, retried on the schedule like an HTTP 5xx: at least
 * once means in a queue, not dropped by the exchange.
 *
 * One connection per endpoint URL (so one endpoint's closed channel, a missing exchange say,
 * never fails another's publishes), opened on first use and again after it closes.
 */
export class AmqpTransport implements HttpTransport {
  readonly #options: BrokerTransportOptions;
  readonly #links = new Map<string, Promise<Link>>();
  #closed = false;

  constructor(options: BrokerTransportOptions) {
    this.#options = options;
  }

  post(request: HttpRequest): Promise<AttemptResult> {
    return boundedAttempt(() => this.#publish(request), request.timeoutMs, request.signal);
  }

  async #publish(request: HttpRequest): Promise<string> {
    const destination = amqpDestinationOf(request.url);
    const routingKey = request.headers['x-incentable-event'];
    if (routingKey === undefined) throw new BrokerFailure('other', 'no event type to route by');
    const link = await this.#link(request.url, destination);
    const correlationId = randomUUID();
    await new Promise<void>((resolve, reject) => {
      link.channel.publish(
        destination.exchange,
        routingKey,
        Buffer.from(request.body, 'utf8'),
        {
          persistent: true,
          mandatory: true,
          contentType: 'application/json',
          messageId: request.headers['webhook-id'],
          correlationId,
          type: routingKey,
          appId: 'incentable',
          timestamp: Math.floor(Date.now() / 1000),
          headers: request.headers,
        },
        (error: unknown) => (error ? reject(rejection(link, error)) : resolve()),
      );
    });
    if (link.returned.delete(correlationId))
      throw new BrokerFailure(
        'broker_rejected',
        `unroutable: no queue is bound to exchange "${destination.exchange}" for routing key "${routingKey}"`,
      );
    return `confirmed by RabbitMQ: exchange "${destination.exchange}", routing key "${routingKey}"`;
  }

  #link(key: string, destination: AmqpDestination): Promise<Link> {
    if (this.#closed) return Promise.reject(new BrokerFailure('other', 'transport closed'));
    let link = this.#links.get(key);
    if (link === undefined) {
      link = this.#open(destination);
      this.#links.set(key, link);
      const forget = () => {
        if (this.#links.get(key) === link) this.#links.delete(key);
      };
      link.then((open) => {
        open.model.on('close', forget);
        open.channel.on('close', () => {
          forget();
          // The channel is gone but the connection may not be: close it, or it leaks.
          open.model.close().catch(() => {});
        });
      }, forget);
    }
    return link;
  }

  async #open(destination: AmqpDestination): Promise<Link> {
    checkLiteralHost(destination.host, this.#options);
    const model = await amqp.connect(
      {
        protocol: destination.tls ? 'amqps' : 'amqp',
        hostname: destination.host,
        port: destination.port,
        username: destination.username === '' ? 'guest' : destination.username,
        password: destination.username === '' ? 'guest' : destination.password,
        // amqplib unescapes the vhost once more: hand it the escaped form.
        vhost: encodeURIComponent(destination.vhost),
        heartbeat: 30,
      },
      {
        timeout: this.#options.connectTimeoutMs ?? 10_000,
        lookup: brokerLookup(this.#options),
        clientProperties: { connection_name: 'incentable webhooks' },
      },
    );
    // A broker that goes away must not crash the process: errors end the link, then 'close'.
    let closedBecause: string | null = null;
    model.on('error', (error: Error) => (closedBecause ??= error.message));
    try {
      const channel = await model.createConfirmChannel();
      const link: Link = { model, channel, returned: new Set(), closedBecause };
      model.on('error', (error: Error) => (link.closedBecause ??= error.message));
      channel.on('error', (error: Error) => (link.closedBecause ??= error.message));
      channel.on('return', (message: Message) => {
        const id: unknown = message.properties.correlationId;
        if (typeof id === 'string') link.returned.add(id);
      });
      return link;
    } catch (error) {
      await model.close().catch(() => {});
      throw error;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const links = [...this.#links.values()];
    this.#links.clear();
    await closeAll(links, (link) => link.model.close());
  }
}

const amqpDestinationOf = (url: string): AmqpDestination => {
  const parsed = destinationOf(new URL(url));
  if (!parsed.ok) throw new BrokerFailure('other', parsed.message);
  if (parsed.destination.kind !== 'amqp') throw new BrokerFailure('other', 'not an amqp URL');
  return parsed.destination;
};

/**
 * A nack or a closed channel: what the broker said when it closed the channel or connection
 * (its reply text), else amqplib's message. A closed connection without a reason is a reset.
 */
const rejection = (link: Link, error: unknown): BrokerFailure => {
  const text =
    link.closedBecause ?? (error instanceof Error ? error.message : 'nacked by the broker');
  const kind =
    /closed/i.test(text) && link.closedBecause === null ? 'connection_reset' : 'broker_rejected';
  return new BrokerFailure(kind, text.slice(0, 500));
};
