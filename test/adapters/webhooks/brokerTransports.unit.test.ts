import assert from 'node:assert/strict';
import type { LookupFunction } from 'node:net';
import { describe, it } from 'node:test';
import { AmqpTransport } from '../../../adapters/webhooks/amqpTransport.ts';
import { NatsTransport } from '../../../adapters/webhooks/natsTransport.ts';

/** Every name resolves to one private address: nothing may be connected to. */
const privateLookup: LookupFunction = (_hostname, options, callback) => {
  const address = { address: '10.1.2.3', family: 4 };
  if (options.all) callback(null, [address]);
  else callback(null, address.address, address.family);
};

const request = (url: string) => ({
  url,
  headers: { 'x-incentable-event': 'points.awarded', 'x-incentable-delivery': 'dlv_1' },
  body: '{}',
  timeoutMs: 2_000,
  endpointKey: 'end_1',
});

describe('broker transports and the address policy', () => {
  for (const [name, Transport, url] of [
    ['AMQP', AmqpTransport, 'amqp://mq.example.com/?exchange=x'],
    ['NATS', NatsTransport, 'nats://nats.example.com?subject=x'],
  ] as const) {
    it(`${name}: a name that resolves to a private address is refused before any connection`, async () => {
      const refused: string[] = [];
      const transport = new Transport({
        allowPrivateNetworks: false,
        lookup: privateLookup,
        onRefusedAddress: (detail) => refused.push(`${detail.host} ${detail.address}`),
      });
      try {
        const result = await transport.post(request(url));
        assert.equal(result.kind, 'error');
        assert.equal(result.kind === 'error' && result.error, 'ssrf_blocked');
      } finally {
        await transport.close();
      }
      assert.equal(refused.length, 1);
      assert.match(refused[0]!, /10\.1\.2\.3/);
    });
  }

  it('a literal private address is refused without a lookup', async () => {
    const transport = new AmqpTransport({ allowPrivateNetworks: false });
    try {
      const result = await transport.post(request('amqp://10.9.9.9/?exchange=x'));
      assert.equal(result.kind === 'error' && result.error, 'ssrf_blocked');
    } finally {
      await transport.close();
    }
  });
});
