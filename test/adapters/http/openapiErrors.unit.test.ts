import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Response } from 'express';
import {
  sendDatabaseUnavailable,
  sendOverloaded,
  sendTooManyAttempts,
} from '../../../adapters/http/api/errors.ts';
import { openApiDocument } from '../../../adapters/http/api/openapi.ts';
import { reply } from '../../../adapters/http/api/request.ts';
import { responseChecker } from '../../support/openapiResponses.ts';

/**
 * The waits the e2e test cannot provoke on demand (a database out of reach, load shedding, a
 * close that waits for scores), as the helpers that answer them write them: checked against the
 * document like a real answer.
 */
const captured = (send: (res: Response) => void) => {
  const headers = new Headers();
  let status = 200;
  let text = '';
  const res = {
    set: (name: string, value: string) => {
      headers.set(name, value);
      return res;
    },
    status: (code: number) => {
      status = code;
      return res;
    },
    json: (body: unknown) => {
      headers.set('content-type', 'application/json; charset=utf-8');
      text = JSON.stringify(body);
      return res;
    },
  };
  send(res as unknown as Response);
  return { status, headers, text };
};

describe('the OpenAPI document on the waits', () => {
  const { check } = responseChecker(openApiDocument('1.2.3'));

  it('describes database_unavailable and overloaded as 503 with Retry-After', () => {
    for (const send of [sendDatabaseUnavailable, sendOverloaded]) {
      const answer = captured(send);
      assert.equal(answer.status, 503);
      check('get', '/v1/programs/{programId}/members', answer);
      check('post', '/v1/programs/{programId}/members/{memberId}/points/award', answer);
    }
  });

  it('describes a refusal that is a wait (scores_pending) as 503 with Retry-After', () => {
    const answer = captured((res) =>
      reply(res, { ok: false, rejection: 'scores_pending', message: 'wait' }, 200, () => ({})),
    );
    assert.equal(answer.status, 503);
    check('post', '/v1/programs/{programId}/leaderboards/{leaderboardId}/close-period', answer);
  });

  it('describes too_many_attempts as 429 with Retry-After', () => {
    const answer = captured((res) => sendTooManyAttempts(res, 4));
    assert.equal(answer.status, 429);
    check('get', '/v1/audit/checkpoints', answer);
  });

  it('refuses an answer without the Retry-After the document requires', () => {
    const answer = captured(sendOverloaded);
    answer.headers.delete('retry-after');
    assert.throws(() => check('get', '/v1/programs/{programId}/members', answer), /Retry-After/);
  });
});
