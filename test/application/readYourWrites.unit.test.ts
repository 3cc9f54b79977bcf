import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readYourWrites } from '../../application/readYourWrites.ts';
import { comparePositions, type Position } from '../../domain/recordedEvent.ts';

const at = (n: number): Position => ({ commit: BigInt(n), prepare: BigInt(n) });

/** Fake progress: checkpoints that tests move, and a log whose head is where the last append was. */
const progress = (start: { readModels: number; reactor: number; head: number }) => {
  const state = { ...start, headReads: 0, afterHeadRead: () => {} };
  const reached = (checkpoint: number, position: Position) =>
    comparePositions(at(checkpoint), position) >= 0;
  return {
    state,
    ports: {
      readModelsReached: (position: Position) =>
        Promise.resolve(reached(state.readModels, position)),
      reactorReached: (position: Position) => Promise.resolve(reached(state.reactor, position)),
      head: () => {
        state.headReads++;
        const head = at(state.head);
        state.afterHeadRead();
        return Promise.resolve(head);
      },
    },
  };
};

describe('read your writes', () => {
  it('is reached when the reactor has the position and the read models its follow-ups', async () => {
    const p = progress({ readModels: 12, reactor: 10, head: 12 });
    assert.equal(await readYourWrites(p.ports, 1_000)(at(10)), true);
  });

  it('waits for the read models to reach the head as it stood once the reactor had the position', async () => {
    // The award is at 10; the reactor has handled it and appended its tier change at 11.
    const p = progress({ readModels: 10, reactor: 10, head: 11 });
    // Later appends do not prolong the wait: the head is read once.
    p.state.afterHeadRead = () => {
      p.state.head = 50;
      p.state.readModels = 11;
    };
    assert.equal(await readYourWrites(p.ports, 5_000)(at(10)), true);
    assert.equal(p.state.headReads, 1);
  });

  it('is not reached while the reactor is behind, however far the read models are', async () => {
    const p = progress({ readModels: 20, reactor: 9, head: 20 });
    assert.equal(await readYourWrites(p.ports, 30)(at(10)), false);
    assert.equal(p.state.headReads, 0);
  });

  it('is not reached while the read models lack the follow-ups', async () => {
    const p = progress({ readModels: 10, reactor: 10, head: 11 });
    assert.equal(await readYourWrites(p.ports, 30)(at(10)), false);
  });
});
