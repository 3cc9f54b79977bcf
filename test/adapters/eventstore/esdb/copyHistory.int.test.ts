import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openDatabase, type DatabaseHandle } from '../../../../adapters/db/database.ts';
import { copyHistory } from '../../../../adapters/eventstore/esdb/copyHistory.ts';
import { PostgresEventStore } from '../../../../adapters/eventstore/postgresEventStore.ts';
import type { EventStore } from '../../../../application/ports.ts';
import type { RecordedEvent } from '../../../../domain/recordedEvent.ts';
import {
  createTestDatabase,
  skipWithoutPostgres,
  type TestDatabase,
} from '../../../support/postgres.ts';
import { newEvent } from '../contract.ts';
import { standInFixture } from './standIn.ts';

const everything = async (store: EventStore<unknown>): Promise<RecordedEvent[]> => {
  const all: RecordedEvent[] = [];
  for (let after = null; ;) {
    const page = await store.readAll({ after, limit: 100 });
    if (page.length === 0) return all;
    all.push(...page);
    after = page[page.length - 1]!.position;
  }
};

const comparable = (events: RecordedEvent[]) =>
  events.map(({ id, type, data, streamName, revision, metadata, hash }) => ({
    id,
    type,
    data,
    streamName,
    revision,
    metadata,
    hash,
  }));

const writeHistory = async (store: EventStore<unknown>) => {
  for (let i = 0; i < 30; i++) {
    const stream = `member-prg_copy-m${i % 7}`;
    const existing = await store.readStream(stream);
    await store.append(
      stream,
      [
        newEvent('PointsAwarded', { i, text: 'ünïcødé' }, 'prg_copy'),
        ...(i % 3 === 0 ? [newEvent('Noted', { i }, 'prg_copy')] : []),
      ],
      existing.length === 0 ? 'no_stream' : BigInt(existing.length - 1),
    );
  }
};

describe('eventstore copy', { skip: skipWithoutPostgres }, () => {
  const databases: TestDatabase[] = [];
  const handles: DatabaseHandle[] = [];
  const open = async () => {
    const database = await createTestDatabase();
    databases.push(database);
    const handle = await openDatabase({ kind: 'postgres', url: database.url });
    handles.push(handle);
    return new PostgresEventStore(handle, { pollIntervalMs: 100 });
  };
  let source: PostgresEventStore;
  before(async () => {
    source = await open();
    await writeHistory(source);
  });
  after(async () => {
    for (const handle of handles) await handle.close();
    for (const database of databases) await database.drop();
  });

  it('copies Postgres to another Postgres database with identical ids, order, data and hash chain', async () => {
    const target = await open();
    const report = await copyHistory({ from: source, to: target, pageSize: 7 });
    assert.equal(report.events, 40);
    assert.deepEqual(comparable(await everything(target)), comparable(await everything(source)));
    const again = await copyHistory({ from: source, to: target });
    assert.deepEqual(
      { appended: again.appended, alreadyThere: again.alreadyThere },
      { appended: 0, alreadyThere: 40 },
    );
  });

  it('round-trips Postgres -> EventStoreDB (stand-in) -> Postgres unchanged', async () => {
    const esdb = await standInFixture();
    try {
      await copyHistory({ from: source, to: esdb.store });
      const back = await open();
      await copyHistory({ from: esdb.store, to: back });
      assert.deepEqual(comparable(await everything(back)), comparable(await everything(source)));
    } finally {
      await esdb.close();
    }
  });
});
