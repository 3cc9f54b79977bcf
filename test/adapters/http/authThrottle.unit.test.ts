import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressKey, authThrottle } from '../../../adapters/http/authThrottle.ts';

const clockAt = (startMs: number) => {
  let nowMs = startMs;
  return {
    clock: { now: () => new Date(nowMs) },
    advance: (ms: number) => {
      nowMs += ms;
    },
  };
};

const ip = '203.0.113.7';

describe('failed-authentication throttle', () => {
  describe('with fewer than 10 failures in a minute', () => {
    it('lets the address keep trying', () => {
      const { clock, advance } = clockAt(0);
      const throttle = authThrottle({ clock });
      for (let i = 0; i < 9; i++) {
        assert.equal(throttle.retryAfterS(ip), 0);
        throttle.failed(ip);
        advance(1_000);
      }
      assert.equal(throttle.retryAfterS(ip), 0);
    });

    it('forgets failures older than the minute', () => {
      const { clock, advance } = clockAt(0);
      const throttle = authThrottle({ clock });
      for (let i = 0; i < 9; i++) throttle.failed(ip);
      advance(60_001);
      for (let i = 0; i < 9; i++) throttle.failed(ip);
      assert.equal(throttle.retryAfterS(ip), 0);
    });
  });

  describe('after 10 failures in a minute', () => {
    it('blocks for 1 s, then doubles with each further failure up to 5 minutes', () => {
      const { clock, advance } = clockAt(0);
      const throttle = authThrottle({ clock });
      for (let i = 0; i < 10; i++) throttle.failed(ip);
      const waits: number[] = [];
      for (let round = 0; round < 12; round++) {
        const wait = throttle.retryAfterS(ip);
        waits.push(wait);
        advance(wait * 1_000);
        assert.equal(throttle.retryAfterS(ip), 0);
        throttle.failed(ip);
      }
      assert.deepEqual(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    });

    it('rounds a partial second up, so a client that waits Retry-After is let through', () => {
      const { clock, advance } = clockAt(0);
      const throttle = authThrottle({ clock });
      for (let i = 0; i < 11; i++) {
        throttle.failed(ip);
        if (i === 9) advance(1_000);
      }
      advance(300);
      assert.equal(throttle.retryAfterS(ip), 2);
      advance(1_699);
      assert.equal(throttle.retryAfterS(ip), 1);
      advance(1);
      assert.equal(throttle.retryAfterS(ip), 0);
    });

    it('starts over after a success', () => {
      const { clock, advance } = clockAt(0);
      const throttle = authThrottle({ clock });
      for (let i = 0; i < 10; i++) throttle.failed(ip);
      advance(1_000);
      throttle.succeeded(ip);
      for (let i = 0; i < 9; i++) throttle.failed(ip);
      assert.equal(throttle.retryAfterS(ip), 0);
      throttle.failed(ip);
      assert.equal(throttle.retryAfterS(ip), 1);
    });

    it('starts over after a quiet minute past the block', () => {
      const { clock, advance } = clockAt(0);
      const throttle = authThrottle({ clock });
      for (let i = 0; i < 12; i++) {
        throttle.failed(ip);
        advance(throttle.retryAfterS(ip) * 1_000);
      }
      advance(60_000);
      throttle.failed(ip);
      assert.equal(throttle.retryAfterS(ip), 0);
    });

    it('blocks only that address', () => {
      const { clock } = clockAt(0);
      const throttle = authThrottle({ clock });
      for (let i = 0; i < 10; i++) throttle.failed(ip);
      assert.equal(throttle.retryAfterS(ip), 1);
      assert.equal(throttle.retryAfterS('203.0.113.8'), 0);
    });
  });

  it('keeps at most maxAddresses in memory', () => {
    const { clock } = clockAt(0);
    const throttle = authThrottle({ clock, policy: { maxAddresses: 100 } });
    for (let i = 0; i < 10; i++) throttle.failed('198.51.100.1');
    for (let i = 0; i < 1_000; i++) throttle.failed(`10.0.${i >> 8}.${i & 255}`);
    assert.ok(throttle.size() <= 100);
  });

  describe('addresses', () => {
    it('treats an IPv4-mapped IPv6 address as the IPv4 one', () => {
      assert.equal(addressKey('::ffff:203.0.113.7'), '203.0.113.7');
      assert.equal(addressKey('203.0.113.7'), '203.0.113.7');
    });

    it('groups IPv6 by its /64, which one host commonly holds whole', () => {
      assert.equal(
        addressKey('2001:db8:1:2:aaaa::1'),
        addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'),
      );
      assert.notEqual(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'));
      assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
      assert.equal(addressKey('::1'), '0:0:0:0::/64');
    });
  });
});
