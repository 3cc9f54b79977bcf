import { isIP } from 'node:net';

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

const parseIpv4 = (text: string): number => {
  const [a = 0, b = 0, c = 0, d = 0] = text.split('.').map(Number);
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
};

const inV4 = (address: number, base: string, prefixBits: number): boolean => {
  if (prefixBits === 0) return true;
  const mask = (~0 << (32 - prefixBits)) >>> 0;
  return (address & mask) >>> 0 === (parseIpv4(base) & mask) >>> 0;
};

/** [base, prefix, class], first match wins, so the narrow ranges come first. */
const v4Ranges: readonly (readonly [string, number, AddressClass])[] = [
  // Cloud instance-metadata services, refused whatever the policy: they hand out credentials.
  ['169.254.169.254', 32, 'metadata'], // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle, IBM
  ['169.254.170.2', 32, 'metadata'], // AWS ECS task metadata and credentials
  ['169.254.0.23', 32, 'metadata'], // Tencent Cloud
  ['100.100.100.200', 32, 'metadata'], // Alibaba Cloud (inside CGNAT space, so named first)
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
  ['255.255.255.255', 32, 'reserved'], // limited broadcast, inside 240/4 but named for clarity
  ['240.0.0.0', 4, 'reserved'],
  ['192.0.0.0', 24, 'reserved'], // IETF protocol assignments
  ['192.0.2.0', 24, 'reserved'], // TEST-NET-1
  ['198.51.100.0', 24, 'reserved'], // TEST-NET-2
  ['203.0.113.0', 24, 'reserved'], // TEST-NET-3
  ['198.18.0.0', 15, 'reserved'], // benchmarking
  ['192.88.99.0', 24, 'reserved'], // deprecated 6to4 relay anycast
];

const classifyIpv4 = (text: string): AddressClass => {
  const address = parseIpv4(text);
  for (const [base, prefixBits, addressClass] of v4Ranges) {
    if (inV4(address, base, prefixBits)) return addressClass;
  }
  return 'public';
};

/** Eight 16-bit groups; the input has already passed isIP(..) === 6. */
const parseIpv6 = (text: string): number[] => {
  const withoutZone = text.split('%')[0] ?? '';
  const toGroups = (part: string): number[] => {
    if (part === '') return [];
    return part.split(':').flatMap((piece) => {
      if (piece.includes('.')) {
        const v4 = parseIpv4(piece);
        return [v4 >>> 16, v4 & 0xffff];
      }
      return [parseInt(piece, 16)];
    });
  };
  const [head = '', tail] = withoutZone.split('::');
  const headGroups = toGroups(head);
  if (tail === undefined) return headGroups;
  const tailGroups = toGroups(tail);
  const zeros = new Array<number>(8 - headGroups.length - tailGroups.length).fill(0);
  return [...headGroups, ...zeros, ...tailGroups];
};

const v4FromGroups = (high: number, low: number): string =>
  [high >>> 8, high & 0xff, low >>> 8, low & 0xff].join('.');

const classifyIpv6 = (text: string): AddressClass => {
  const g = parseIpv6(text);
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g;
  const firstSixZero = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0;
  if (firstSixZero && g6 === 0 && g7 === 0) return 'unspecified';
  if (firstSixZero && g6 === 0 && g7 === 1) return 'loopback';
  // IPv4-mapped (::ffff:a.b.c.d, also written ::ffff:7f00:1): the socket talks IPv4 to a.b.c.d.
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff) {
    return classifyIpv4(v4FromGroups(g6, g7));
  }
  // NAT64 well-known prefix 64:ff9b::/96: the gateway forwards to the embedded IPv4 address.
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) {
    return classifyIpv4(v4FromGroups(g6, g7));
  }
  // Deprecated IPv4-compatible ::a.b.c.d and the rest of ::/8.
  if (g0 >>> 8 === 0) return 'reserved';
  if (
    g0 === 0xfd00 &&
    g1 === 0x0ec2 &&
    g2 === 0 &&
    g3 === 0 &&
    g4 === 0 &&
    g5 === 0 &&
    g6 === 0 &&
    g7 === 0x254
  ) {
    return 'metadata'; // AWS instance metadata over IPv6
  }
  if ((g0 & 0xfe00) === 0xfc00) return 'private'; // fc00::/7 unique local
  if ((g0 & 0xffc0) === 0xfe80) return 'link_local'; // fe80::/10
  if ((g0 & 0xff00) === 0xff00) return 'multicast'; // ff00::/8
  // 6to4 (2002::/16) embeds an IPv4 address; a non-public one means an internal target.
  if (g0 === 0x2002) {
    const embedded = classifyIpv4(v4FromGroups(g1, g2));
    return embedded === 'public' ? 'public' : embedded;
  }
  if (g0 === 0x2001 && g1 === 0x0db8) return 'reserved'; // documentation
  if (g0 === 0x2001 && g1 === 0) return 'reserved'; // Teredo: tunnels to an address we cannot see
  // Only 2000::/3 is allocated global unicast; the rest (fec0::/10 site-local...) is not public.
  if ((g0 & 0xe000) === 0x2000) return 'public';
  return 'reserved';
};

/** Classifies an IP literal (no brackets; an IPv6 zone id is ignored). Not an IP: 'reserved'. */
export const classifyAddress = (ip: string): AddressClass => {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  switch (isIP(bare)) {
    case 4:
      return classifyIpv4(bare);
    case 6:
      return classifyIpv6(bare);
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
 * Checks an endpoint URL when it is saved. Hostnames other than localhost are checked again at
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
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, code: 'unsupported_scheme', message: 'URL must use http or https' };
  }
  if (url.username !== '' || url.password !== '') {
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
