/**
 * Where an endpoint's deliveries go. Besides an HTTP(S) URL, an endpoint may name a broker:
 *
 * - `amqp://user:pass@host:5672/vhost?exchange=NAME` (or `amqps://`): RabbitMQ, published to the
 *   exchange with the event type as routing key;
 * - `nats://[user:pass@ or token@]host:4222?subject=PREFIX`: NATS JetStream, published to
 *   `PREFIX.<event type>`.
 *
 * Pure parsing, no I/O: the transports in adapters/webhooks/ connect.
 */
export type Destination =
  | { kind: 'http'; url: URL }
  | {
      kind: 'amqp';
      tls: boolean;
      host: string;
      port: number;
      username: string;
      password: string;
      vhost: string;
      exchange: string;
    }
  | {
      kind: 'nats';
      host: string;
      port: number;
      /** user and pass, a token (as the user, no pass), or neither. */
      username: string;
      password: string;
      subjectPrefix: string;
    };

export type DestinationKind = Destination['kind'];

/** An AMQP exchange name as RabbitMQ accepts it (the default exchange, "", is not a destination). */
const exchangeName = /^[A-Za-z0-9_.:-]{1,255}$/;
/** A NATS subject without wildcards: tokens of letters, digits, `_` and `-`, joined by dots. */
const subjectPrefix = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const maxSubjectPrefix = 200;

export type DestinationError = { ok: false; message: string };

const hostOf = (url: URL): string =>
  url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;

const onlyParameter = (url: URL, name: string): string | DestinationError => {
  const names = [...url.searchParams.keys()];
  if (names.length !== 1 || names[0] !== name)
    return { ok: false, message: `URL must have exactly one query parameter, ${name}` };
  return url.searchParams.get(name) ?? '';
};

const decoded = (part: string): string => {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
};

/**
 * The destination a parsed endpoint URL names, or why it names none. Schemes other than http,
 * https, amqp, amqps and nats are the caller's to refuse (this says which scheme it is not).
 */
export const destinationOf = (
  url: URL,
): { ok: true; destination: Destination } | DestinationError => {
  switch (url.protocol) {
    case 'http:':
    case 'https:':
      return { ok: true, destination: { kind: 'http', url } };
    case 'amqp:':
    case 'amqps:': {
      const exchange = onlyParameter(url, 'exchange');
      if (typeof exchange !== 'string') return exchange;
      if (!exchangeName.test(exchange))
        return {
          ok: false,
          message:
            'exchange must be 1 to 255 letters, digits, "_", ".", ":" or "-" (the default exchange is not a destination)',
        };
      const path = url.pathname.replace(/^\//, '');
      if (path.includes('/'))
        return { ok: false, message: 'URL path must be the vhost alone, e.g. /production' };
      const tls = url.protocol === 'amqps:';
      return {
        ok: true,
        destination: {
          kind: 'amqp',
          tls,
          host: hostOf(url),
          port: url.port === '' ? (tls ? 5671 : 5672) : Number(url.port),
          username: decoded(url.username),
          password: decoded(url.password),
          vhost: path === '' ? '/' : decoded(path),
          exchange,
        },
      };
    }
    case 'nats:': {
      const subject = onlyParameter(url, 'subject');
      if (typeof subject !== 'string') return subject;
      if (subject.length > maxSubjectPrefix || !subjectPrefix.test(subject))
        return {
          ok: false,
          message: `subject must be dot-separated tokens of letters, digits, "_" or "-", no wildcards, at most ${maxSubjectPrefix} characters`,
        };
      if (url.pathname !== '' && url.pathname !== '/')
        return { ok: false, message: 'a nats URL has no path' };
      return {
        ok: true,
        destination: {
          kind: 'nats',
          host: hostOf(url),
          port: url.port === '' ? 4222 : Number(url.port),
          username: decoded(url.username),
          password: decoded(url.password),
          subjectPrefix: subject,
        },
      };
    }
    default:
      return { ok: false, message: 'URL must use http, https, amqp, amqps or nats' };
  }
};

/** Schemes that may carry credentials: a broker has no signature of its own to check instead. */
export const isBrokerUrl = (url: URL): boolean =>
  url.protocol === 'amqp:' || url.protocol === 'amqps:' || url.protocol === 'nats:';

/**
 * An endpoint URL split for storage: the URL as shown and kept in clear (the user name stays
 * when there is a password; a bare token, NATS's user-only form, goes), and the user-info part
 * to keep encrypted, or null when there is none.
 */
export const splitCredentials = (text: string): { url: string; userinfo: string | null } => {
  const url = new URL(text);
  if (url.username === '' && url.password === '') return { url: text, userinfo: null };
  const userinfo = url.password === '' ? url.username : `${url.username}:${url.password}`;
  const shown = new URL(text);
  shown.password = '';
  if (url.password === '') shown.username = '';
  return { url: shown.toString(), userinfo };
};

/** The stored URL with its user-info put back (the inverse of splitCredentials). */
export const withUserinfo = (text: string, userinfo: string): string => {
  const url = new URL(text);
  const colon = userinfo.indexOf(':');
  // Already percent-encoded as it was in the URL: the setters keep it as it is.
  url.username = colon === -1 ? userinfo : userinfo.slice(0, colon);
  url.password = colon === -1 ? '' : userinfo.slice(colon + 1);
  return url.toString();
};
