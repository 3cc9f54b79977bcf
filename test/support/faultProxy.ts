import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on loopback in front of the real PostgreSQL, so a test can take "the database"
 * away from one process without touching the server others use: `cut()` drops every open
 * connection (what a restart or failover does to them), `down()` also refuses new ones until
 * `up()`. The service under test connects through `url`.
 */
export type FaultProxy = {
  url: string;
  /** Connections open through the proxy now. */
  open: () => number;
  cut: () => void;
  down: () => void;
  up: () => void;
  close: () => Promise<void>;
};

export const startFaultProxy = async (target: string): Promise<FaultProxy> => {
  const upstream = new URL(target);
  const sockets = new Set<Socket>();
  let accepting = true;
  const server: Server = createServer((client) => {
    if (!accepting) {
      client.destroy();
      return;
    }
    const server = connect(Number(upstream.port || 5432), upstream.hostname);
    sockets.add(client);
    sockets.add(server);
    const drop = () => {
      client.destroy();
      server.destroy();
      sockets.delete(client);
      sockets.delete(server);
    };
    client.on('error', drop);
    server.on('error', drop);
    client.on('close', drop);
    server.on('close', drop);
    client.pipe(server);
    server.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  const cut = () => {
    for (const socket of [...sockets]) socket.destroy();
    sockets.clear();
  };
  return {
    url: url.toString(),
    open: () => sockets.size / 2,
    cut,
    down: () => {
      accepting = false;
      cut();
    },
    up: () => {
      accepting = true;
    },
    close: async () => {
      accepting = false;
      cut();
      await new Promise((resolve) => server.close(resolve));
    },
  };
};
