import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { envelopeIdFor, formatCreatedAt, serializeEnvelope } from '../../delivery/envelope.ts';

describe('the webhook envelope', () => {
  it("serialises to the docs' byte shape: id, type, created_at, data", () => {
    const body = serializeEnvelope({
      id: 'evt_abc123',
      type: 'points.awarded',
      createdAt: new Date('2024-06-15T14:30:00Z'),
      data: {
        transaction_id: 'txn_def456',
        member_id: 'mem_abc123',
        points: 500,
        reason: 'Q2 Sales Target',
        new_balance: 5500,
      },
    });
    assert.equal(
      body,
      '{"id":"evt_abc123","type":"points.awarded","created_at":"2024-06-15T14:30:00Z",' +
        '"data":{"transaction_id":"txn_def456","member_id":"mem_abc123","points":500,' +
        '"reason":"Q2 Sales Target","new_balance":5500}}',
    );
  });

  it('prints created_at in UTC to the second, truncating milliseconds', () => {
    assert.equal(
      formatCreatedAt(new Date('2024-06-15T16:30:00.999+02:00')),
      '2024-06-15T14:30:00Z',
    );
  });
});

describe('envelope ids', () => {
  it('are evt_ and 24 lowercase alphanumerics', () => {
    assert.match(envelopeIdFor('0b7c1a52-7a55-4c1e-9d7f-2c52c0f1e5a1'), /^evt_[a-z2-7]{24}$/);
  });

  it('are the same for the same domain event, so a replay never mints a new id', () => {
    assert.equal(envelopeIdFor('event-42'), envelopeIdFor('event-42'));
    assert.equal(envelopeIdFor('event-42'), 'evt_' + envelopeIdFor('event-42').slice(4));
  });

  it('differ between domain events', () => {
    const ids = new Set(Array.from({ length: 1000 }, (_, i) => envelopeIdFor(`event-${i}`)));
    assert.equal(ids.size, 1000);
  });
});
