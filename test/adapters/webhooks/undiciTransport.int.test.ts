import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { after, describe, it } from 'node:test';
import {
  refusedAddressMessage,
  responseBodyLimitBytes,
  UndiciTransport,
} from '../../../adapters/webhooks/undiciTransport.ts';
import type { AttemptResult } from '../../../delivery/outcome.ts';
import { waitFor } from '../../support/postgres.ts';

type Received = { method: string; url: string; headers: IncomingMessage['headers']; body: string };

/** A real receiver on 127.0.0.1 that records what reached it. */
const startReceiver = async (
  respond: RequestListener,
): Promise<{
  url: string;
  port: number;
  received: Received[];
  sockets: () => number;
  server: Server;
}> => {
  const received: Received[] = [];
  let sockets = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      respond(req, res);
    });
  });
  server.on('connection', () => (sockets += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  servers.push(server);
  return { url: `http://127.0.0.1:${port}`, port, received, sockets: () => sockets, server };
};

const servers: Server[] = [];
const transports: UndiciTransport[] = [];
after(async () => {
  await Promise.all(transports.map((t) => t.close()));
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

const transportWith = (options: {
  allowPrivateNetworks: boolean;
  lookup?: LookupFunction;
  connectionsPerOrigin?: number;
}) => {
  const transport = new UndiciTransport({
    connectionsPerOrigin: 4,
    userAgent: 'Incentable-Webhooks/test',
    ...options,
  });
  transports.push(transport);
  return transport;
};
const permissive = transportWith({ allowPrivateNetworks: true });
const strict = transportWith({ allowPrivateNetworks: false });

const body =
  '{"id":"evt_abc123","type":"points.awarded","created_at":"2024-06-15T14:30:00Z","data":{}}';
const post = (transport: UndiciTransport, url: string, timeoutMs = 2000) =>
  transport.post({
    url,
    headers: { 'content-type': 'application/json', 'x-incentable-signature': 'abc' },
    body,
    timeoutMs,
    endpointKey: 'we_test',
  });

const assertError = (result: AttemptResult, error: string) => {
  assert.equal(result.kind, 'error', JSON.stringify(result));
  assert.equal(result.kind === 'error' && result.error, error, JSON.stringify(result));
};

describe('the undici transport', () => {
  it('POSTs the exact body and headers and returns a 200 as a response', async () => {
    const receiver = await startReceiver((_req, res) => res.writeHead(200).end('thanks'));
    const result = await post(permissive, `${receiver.url}/hooks`);
    assert.equal(result.kind, 'response');
    assert.equal(result.kind === 'response' && result.status, 200);
    assert.equal(result.kind === 'response' && result.body, 'thanks');
    assert.ok(result.durationMs >= 0);
    const [request] = receiver.received;
    assert.equal(request?.method, 'POST');
    assert.equal(request?.url, '/hooks');
    assert.equal(request?.body, body);
    assert.equal(request?.headers['content-type'], 'application/json');
    assert.equal(request?.headers['x-incentable-signature'], 'abc');
    assert.equal(request?.headers['user-agent'], 'Incentable-Webhooks/test');
  });

  it('keeps the connection alive between attempts to one endpoint', async () => {
    // One connection per origin: with more, undici may open a second socket for an attempt
    // sent in the same tick as the previous one finishes, which says nothing about keep-alive.
    const single = transportWith({ allowPrivateNetworks: true, connectionsPerOrigin: 1 });
    const receiver = await startReceiver((_req, res) => res.writeHead(204).end());
    await post(single, receiver.url);
    await post(single, receiver.url);
    await post(single, receiver.url);
    assert.equal(receiver.received.length, 3);
    assert.equal(receiver.sockets(), 1);
  });

  it('records a 500 and its body', async () => {
    const receiver = await startReceiver((_req, res) => res.writeHead(500).end('boom'));
    const result = await post(permissive, receiver.url);
    assert.deepEqual(result.kind === 'response' && { status: result.status, body: result.body }, {
      status: 500,
      body: 'boom',
    });
  });

  it('returns a 302 without following it', async () => {
    const target = await startReceiver((_req, res) => res.writeHead(200).end());
    const receiver = await startReceiver((_req, res) =>
      res.writeHead(302, { location: `${target.url}/elsewhere` }).end(),
    );
    const result = await post(permissive, receiver.url);
    assert.equal(result.kind === 'response' && result.status, 302);
    assert.equal(target.received.length, 0);
  });

  it('gives up on a receiver that never answers within timeoutMs', async () => {
    const receiver = await startReceiver(() => undefined);
    const result = await post(permissive, receiver.url, 300);
    assertError(result, 'timeout');
    assert.ok(result.durationMs >= 250, `took ${result.durationMs} ms`);
    assert.ok(result.durationMs < 1000, `took ${result.durationMs} ms`);
  });

  it('gives up on a receiver that stalls mid-body within timeoutMs', async () => {
    const receiver = await startReceiver((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
    });
    const result = await post(permissive, receiver.url, 300);
    assertError(result, 'timeout');
    assert.ok(result.durationMs < 1000, `took ${result.durationMs} ms`);
  });

  it('ends an attempt when its signal aborts, and closes with nothing left in flight', async () => {
    const own = new UndiciTransport({
      allowPrivateNetworks: true,
      connectionsPerOrigin: 1,
      userAgent: 'Incentable-Webhooks/test',
    });
    const receiver = await startReceiver(() => undefined);
    const controller = new AbortController();
    const attempt = own.post({
      url: receiver.url,
      headers: { 'content-type': 'application/json' },
      body,
      timeoutMs: 60_000,
      endpointKey: 'we_test',
      signal: controller.signal,
    });
    await waitFor('the POST to arrive', () => receiver.received.length === 1);
    controller.abort();
    const result = await attempt;
    assert.deepEqual(result.kind === 'error' && { error: result.error, message: result.message }, {
      error: 'other',
      message: 'aborted by the caller',
    });
    // Agent.close() waits for requests in flight: it resolving shows the request is torn down.
    await own.close();
  });

  it('does not send an attempt whose signal has already aborted', async () => {
    const receiver = await startReceiver((_req, res) => res.writeHead(200).end());
    const result = await permissive.post({
      url: receiver.url,
      headers: {},
      body,
      timeoutMs: 2000,
      endpointKey: 'we_test',
      signal: AbortSignal.abort(),
    });
    assertError(result, 'other');
    assert.equal(receiver.received.length, 0);
  });

  it('reports a closed port as connection refused', async () => {
    const closed = await startReceiver((_req, res) => res.end());
    await new Promise((resolve) => closed.server.close(resolve));
    const result = await post(permissive, closed.url);
    assertError(result, 'connection_refused');
  });

  it('reports a connection dropped mid-request as a reset', async () => {
    const receiver = await startReceiver((req) => req.socket.destroy());
    const result = await post(permissive, receiver.url);
    assertError(result, 'connection_reset');
  });

  it('keeps the first 4096 bytes of a response body without splitting a character', async () => {
    // 'a' then two-byte characters: byte 4096 is the middle of one, so 4095 bytes are kept.
    const text = 'a' + 'é'.repeat(5000);
    const receiver = await startReceiver((_req, res) => res.writeHead(400).end(text));
    const result = await post(permissive, receiver.url);
    assert.equal(result.kind, 'response');
    const kept = result.kind === 'response' ? result.body : '';
    assert.equal(Buffer.byteLength(kept), responseBodyLimitBytes - 1);
    assert.ok(text.startsWith(kept));
    assert.ok(!kept.includes('\ufffd'));
  });

  it('reads a large response body only up to its limit', async () => {
    const receiver = await startReceiver((_req, res) =>
      res.writeHead(200).end('x'.repeat(1_000_000)),
    );
    const result = await post(permissive, receiver.url);
    assert.equal(result.kind === 'response' && result.body, 'x'.repeat(responseBodyLimitBytes));
  });

  describe('without private networks', () => {
    it('refuses a loopback IP before connecting', async () => {
      const receiver = await startReceiver((_req, res) => res.end());
      assertError(await post(strict, receiver.url), 'ssrf_blocked');
      assertError(
        await post(strict, `http://[::ffff:127.0.0.1]:${receiver.port}/`),
        'ssrf_blocked',
      );
      assert.equal(receiver.received.length, 0);
      assert.equal(receiver.sockets(), 0);
    });

    it('refuses localhost when it resolves to loopback, telling the tenant no address', async () => {
      const receiver = await startReceiver((_req, res) => res.end());
      const refused: { host: string; address: string; addressClass: string }[] = [];
      const transport = new UndiciTransport({
        connectionsPerOrigin: 4,
        userAgent: 'Incentable-Webhooks/test',
        allowPrivateNetworks: false,
        onRefusedAddress: (detail) => refused.push(detail),
      });
      const result = await post(transport, `http://localhost:${receiver.port}/`);
      await transport.close();
      assertError(result, 'ssrf_blocked');
      // The delivery log is the tenant's: the internal address stays in the operator's log.
      assert.equal(result.kind === 'error' ? result.message : '', refusedAddressMessage);
      assert.equal(refused[0]?.host, 'localhost');
      assert.match(refused[0]?.address ?? '', /^(127\.0\.0\.1|::1)$/);
      assert.equal(refused[0]?.addressClass, 'loopback');
      assert.equal(receiver.sockets(), 0);
    });

    it('refuses every documented cloud metadata address, also on private networks', async () => {
      for (const address of ['169.254.170.2', '100.100.100.200', '168.63.129.16', '192.0.0.192'])
        assertError(await post(permissive, `http://${address}/latest/meta-data`), 'ssrf_blocked');
    });

    it('refuses a public-looking name whose DNS answer is private', async () => {
      const receiver = await startReceiver((_req, res) => res.end());
      const rebinding: LookupFunction = (_hostname, options, callback) => {
        if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
        else callback(null, '127.0.0.1', 4);
      };
      const transport = transportWith({ allowPrivateNetworks: false, lookup: rebinding });
      assertError(
        await post(transport, `http://hooks.example.com:${receiver.port}/`),
        'ssrf_blocked',
      );
      assert.equal(receiver.sockets(), 0);
    });

    it('refuses the metadata address even on private networks', async () => {
      assertError(
        await post(permissive, 'http://169.254.169.254/latest/meta-data'),
        'ssrf_blocked',
      );
    });
  });

  it('connects to localhost when private networks are allowed', async () => {
    const receiver = await startReceiver((_req, res) => res.writeHead(200).end());
    const result = await post(permissive, `http://localhost:${receiver.port}/`);
    assert.equal(result.kind === 'response' && result.status, 200);
  });

  it('reports a name that does not resolve as dns', async () => {
    const result = await post(permissive, 'http://does-not-exist.invalid/');
    assertError(result, 'dns');
  });
});
