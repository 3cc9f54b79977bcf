import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { destinationOf, splitCredentials, withUserinfo } from '../../delivery/destinations.ts';
import { validateEndpointUrl } from '../../delivery/ssrf.ts';

const parse = (text: string) => destinationOf(new URL(text));

describe('broker destinations', () => {
  it('reads an AMQP URL: host, port, credentials, vhost and exchange', () => {
    const parsed = parse('amqps://svc:p%40ss@mq.example.com/prod%2Feu?exchange=loyalty.events');
    assert.deepEqual(parsed, {
      ok: true,
      destination: {
        kind: 'amqp',
        tls: true,
        host: 'mq.example.com',
        port: 5671,
        username: 'svc',
        password: 'p@ss',
        vhost: 'prod/eu',
        exchange: 'loyalty.events',
      },
    });
    const plain = parse('amqp://mq.example.com?exchange=x');
    assert.ok(plain.ok && plain.destination.kind === 'amqp');
    assert.equal(plain.destination.vhost, '/');
    assert.equal(plain.destination.port, 5672);
  });

  it('reads a NATS URL: a token, user and password, or neither', () => {
    const token = parse('nats://s3cr3t@nats.example.com?subject=loyalty.prod');
    assert.ok(token.ok && token.destination.kind === 'nats');
    assert.equal(token.destination.username, 's3cr3t');
    assert.equal(token.destination.password, '');
    assert.equal(token.destination.subjectPrefix, 'loyalty.prod');
    assert.equal(token.destination.port, 4222);
  });

  it('refuses what cannot be published to', () => {
    for (const text of [
      'amqp://h/?exchange=',
      'amqp://h/?exchange=a%20b',
      'amqp://h/?queue=x',
      'amqp://h/a/b?exchange=x',
      'nats://h?subject=a.*',
      'nats://h?subject=a.>',
      'nats://h?subject=.a',
      'nats://h/path?subject=a',
      `nats://h?subject=${'a'.repeat(201)}`,
      'mqtt://h?topic=a',
    ])
      assert.equal(parse(text).ok, false, text);
  });

  it('applies the address policy to broker hosts as to HTTP ones', () => {
    const closed = { allowPrivateNetworks: false };
    for (const text of [
      'amqp://10.0.0.5/?exchange=x',
      'amqp://localhost/?exchange=x',
      'nats://127.0.0.1:4222?subject=x',
      'nats://169.254.169.254?subject=x',
    ])
      assert.equal(validateEndpointUrl(text, closed).ok, false, text);
    assert.equal(
      validateEndpointUrl('nats://127.0.0.1?subject=x', { allowPrivateNetworks: true }).ok,
      true,
    );
    assert.equal(
      validateEndpointUrl('nats://169.254.169.254?subject=x', { allowPrivateNetworks: true }).ok,
      false,
    );
    // Credentials stay refused in an HTTP URL: the signature is what a receiver checks.
    assert.equal(validateEndpointUrl('https://u:p@example.com/', closed).ok, false);
    assert.equal(validateEndpointUrl('amqp://u:p@mq.example.com/?exchange=x', closed).ok, true);
  });

  it('keeps credentials out of the stored URL and puts them back exactly', () => {
    for (const [text, shown] of [
      [
        'amqp://svc:p%40ss%3Aw@mq.example.com/v?exchange=x',
        'amqp://svc@mq.example.com/v?exchange=x',
      ],
      ['nats://tok%2Fen@nats.example.com?subject=a', 'nats://nats.example.com?subject=a'],
      ['nats://u:p@nats.example.com:4223?subject=a', 'nats://u@nats.example.com:4223?subject=a'],
    ] as const) {
      const { url, userinfo } = splitCredentials(text);
      assert.equal(url, shown);
      assert.ok(userinfo);
      assert.equal(withUserinfo(url, userinfo), text);
    }
    assert.deepEqual(splitCredentials('https://example.com/h'), {
      url: 'https://example.com/h',
      userinfo: null,
    });
  });
});
