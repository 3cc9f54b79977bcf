import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { settlesBefore } from '../deadline.ts';

/** A node:http server's graceful close: see `closeGracefully`. */
export type GracefulServer = {
  /**
   * Stops accepting connections at once and closes the idle keep-alive ones; the requests under
   * way run to their end (their responses say `Connection: close`, and each connection closes as
   * its response ends, so keep-alive never holds the close open). If `cut` aborts first, the
   * connections left are destroyed. Resolves when no connection is left, with the requests cut
   * (`METHOD /path`, without the query string).
   */
  close(cut: AbortSignal): Promise<{ cutRequests: string[] }>;
};

/** Tracks the requests under way on `server`; call it before the server starts listening. */
export const closeGracefully = (server: Server): GracefulServer => {
  const underWay = new Map<ServerResponse, IncomingMessage>();
  let closing = false;
  const closeIdleSoon = () => {
    // The socket turns idle in node's own 'finish' listener: look once that has run.
    setImmediate(() => server.closeIdleConnections());
  };
  const endWithResponse = (res: ServerResponse) => {
    if (!res.headersSent) res.setHeader('connection', 'close');
    res.once('finish', closeIdleSoon);
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    underWay.set(res, req);
    res.once('close', () => underWay.delete(res));
    // A request that came on a kept-alive connection as the close began.
    if (closing) endWithResponse(res);
  });
  return {
    close: async (cut) => {
      closing = true;
      // Since Node 19 close() also closes the connections idle at this moment.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const res of underWay.keys()) endWithResponse(res);
      if (await settlesBefore(closed, cut)) return { cutRequests: [] };
      const cutRequests = [...underWay.values()].map(
        (req) => `${req.method ?? '?'} ${(req.url ?? '').split('?')[0] ?? ''}`,
      );
      server.closeAllConnections();
      await closed;
      return { cutRequests };
    },
  };
};
