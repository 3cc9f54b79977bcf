import { BlockList, isIP } from 'node:net';
import { destinationOf, isBrokerUrl } from './destinations.ts';

/**
 * Where an address points, for deciding whether we may POST to it. Anything we cannot place is
 * 'reserved', which is never allowed: the check fails closed.
 */
export type AddressClass =
  | 'public'
  | 'private'
  | 'loopback'
  | 'link_local'
  | 'metadata'
  | 'unspecified'
  | 'multicast'
  | 'reserved';

type Range = readonly [base: string, bits: number, addressClass: AddressClass];

/** IPv4 ranges. Where two overlap, the class that comes first in `precedence` wins. */
const v4Ranges: readonly Range[] = [
  // Cloud instance-metadata services, refused whatever the policy: they hand out credentials.
  ['169.254.169.254', 32, 'metadata'], // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle, IBM
  ['169.254.170.2', 32, 'metadata'], // AWS ECS task metadata and credentials
  ['169.254.0.23', 32, 'metadata'], // Tencent Cloud
  ['100.100.100.200', 32, 'metadata'], // Alibaba Cloud (inside CGNAT space)
  ['192.0.0.192', 32, 'metadata'], // Oracle Cloud (legacy)
  ['168.63.129.16', 32, 'metadata'], // Azure WireServer (a public address, platform-internal)
  ['0.0.0.0', 8, 'unspecified'],
  ['127.0.0.0', 8, 'loopback'],
  ['10.0.0.0', 8, 'private'],
  ['172.16.0.0', 12, 'private'],
  ['192.168.0.0', 16, 'private'],
  ['100.64.0.0', 10, 'private'], // CGNAT: not reachable from the internet, so internal to someone
  ['169.254.0.0', 16, 'link_local'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'], // with the limited broadcast 255.255.255.255
  ['192.0.0.0', 24, 'reserved'], // IETF protocol assignments
  ['192.0.2.0', 24, 'reserved'], // TEST-NET-1
  ['198.51.100.0', 24, 'reserved'], // TEST-NET-2
  ['203.0.113.0', 24, 'reserved'], // TEST-NET-3
  ['198.18.0.0', 15, 'reserved'], // benchmarking
  ['192.88.99.0', 24, 'reserved'], // deprecated 6to4 relay anycast
];

/** An IPv4 address as the two 16-bit groups an IPv6 address embeds it as (6to4). */
const v4Groups = (dotted: string): string => {
  const [a = 0, b = 0, c = 0, d = 0] = dotted.split('.').map(Number);
  return `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
};

/**
 * IPv6 ranges that embed an IPv4 address: the gateway talks IPv4 to the embedded address, so it
 * is classified as that address (the range itself is public). IPv4-mapped addresses
 * (::ffff:a.b.c.d, the socket talks IPv4) need no embedding: BlockList matches them against
 * IPv4 rules itself.
 */
const v4Embeddings: readonly { base: string; bits: number; embed: (v4: string) => string }[] = [
  { base: '64:ff9b::', bits: 96, embed: (v4) => `64:ff9b::${v4}` }, // NAT64 well-known prefix
  { base: '2002::', bits: 16, embed: (v4) => `2002:${v4Groups(v4)}::` }, // 6to4
];

/** IPv6 ranges of its own (the embedded IPv4 ranges are derived from v4Ranges). */
const v6Ranges: readonly Range[] = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['fd00:ec2::254', 128, 'metadata'], // AWS instance metadata over IPv6, inside fc00::/7
  ['fc00::', 7, 'private'], // unique local
  ['fe80::', 10, 'link_local'],
  ['ff00::', 8, 'multicast'],
  ['2001:db8::', 32, 'reserved'], // documentation
  ['2001::', 32, 'reserved'], // Teredo: tunnels to an address we cannot see
];

/**
 * The order in which overlapping ranges are tried, narrow before wide: a metadata address in
 * link-local or CGNAT space is metadata; an embedded IPv4 address is its own class before the
 * embedding range counts as public; the rest of ::/8 (IPv4-compatible ::a.b.c.d and unassigned)
 * is reserved; only 2000::/3 is allocated global unicast, and whatever no range names
 * (fec0::/10 site-local...) is reserved.
 */
const precedence = [
  'metadata',
  'unspecified',
  'loopback',
  'private',
  'link_local',
  'multicast',
  'reserved',
] as const;

type Rule = { list: BlockList; addressClass: AddressClass };

/** One BlockList per class, in precedence order, then the catch-all ranges. */
const rules = (
  ranges: readonly (readonly [base: string, bits: number, AddressClass, 'ipv4' | 'ipv6'])[],
  after: readonly (readonly [base: string, bits: number, AddressClass])[],
): Rule[] => {
  const listOf = (entries: typeof ranges) => {
    const list = new BlockList();
    for (const [base, bits, , family] of entries) list.addSubnet(base, bits, family);
    return list;
  };
  return [
    ...precedence.map((addressClass) => ({
      addressClass,
      list: listOf(ranges.filter(([, , c]) => c === addressClass)),
    })),
    ...after.map(([base, bits, addressClass]) => ({
      addressClass,
      list: listOf([[base, bits, addressClass, 'ipv6']]),
    })),
  ];
};

/**
 * The classes' rules, as node:net's BlockList parses and matches them. An IPv4 address is
 * checked against IPv4 rules only: BlockList would also match it, as ::ffff:a.b.c.d, against
 * IPv6 ranges such as ::/8.
 */
const v4Rules = rules(
  v4Ranges.map(([base, bits, c]) => [base, bits, c, 'ipv4'] as const),
  [],
);
const v6Rules = rules(
  [
    ...v4Ranges.flatMap(([base, bits, c]) => [
      [base, bits, c, 'ipv4'] as const, // IPv4-mapped
      ...v4Embeddings.map((e) => [e.embed(base), e.bits + bits, c, 'ipv6'] as const),
    ]),
    ...v6Ranges.map(([base, bits, c]) => [base, bits, c, 'ipv6'] as const),
  ],
  [
    ['::ffff:0:0', 96, 'public'], // IPv4-mapped, of a public IPv4 address
    ...v4Embeddings.map(({ base, bits }) => [base, bits, 'public'] as const),
    ['::', 8, 'reserved'],
    ['2000::', 3, 'public'],
  ],
);

const firstMatch = (rules: readonly Rule[], ip: string, family: 'ipv4' | 'ipv6') =>
  rules.find((r) => r.list.check(ip, family))?.addressClass;

/** Classifies an IP literal (no brackets; an IPv6 zone id is ignored). Not an IP: 'reserved'. */
export const classifyAddress = (ip: string): AddressClass => {
  const unbracketed = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const bare = unbracketed.split('%')[0] ?? '';
  switch (isIP(bare)) {
    case 4:
      return firstMatch(v4Rules, bare, 'ipv4') ?? 'public';
    case 6:
      return firstMatch(v6Rules, bare, 'ipv6') ?? 'reserved';
    default:
      return 'reserved';
  }
};

export type NetworkPolicy = {
  /** Self-hosters deliver to their own LAN; the hosted product must not. Never opens metadata. */
  allowPrivateNetworks: boolean;
};

export const isAddressAllowed = (ip: string, policy: NetworkPolicy): boolean => {
  const addressClass = classifyAddress(ip);
  switch (addressClass) {
    case 'public':
      return true;
    case 'private':
    case 'loopback':
      return policy.allowPrivateNetworks;
    case 'link_local':
    case 'metadata':
    case 'unspecified':
    case 'multicast':
    case 'reserved':
      return false;
  }
};

export type EndpointUrlRejection =
  | 'invalid_url'
  | 'unsupported_scheme'
  | 'credentials_in_url'
  | 'url_too_long'
  | 'address_not_allowed';

export type EndpointUrlCheck =
  { ok: true; url: URL } | { ok: false; code: EndpointUrlRejection; message: string };

const maxUrlLength = 2048;

/** `localhost` and `*.localhost` resolve to loopback by definition (RFC 6761). */
const isLocalhostName = (hostname: string): boolean => {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
};

/**
 * Checks an endpoint URL when it is saved: an HTTP(S) URL without credentials, or a broker URL
 * (delivery/destinations.ts), which may carry them. Hostnames other than localhost are checked again at
 * delivery time, on the resolved address (DNS can change between saving and sending). The WHATWG
 * parser normalises numeric hosts (`http://2130706433/`, `http://0x7f.1/`) to dotted IPv4 first,
 * so those are caught as literals.
 */
export const validateEndpointUrl = (text: string, policy: NetworkPolicy): EndpointUrlCheck => {
  if (text.length > maxUrlLength) {
    return {
      ok: false,
      code: 'url_too_long',
      message: `URL is longer than ${maxUrlLength} characters`,
    };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, code: 'invalid_url', message: 'URL cannot be parsed' };
  }
  const destination = destinationOf(url);
  if (!destination.ok) {
    const known = ['http:', 'https:', 'amqp:', 'amqps:', 'nats:'].includes(url.protocol);
    return {
      ok: false,
      code: known ? 'invalid_url' : 'unsupported_scheme',
      message: destination.message,
    };
  }
  if (!isBrokerUrl(url) && (url.username !== '' || url.password !== '')) {
    return {
      ok: false,
      code: 'credentials_in_url',
      message: 'URL must not contain a username or password; verify the signature instead',
    };
  }
  if (url.hostname === '') {
    return { ok: false, code: 'invalid_url', message: 'URL has no host' };
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (isIP(host) !== 0 || isLocalhostName(host)) {
    const addressClass = isIP(host) !== 0 ? classifyAddress(host) : 'loopback';
    const allowed = isIP(host) !== 0 ? isAddressAllowed(host, policy) : policy.allowPrivateNetworks;
    if (!allowed) {
      return {
        ok: false,
        code: 'address_not_allowed',
        message: `URL points to a ${addressClass.replace('_', '-')} address, which is not allowed`,
      };
    }
  }
  return { ok: true, url };
};
