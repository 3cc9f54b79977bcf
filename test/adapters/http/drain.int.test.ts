import assert from 'node:assert/strict';
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { closeGracefully } from '../../../adapters/http/drain.ts';
import { waitFor } from '../../support/postgres.ts';

/** A loopback server whose handler the test drives through `pending`. */
const startServer = async () => {
  const pending: ServerResponse[] = [];
  const server = createServer((_req, res) => pending.push(res));
  // Far longer than any test: a connection that closes did so because of the close, not this.
  server.keepAliveTimeout = 60_000;
  const graceful = closeGracefully(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, graceful, port, pending };
};

const get = (port: number, path: string, agent: Agent) =>
  new Promise<{ res: IncomingMessage; text: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ res, text: Buffer.concat(chunks).toString('utf8') }));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end();
  });

describe('closing an HTTP server gracefully', () => {
  it('lets a streamed response whose headers were already sent finish, then closes its kept-alive connection', async () => {
    const { graceful, port, pending } = await startServer();
    const agent = new Agent({ keepAlive: true });
    const answer = get(port, '/export', agent);
    await waitFor('the request to arrive', () => pending.length === 1);
    const res = pending[0]!;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first line\n');

    const startedAt = Date.now();
    const closed = graceful.close(new AbortController().signal);
    res.end('last line\n');
    const { res: response, text } = await answer;
    assert.equal(text, 'first line\nlast line\n');
    assert.equal(response.headers.connection, 'keep-alive', 'its headers went out before');
    assert.deepEqual(await closed, { cutRequests: [] });
    assert.ok(Date.now() - startedAt < 5_000, 'the idle connection did not wait for its timeout');
    agent.destroy();
  });

  it('cuts the requests still under way when the deadline aborts, and names them', async () => {
    const { graceful, port, pending } = await startServer();
    const agent = new Agent({ keepAlive: true });
    const answer = get(port, '/slow?after_position=secret', agent).then(
      () => 'answered',
      (error: NodeJS.ErrnoException) => error.code,
    );
    await waitFor('the request to arrive', () => pending.length === 1);
    const deadline = new AbortController();
    const closed = graceful.close(deadline.signal);
    deadline.abort();
    assert.deepEqual(await closed, { cutRequests: ['GET /slow'] });
    assert.equal(await answer, 'ECONNRESET');
    agent.destroy();
  });
});
