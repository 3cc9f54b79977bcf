import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { destinationOf, type Destination } from '../../delivery/destinations.ts';
import type { AttemptResult } from '../../delivery/outcome.ts';
import type { HttpRequest, HttpTransport } from '../../delivery/ports.ts';
import {
  BrokerFailure,
  closeAll,
  boundedAttempt,
  resolveAllowed,
  type BrokerTransportOptions,
} from './brokerSupport.ts';

type NatsDestination = Extract<Destination, { kind: 'nats' }>;

type Link = { connection: NatsConnection; js: JetStreamClient };

/**
 * Delivers to NATS JetStream (`nats://` endpoint URLs): each delivery is published to
 * `<subject>.<event type>` and counts as sent only once a stream acknowledges it. A subject no
 * stream captures has no responders: a failed attempt, retried on the schedule. The message id
 * (`Nats-Msg-Id`) is the delivery id, so a retry after a lost acknowledgement is recognised as a
 * duplicate by the stream (within its duplicate window) rather than stored twice; a resend is a
 * new delivery, so it is a new message.
 *
 * The host is resolved once, through the SSRF policy, and the client connects to that address
 * only: it ignores the cluster addresses a server advertises, which the policy never saw.
 */
export class NatsTransport implements HttpTransport {
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
    const destination = natsDestinationOf(request.url);
    const type = request.headers['x-incentable-event'];
    if (type === undefined) throw new BrokerFailure('other', 'no event type to route by');
    const subject = `${destination.subjectPrefix}.${type}`;
    const link = await this.#link(request.url, destination);
    const h = natsHeaders();
    for (const [name, value] of Object.entries(request.headers)) h.set(name, value);
    try {
      const ack = await link.js.publish(subject, request.body, {
        headers: h,
        msgID: request.headers['x-incentable-delivery'] ?? '',
        timeout: request.timeoutMs,
      });
      return `acknowledged by JetStream: stream "${ack.stream}", sequence ${ack.seq}${ack.duplicate ? ' (a duplicate of a message already stored)' : ''}`;
    } catch (error) {
      // Nobody answered the publish: the client reports it as JetStream not being enabled.
      const name = error instanceof Error ? error.name : '';
      if (['NoRespondersError', 'JetStreamNotEnabled'].includes(name))
        throw new BrokerFailure(
          'broker_rejected',
          `no JetStream stream captures subject "${subject}" (or JetStream is not enabled)`,
        );
      throw error;
    }
  }

  #link(key: string, destination: NatsDestination): Promise<Link> {
    if (this.#closed) return Promise.reject(new BrokerFailure('other', 'transport closed'));
    let link = this.#links.get(key);
    if (link === undefined) {
      link = this.#open(destination);
      this.#links.set(key, link);
      const forget = () => {
        if (this.#links.get(key) === link) this.#links.delete(key);
      };
      link.then((open) => {
        void open.connection.closed().then(forget);
      }, forget);
    }
    return link;
  }

  async #open(destination: NatsDestination): Promise<Link> {
    const address = await resolveAllowed(destination.host, this.#options);
    const server = address.includes(':')
      ? `[${address}]:${destination.port}`
      : `${address}:${destination.port}`;
    const credentials =
      destination.username === ''
        ? {}
        : destination.password === ''
          ? { token: destination.username }
          : { user: destination.username, pass: destination.password };
    const connection = await connect({
      servers: server,
      ...credentials,
      name: 'incentable webhooks',
      timeout: this.#options.connectTimeoutMs ?? 10_000,
      ignoreClusterUpdates: true,
      noRandomize: true,
      // Reconnects to the same address on its own; publishes meanwhile wait or time out.
      maxReconnectAttempts: -1,
    });
    return { connection, js: jetstream(connection) };
  }

  async close(): Promise<void> {
    this.#closed = true;
    const links = [...this.#links.values()];
    this.#links.clear();
    await closeAll(links, (link) => link.connection.close());
  }
}

const natsDestinationOf = (url: string): NatsDestination => {
  const parsed = destinationOf(new URL(url));
  if (!parsed.ok) throw new BrokerFailure('other', parsed.message);
  if (parsed.destination.kind !== 'nats') throw new BrokerFailure('other', 'not a nats URL');
  return parsed.destination;
};
