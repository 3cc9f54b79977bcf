/**
 * A loopback OTLP/HTTP receiver in a process of its own (bench/telemetry/run.ts forks it), so
 * the bench's figures do not count its work against the traced service: it reads every export
 * request to the end, answers 200 and discards it, counting requests and bytes. Its port, then
 * its counts when asked, go back over IPC.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

let requests = 0;
let bytes = 0;
const server = createServer((req, res) => {
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  req.on('end', () => {
    if (req.method === 'POST' && req.url === '/v1/traces') requests++;
    // An empty ExportTraceServiceResponse in the request's encoding: zero bytes, or {} in JSON.
    const protobuf = req.headers['content-type'] === 'application/x-protobuf';
    res.writeHead(req.url === '/v1/traces' ? 200 : 404, {
      'content-type': protobuf ? 'application/x-protobuf' : 'application/json',
    });
    res.end(protobuf ? '' : '{}');
  });
});
server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});
process.on('message', (message: { cmd: string }) => {
  if (message.cmd === 'stats') process.send?.({ requests, bytes });
  if (message.cmd === 'exit') server.close(() => process.exit(0));
});
