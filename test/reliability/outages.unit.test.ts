import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Observation } from './support/client.ts';
import { checkOutages } from './support/outages.ts';

const answer = (at: number, status: number, extra: Partial<Observation> = {}): Observation => ({
  at,
  sentAt: at - 5,
  target: 'http://127.0.0.1:1',
  status,
  code: null,
  retryAfter: null,
  excerpt: null,
  ...extra,
});
const unavailable = (at: number) =>
  answer(at, 503, { code: 'database_unavailable', retryAfter: '1' });
const outage = { label: 'restart 1', from: 1000, to: 3000 };

describe('the outage check', () => {
  it('passes 503 database_unavailable during the outage and a 201 soon after', () => {
    const result = checkOutages({
      outages: [outage],
      observations: [answer(900, 201), unavailable(1500), unavailable(2500), answer(3500, 201)],
      readiness: [{ at: 2000, status: 503 }],
      expectAnswersDuring: true,
    });
    assert.deepEqual(result.problems, []);
    assert.deepEqual(result.resumeMs, [500]);
  });

  it('counts 500s as problems', () => {
    const result = checkOutages({
      outages: [outage],
      observations: [answer(1500, 500, { excerpt: 'oops' }), unavailable(2000), answer(3500, 201)],
      readiness: [{ at: 2000, status: 503 }],
      expectAnswersDuring: true,
    });
    assert.deepEqual(result.problems, [
      '1 requests got a 500 instead of 503 database_unavailable (first body: oops)',
    ]);
  });

  it('wants Retry-After and the code on every 503', () => {
    const result = checkOutages({
      outages: [outage],
      observations: [answer(1500, 503, { code: 'database_unavailable' }), answer(3500, 201)],
      expectAnswersDuring: true,
    });
    assert.match(result.problems[0]!, /lack code database_unavailable\/overloaded or Retry-After/);
  });

  it('takes 503 overloaded with Retry-After, and no other 503 code', () => {
    const shed = checkOutages({
      outages: [outage],
      observations: [answer(1500, 503, { code: 'overloaded', retryAfter: '1' }), answer(3500, 201)],
      expectAnswersDuring: true,
    });
    assert.deepEqual(shed.problems, []);
    const other = checkOutages({
      outages: [outage],
      observations: [answer(1500, 503, { code: 'busy', retryAfter: '1' }), answer(3500, 201)],
      expectAnswersDuring: true,
    });
    assert.equal(other.problems.length, 1);
  });

  it('finds a service that vanished instead of answering, and one slow to resume', () => {
    const result = checkOutages({
      outages: [outage],
      observations: [answer(1500, 0, { code: 'ECONNREFUSED' }), answer(9000, 201)],
      readiness: [{ at: 2000, status: 0 }],
      expectAnswersDuring: true,
    });
    assert.equal(result.problems.length, 3);
    assert.match(result.problems[0]!, /no request was answered 503/);
    assert.match(result.problems[1]!, /readyz never said 503/);
    assert.match(result.problems[2]!, /first after 6000 ms/);
  });
});
