/**
 * Webhook receivers for the benchmarks, run as a child process so they do not share the event
 * loop of the sender under test: N node:http servers on 127.0.0.1 answering 200 immediately.
 * Controlled over IPC:
 *   { cmd: 'start', count }          -> { ports }
 *   { cmd: 'reset', latency }        -> { ok }   (latency: record receive time per transaction id)
 *   { cmd: 'stats' }                 -> { total, perServer, firstMs, lastMs, badSignatures, samples }
 * Times are absolute (performance.timeOrigin + performance.now()), comparable across processes.
 */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

type Message =
  | { cmd: 'start'; count: number }
  | { cmd: 'reset'; latency: boolean; secrets?: string[] }
  | { cmd: 'stats' }
  | { cmd: 'exit' };

const servers: Server[] = [];
let perServer: number[] = [];
let firstMs = Number.NaN;
let lastMs = Number.NaN;
let latency = false;
/** Per server: the secret its endpoint signs with; every 100th request's signature is checked. */
let secrets: (string | undefined)[] = [];
let checked = 0;
let badSignatures = 0;
/** `<server index>:<transaction id>` -> receive time (latency mode). */
let received = new Map<string, number>();

const now = () => performance.timeOrigin + performance.now();

const send = (message: unknown) => process.send?.(message);

const start = async (count: number): Promise<number[]> => {
  perServer = Array.from({ length: count }, () => 0);
  for (let i = 0; i < count; i++) {
    const index = i;
    const server = createServer((req, res) => {
      const t = now();
      const n = ++perServer[index]!;
      if (Number.isNaN(firstMs)) firstMs = t;
      lastMs = t;
      const secret = secrets[index];
      if (!latency && (secret === undefined || n % 100 !== 0)) {
        // Drain the body without keeping it: the cheapest correct 200.
        req.resume();
        req.on('end', () => {
          res.writeHead(200, { 'content-length': '0' });
          res.end();
        });
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (secret !== undefined && n % 100 === 0) {
          checked++;
          const expected = createHmac('sha256', secret).update(body).digest('hex');
          if (req.headers['x-incentable-signature'] !== expected) badSignatures++;
        }
        if (latency) {
          const match = /"transaction_id":"([^"]+)"/.exec(body);
          const key = `${index}:${match?.[1] ?? ''}`;
          if (match && !received.has(key)) received.set(key, t);
        }
        res.writeHead(200, { 'content-length': '0' });
        res.end();
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
  }
  return servers.map((s) => (s.address() as AddressInfo).port);
};

process.on('message', (message: Message) => {
  void (async () => {
    switch (message.cmd) {
      case 'start':
        send({ ports: await start(message.count) });
        return;
      case 'reset':
        perServer = perServer.map(() => 0);
        firstMs = Number.NaN;
        lastMs = Number.NaN;
        latency = message.latency;
        secrets = message.secrets ?? [];
        checked = 0;
        badSignatures = 0;
        received = new Map();
        send({ ok: true });
        return;
      case 'stats':
        send({
          total: perServer.reduce((a, b) => a + b, 0),
          perServer,
          firstMs,
          lastMs,
          checked,
          badSignatures,
          samples: latency ? [...received] : [],
        });
        return;
      case 'exit':
        for (const s of servers) s.closeAllConnections();
        process.exit(0);
    }
  })();
});

// The parent died or let go: do not linger as an orphan holding ports.
process.on('disconnect', () => process.exit(0));
