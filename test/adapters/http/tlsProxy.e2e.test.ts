import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startTestApp } from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';

/** The sign-in page sets a cookie: what a browser behind a TLS-terminating proxy would get. */
const signInPage = async (env: Record<string, string>, headers: Record<string, string> = {}) => {
  const app = await startTestApp({ env });
  try {
    const response = await fetch(`${app.url}/dashboard/sign-in`, { headers });
    assert.equal(response.status, 200);
    return {
      cookie: response.headers.getSetCookie().join('\n'),
      hsts: response.headers.get('strict-transport-security'),
    };
  } finally {
    await app.stop();
  }
};

describe('the dashboard behind a TLS proxy', { skip: skipWithoutPostgres }, () => {
  const forwarded = { 'x-forwarded-proto': 'https' };

  it('ignores X-Forwarded-Proto unless TRUST_PROXY trusts the proxy', async () => {
    const { cookie, hsts } = await signInPage({}, forwarded);
    assert.ok(cookie.length > 0);
    assert.doesNotMatch(cookie, /Secure/);
    assert.equal(hsts, null);
  });

  it('marks cookies Secure and sends HSTS for https through a trusted proxy', async () => {
    const { cookie, hsts } = await signInPage({ TRUST_PROXY: 'loopback' }, forwarded);
    assert.match(cookie, /; Secure/);
    assert.match(hsts ?? '', /^max-age=\d+/);
  });

  it('marks cookies Secure whenever PUBLIC_URL is https', async () => {
    const { cookie, hsts } = await signInPage({ PUBLIC_URL: 'https://rewards.example.com' });
    assert.match(cookie, /; Secure/);
    assert.equal(hsts, null, 'HSTS only on a response that really went over https');
  });
});
