/**
 * Tells a database that cannot be reached (down, restarting, failing over, our connection cut)
 * from every other error. The HTTP layer answers the first with 503 `database_unavailable` and
 * Retry-After, the second stays a 500: a client should retry the one and report the other.
 *
 * Network codes come from node's sockets; the five-character ones are PostgreSQL's SQLSTATEs of
 * class 08 (connection exception) and 57P (operator intervention: a shutdown or restart), and
 * 53300 (too many connections, as during a failover's reconnect storm). pg-pool and pg raise
 * plain Errors without a code for a connection lost mid-query or a connect that timed out.
 */
const networkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
const sqlStates = new Set(['57P01', '57P02', '57P03', '53300']);
const messages = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
  'the database system is starting up',
  'the database system is shutting down',
];

export const isDatabaseUnavailable = (error: unknown): boolean => {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    const { code, message, errors, cause } = e as {
      code?: unknown;
      message?: unknown;
      errors?: unknown;
      cause?: unknown;
    };
    if (typeof code === 'string') {
      if (networkCodes.has(code) || sqlStates.has(code) || code.startsWith('08')) return true;
    }
    if (typeof message === 'string' && messages.some((m) => message.includes(m))) return true;
    // A connect to "localhost" tries ::1 and 127.0.0.1 and fails with both in an AggregateError.
    if (Array.isArray(errors) && errors.some((inner) => isDatabaseUnavailable(inner))) return true;
    e = cause;
  }
  return false;
};

/** Thrown by our own code when it knows the database is out of reach (e.g. a lost session). */
export class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError';
  readonly code = '08006';
}
