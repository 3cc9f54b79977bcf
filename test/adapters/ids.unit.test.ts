import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isId } from '../../domain/ids.ts';
import { newId, newTimeOrderedId } from '../../adapters/ids.ts';

describe('ids', () => {
  it('makes random ids of the documented shape', () => {
    const ids = Array.from({ length: 1000 }, () => newId('member'));
    for (const id of ids) {
      assert.ok(isId('member', id), id);
      assert.equal(id.length, 'mem_'.length + 20);
    }
    assert.equal(new Set(ids).size, ids.length);
  });

  it('makes time-ordered ids that sort bytewise by their time, whatever the random part', () => {
    // From 1970 to the year 5000, in milliseconds.
    const time = fc.integer({ min: 0, max: 95_617_584_000_000 });
    fc.assert(
      fc.property(time, time, (a, b) => {
        const [x, y] = [
          newTimeOrderedId('webhookDelivery', a),
          newTimeOrderedId('webhookDelivery', b),
        ];
        assert.ok(isId('webhookDelivery', x), x);
        assert.equal(x.length, 'wdl_'.length + 20);
        // Compared as PostgreSQL compares them under COLLATE "C": by code unit.
        if (a < b) assert.ok(x < y, `${x} (${a}) sorts before ${y} (${b})`);
        if (a > b) assert.ok(x > y, `${x} (${a}) sorts after ${y} (${b})`);
      }),
    );
  });

  it('keeps time-ordered ids made in the same millisecond distinct', () => {
    const ids = Array.from({ length: 10_000 }, () =>
      newTimeOrderedId('webhookDelivery', 1_800_000_000_000),
    );
    assert.equal(new Set(ids).size, ids.length);
  });
});
