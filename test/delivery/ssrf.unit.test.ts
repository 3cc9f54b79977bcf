import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  classifyAddress,
  isAddressAllowed,
  validateEndpointUrl,
  type AddressClass,
  type EndpointUrlRejection,
} from '../../delivery/ssrf.ts';

describe('classifying an address', () => {
  const table: readonly (readonly [string, AddressClass])[] = [
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['93.184.216.34', 'public'],
    ['172.15.255.255', 'public'],
    ['172.32.0.0', 'public'],
    ['100.63.255.255', 'public'],
    ['100.128.0.0', 'public'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.254', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['100.127.255.254', 'private'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.0.1', 'link_local'],
    ['169.254.169.254', 'metadata'],
    ['169.254.170.2', 'metadata'],
    ['169.254.0.23', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['192.0.0.192', 'metadata'],
    ['168.63.129.16', 'metadata'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['192.0.2.10', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['::', 'unspecified'],
    ['2606:4700:4700::1111', 'public'],
    ['2001:4860:4860::8888', 'public'],
    ['fc00::1', 'private'],
    ['fd12:3456:789a::1', 'private'],
    ['fe80::1', 'link_local'],
    ['fe80::1%eth0', 'link_local'],
    ['febf::1', 'link_local'],
    ['ff02::1', 'multicast'],
    ['fd00:ec2::254', 'metadata'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:a9fe:a9fe', 'metadata'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['::ffff:8.8.8.8', 'public'],
    ['0:0:0:0:0:ffff:c0a8:0101', 'private'],
    ['64:ff9b::7f00:1', 'loopback'],
    ['64:ff9b::169.254.169.254', 'metadata'],
    ['64:ff9b::808:808', 'public'],
    ['2002:7f00:1::', 'loopback'],
    ['2002:0a01:0203::1', 'private'],
    ['2002:808:808::1', 'public'],
    ['2002:c058:6301::', 'reserved'],
    ['64:ff9b::10.1.2.3', 'private'],
    ['64:ff9b::240.0.0.1', 'reserved'],
    ['::ffff:240.0.0.1', 'reserved'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['2001:0:4136:e378::1', 'reserved'],
    ['fd00:ec2::253', 'private'],
    ['3fff::1', 'public'],
    ['4000::1', 'reserved'],
    ['::127.0.0.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['fec0::1', 'reserved'],
    ['[::1]', 'loopback'],
    ['example.com', 'reserved'],
    ['', 'reserved'],
  ];
  for (const [ip, expected] of table) {
    it(`classifies "${ip}" as ${expected}`, () => {
      assert.equal(classifyAddress(ip), expected);
    });
  }
});

describe('allowing an address', () => {
  const table: readonly (readonly [string, boolean, boolean])[] = [
    // [address, allowed without private networks, allowed with them]
    ['8.8.8.8', true, true],
    ['2606:4700:4700::1111', true, true],
    ['10.0.0.1', false, true],
    ['127.0.0.1', false, true],
    ['::1', false, true],
    ['::ffff:192.168.0.1', false, true],
    ['169.254.169.254', false, false],
    ['fd00:ec2::254', false, false],
    ['::ffff:169.254.169.254', false, false],
    ['169.254.1.1', false, false],
    ['fe80::1', false, false],
    ['0.0.0.0', false, false],
    ['::', false, false],
    ['224.0.0.1', false, false],
    ['255.255.255.255', false, false],
  ];
  for (const [ip, strict, permissive] of table) {
    it(`${strict ? 'allows' : 'refuses'} ${ip} by default and ${permissive ? 'allows' : 'refuses'} it on private networks`, () => {
      assert.equal(isAddressAllowed(ip, { allowPrivateNetworks: false }), strict);
      assert.equal(isAddressAllowed(ip, { allowPrivateNetworks: true }), permissive);
    });
  }
});

describe('validating an endpoint URL', () => {
  const strict = { allowPrivateNetworks: false };
  const permissive = { allowPrivateNetworks: true };
  const accepted: readonly (readonly [string, { allowPrivateNetworks: boolean }])[] = [
    ['https://hooks.example.com/incentable', strict],
    ['http://hooks.example.com:8080/path?q=1', strict],
    ['https://8.8.8.8/hook', strict],
    ['https://[2606:4700:4700::1111]/hook', strict],
    ['http://127.0.0.1:3000/hook', permissive],
    ['http://localhost:3000/hook', permissive],
    ['http://192.168.1.20/hook', permissive],
    ['http://[::1]:8080/hook', permissive],
  ];
  for (const [text, policy] of accepted) {
    it(`accepts ${text}${policy.allowPrivateNetworks ? ' on private networks' : ''}`, () => {
      const result = validateEndpointUrl(text, policy);
      assert.equal(result.ok, true);
      assert.equal(result.ok && result.url.href, new URL(text).href);
    });
  }

  const refused: readonly (readonly [
    string,
    { allowPrivateNetworks: boolean },
    EndpointUrlRejection,
  ])[] = [
    ['not a url', strict, 'invalid_url'],
    ['https://', strict, 'invalid_url'],
    ['ftp://example.com/hook', strict, 'unsupported_scheme'],
    ['file:///etc/passwd', strict, 'unsupported_scheme'],
    ['javascript:alert(1)', strict, 'unsupported_scheme'],
    ['https://user:pass@example.com/hook', strict, 'credentials_in_url'],
    ['https://user@example.com/hook', strict, 'credentials_in_url'],
    [`https://example.com/${'a'.repeat(2048)}`, strict, 'url_too_long'],
    ['http://127.0.0.1/hook', strict, 'address_not_allowed'],
    ['http://localhost/hook', strict, 'address_not_allowed'],
    ['http://LOCALHOST./hook', strict, 'address_not_allowed'],
    ['http://api.localhost/hook', strict, 'address_not_allowed'],
    ['http://10.0.0.5/hook', strict, 'address_not_allowed'],
    ['http://[::1]/hook', strict, 'address_not_allowed'],
    ['http://[::ffff:127.0.0.1]/hook', strict, 'address_not_allowed'],
    ['http://2130706433/hook', strict, 'address_not_allowed'],
    ['http://0x7f.1/hook', strict, 'address_not_allowed'],
    ['http://0/hook', strict, 'address_not_allowed'],
    ['http://169.254.169.254/latest/meta-data', permissive, 'address_not_allowed'],
    ['http://[fd00:ec2::254]/latest/meta-data', permissive, 'address_not_allowed'],
    ['http://[fe80::1]/hook', permissive, 'address_not_allowed'],
    ['http://0.0.0.0:3000/hook', permissive, 'address_not_allowed'],
  ];
  for (const [text, policy, code] of refused) {
    it(`refuses ${text.slice(0, 60)} as ${code}${policy.allowPrivateNetworks ? ' even on private networks' : ''}`, () => {
      const result = validateEndpointUrl(text, policy);
      assert.equal(result.ok, false);
      assert.equal(result.ok ? null : result.code, code);
    });
  }

  it('accepts a URL of exactly 2048 characters', () => {
    const base = 'https://example.com/';
    assert.equal(validateEndpointUrl(base + 'a'.repeat(2048 - base.length), strict).ok, true);
  });
});
