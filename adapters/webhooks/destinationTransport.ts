import type { AttemptResult } from '../../delivery/outcome.ts';
import type { HttpRequest, HttpTransport } from '../../delivery/ports.ts';
import { AmqpTransport } from './amqpTransport.ts';
import type { BrokerTransportOptions } from './brokerSupport.ts';
import { NatsTransport } from './natsTransport.ts';

/**
 * The worker's one transport: each attempt goes to the transport its URL's scheme names, HTTP(S)
 * to undici, `amqp(s)://` to RabbitMQ, `nats://` to JetStream (delivery/destinations.ts). The
 * broker transports are made on first use, so an installation without broker endpoints never
 * loads their clients' connections.
 */
export class DestinationTransport implements HttpTransport {
  readonly #http: HttpTransport;
  readonly #brokerOptions: BrokerTransportOptions;
  #amqp: AmqpTransport | null = null;
  #nats: NatsTransport | null = null;

  constructor(http: HttpTransport, brokerOptions: BrokerTransportOptions) {
    this.#http = http;
    this.#brokerOptions = brokerOptions;
  }

  post(request: HttpRequest): Promise<AttemptResult> {
    const scheme = request.url.slice(0, request.url.indexOf(':'));
    switch (scheme) {
      case 'amqp':
      case 'amqps':
        this.#amqp ??= new AmqpTransport(this.#brokerOptions);
        return this.#amqp.post(request);
      case 'nats':
        this.#nats ??= new NatsTransport(this.#brokerOptions);
        return this.#nats.post(request);
      default:
        return this.#http.post(request);
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.#http.close(), this.#amqp?.close(), this.#nats?.close()]);
  }
}
