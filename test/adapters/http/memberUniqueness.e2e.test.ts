import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CommandHandler } from '../../../application/commandHandler.ts';
import { streams } from '../../../application/incentives.ts';
import { replayReadModels } from '../../../adapters/audit/replay.ts';
import { verifyChains } from '../../../adapters/audit/verify.ts';
import { loadConfig } from '../../../adapters/config.ts';
import { startRuntime, type Runtime } from '../../../adapters/runtime.ts';
import { member, type MemberEvent } from '../../../domain/member.ts';
import type { IdentifierKind, ReservationEvent } from '../../../domain/memberReservation.ts';
import {
  apiClient,
  createMember,
  createProgram,
  expectStatus,
  settle,
  startTestApp,
  type Api,
  type MemberView,
  type Page,
  type TestApp,
} from '../../support/api.ts';
import { skipWithoutPostgres } from '../../support/postgres.ts';

type Conflict = { error: { code: string; field?: string; member_id?: string } };

const unique = (prefix: string) => `${prefix}-${randomBytes(6).toString('hex')}`;

describe('one member per person within a program', { skip: skipWithoutPostgres }, () => {
  let app: TestApp;
  let api: Api;
  let programId: string;
  const p = (path: string) => `/v1/programs/${programId}${path}`;

  before(async () => {
    app = await startTestApp();
    api = app.api;
    programId = (await createProgram(api)).id;
  });
  after(async () => {
    await app?.stop();
  });

  /** Appends as a process that died right after would have left it. */
  const appendDirectly = async (stream: string, event: ReservationEvent | MemberEvent) => {
    await app.runtime.store.append(
      stream,
      [
        {
          id: randomUUID(),
          type: event.type,
          data: event.data,
          metadata: {
            programId,
            correlationId: randomUUID(),
            causationId: null,
            actor: 'test',
            recordedAt: app.clock.now().toISOString(),
          },
        },
      ],
      'any',
    );
  };
  const reservedBy = (
    kind: IdentifierKind,
    memberId: string,
    reservationId: string,
  ): ReservationEvent => ({
    type: 'IdentifierReserved',
    data: { kind, memberId, reservationId, replaces: null, at: app.clock.now().toISOString() },
  });
  const eventTypes = async (stream: string) =>
    (await app.runtime.store.readStream(stream)).map((e) => e.type);

  const listed = async (query: string): Promise<string[]> => {
    await settle(app.runtime);
    return expectStatus(await api.get<Page<MemberView>>(p(`/members?${query}`)), 200).body.data.map(
      (m) => m.id,
    );
  };

  describe('a second create', () => {
    it('with the same external_id is a 409 member_exists naming the first member', async () => {
      const externalId = unique('crm');
      const first = await createMember(api, programId, { external_id: externalId });
      const second = await api.post<Conflict>(p('/members'), {
        email: `${unique('other')}@example.com`,
        name: 'Same person, other email',
        external_id: externalId,
      });
      assert.equal(second.status, 409, second.text);
      assert.equal(second.body.error.code, 'member_exists');
      assert.equal(second.body.error.field, 'external_id');
      assert.equal(second.body.error.member_id, first.id);
      assert.deepEqual(await listed(`external_id=${externalId}`), [first.id]);
    });

    it('with the same email in other letter case is a 409 naming the first member', async () => {
      const local = unique('ana');
      const first = await createMember(api, programId, { email: `${local}@example.com` });
      const second = await api.post<Conflict>(p('/members'), {
        email: `${local.toUpperCase()}@Example.COM`,
        name: 'Ana again',
      });
      assert.equal(second.status, 409, second.text);
      assert.equal(second.body.error.code, 'member_exists');
      assert.equal(second.body.error.field, 'email');
      assert.equal(second.body.error.member_id, first.id);
      assert.deepEqual(await listed(`email=${local}@example.com`), [first.id]);
    });

    it('with the same email and external_id in another program is a new member', async () => {
      const body = {
        email: `${unique('both')}@example.com`,
        name: 'Two programs',
        external_id: unique('crm'),
      };
      expectStatus(await api.post(p('/members'), body), 201);
      const other = (await createProgram(api)).id;
      expectStatus(await api.post(`/v1/programs/${other}/members`, body), 201);
    });

    it('with the Idempotency-Key of the first gets the first 201 again', async () => {
      const headers = { 'idempotency-key': unique('create') };
      const body = {
        email: `${unique('retry')}@example.com`,
        name: 'CRM retry',
        external_id: unique('crm'),
      };
      const first = expectStatus(await api.post<MemberView>(p('/members'), body, { headers }), 201);
      const again = expectStatus(await api.post<MemberView>(p('/members'), body, { headers }), 201);
      assert.equal(again.body.id, first.body.id);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      const fresh = await api.post<Conflict>(p('/members'), body, {
        headers: { 'idempotency-key': unique('create') },
      });
      assert.equal(fresh.status, 409, 'another key is another request: the member exists');
      assert.equal(fresh.body.error.member_id, first.body.id);
    });
  });

  describe('20 parallel creates of one external id in one process', () => {
    it('make exactly one member; the 19 others are told its id', async () => {
      const externalId = unique('crm');
      const responses = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          api.post<MemberView & Conflict>(p('/members'), {
            email: `${unique(`parallel${i}`)}@example.com`,
            name: `Parallel ${i}`,
            external_id: externalId,
          }),
        ),
      );
      const created = responses.filter((r) => r.status === 201);
      assert.equal(created.length, 1, responses.map((r) => `${r.status} ${r.text}`).join('\n'));
      const id = created[0]!.body.id;
      for (const r of responses.filter((r) => r.status !== 201)) {
        assert.equal(r.status, 409, r.text);
        assert.equal(r.body.error.code, 'member_exists');
        assert.equal(r.body.error.member_id, id);
      }
      assert.deepEqual(await listed(`external_id=${externalId}`), [id]);
    });
  });

  describe('a PATCH', () => {
    it('to another member’s external id or email is a 409 naming that member', async () => {
      const taken = await createMember(api, programId, { external_id: unique('crm') });
      const mover = await createMember(api, programId, { external_id: unique('crm') });
      const byExternalId = await api.patch<Conflict>(p(`/members/${mover.id}`), {
        external_id: taken.external_id,
      });
      assert.equal(byExternalId.status, 409, byExternalId.text);
      assert.equal(byExternalId.body.error.code, 'member_exists');
      assert.equal(byExternalId.body.error.field, 'external_id');
      assert.equal(byExternalId.body.error.member_id, taken.id);
      const byEmail = await api.patch<Conflict>(p(`/members/${mover.id}`), {
        email: taken.email.toUpperCase(),
      });
      assert.equal(byEmail.status, 409, byEmail.text);
      assert.equal(byEmail.body.error.field, 'email');
      assert.equal(byEmail.body.error.member_id, taken.id);
      await settle(app.runtime);
      const unchanged = expectStatus(await api.get<MemberView>(p(`/members/${mover.id}`)), 200);
      assert.equal(unchanged.body.email, mover.email);
      assert.equal(unchanged.body.external_id, mover.external_id);
    });

    it('to its own values, the email in other letter case, is accepted', async () => {
      const member = await createMember(api, programId, { external_id: unique('crm') });
      expectStatus(
        await api.patch(p(`/members/${member.id}`), {
          email: member.email.toUpperCase(),
          external_id: member.external_id,
          name: 'Renamed',
        }),
        200,
      );
      await settle(app.runtime);
      const read = expectStatus(await api.get<MemberView>(p(`/members/${member.id}`)), 200).body;
      assert.equal(read.email, member.email.toUpperCase());
      assert.equal(read.name, 'Renamed');
    });

    it('to new values frees the old ones for another member', async () => {
      const oldExternalId = unique('crm');
      const member = await createMember(api, programId, { external_id: oldExternalId });
      expectStatus(
        await api.patch(p(`/members/${member.id}`), {
          email: `${unique('moved')}@example.com`,
          external_id: unique('crm'),
        }),
        200,
      );
      const successor = await createMember(api, programId, {
        email: member.email,
        external_id: oldExternalId,
      });
      assert.notEqual(successor.id, member.id);
      const back = await api.patch<Conflict>(p(`/members/${member.id}`), {
        external_id: oldExternalId,
      });
      assert.equal(back.status, 409, 'the old value now belongs to the successor');
      assert.equal(back.body.error.member_id, successor.id);
    });

    it('of external_id to null frees it', async () => {
      const externalId = unique('crm');
      const member = await createMember(api, programId, { external_id: externalId });
      expectStatus(await api.patch(p(`/members/${member.id}`), { external_id: null }), 200);
      const successor = await createMember(api, programId, { external_id: externalId });
      assert.deepEqual(await listed(`external_id=${externalId}`), [successor.id]);
    });
  });
  describe('a value whose request died after reserving it', () => {
    it('is held while the reservation is young, then taken over, and the dead registration cannot land', async () => {
      const externalId = unique('crm');
      const dead = `mem_dead${randomBytes(6).toString('hex')}`;
      const stream = streams.reservation(programId, 'externalId', externalId);
      await appendDirectly(stream, reservedBy('externalId', dead, 'rsv_dead1'));
      const body = {
        email: `${unique('late')}@example.com`,
        name: 'Late',
        external_id: externalId,
      };

      const started = performance.now();
      const young = await api.post<Conflict>(p('/members'), body);
      assert.equal(young.status, 409, young.text);
      assert.equal(young.body.error.code, 'concurrency_conflict', 'another request may still run');
      assert.equal(young.body.error.field, 'external_id');
      assert.ok(performance.now() - started >= 4_000, 'it waited for that request first');

      app.clock.advance(11_000);
      const created = expectStatus(await api.post<MemberView>(p('/members'), body), 201).body;
      assert.deepEqual(await eventTypes(stream), ['IdentifierReserved', 'IdentifierReserved']);
      const [, takeover] = await app.runtime.store.readStream(stream);
      assert.equal((takeover!.data as { memberId: string }).memberId, created.id);
      assert.equal((takeover!.data as { replaces: string }).replaces, 'rsv_dead1');
      assert.deepEqual(await eventTypes(streams.member(programId, dead)), [
        'MemberReservationRevoked',
      ]);
      assert.deepEqual(await listed(`external_id=${externalId}`), [created.id]);
      assert.equal((await api.get(p(`/members/${dead}`))).status, 404);

      // The dead request wakes up: its registration names the reservation it lost.
      const handler = new CommandHandler({ store: app.runtime.store });
      const late = await handler.handle(
        member,
        streams.member(programId, dead),
        {
          type: 'RegisterMember',
          data: {
            memberId: dead,
            programId,
            email: `${unique('dead')}@example.com`,
            name: 'Dead',
            externalId,
            attributes: {},
            initialTier: null,
            reservations: { externalId: 'rsv_dead1', email: 'rsv_dead2' },
            now: app.clock.now(),
          },
        },
        {
          programId,
          actor: 'test',
          correlationId: randomUUID(),
          causationId: null,
          now: app.clock.now(),
        },
      );
      assert.equal(late.ok, false);
      assert.equal(!late.ok && late.rejection, 'identifier_not_reserved');
    });

    it('is taken over from a member that changed away from it and never gave it back', async () => {
      const externalId = unique('crm');
      const mover = await createMember(api, programId, { external_id: externalId });
      // The change was recorded; the release of the old value was not.
      const next = unique('crm');
      await appendDirectly(
        streams.reservation(programId, 'externalId', next),
        reservedBy('externalId', mover.id, 'rsv_next'),
      );
      await appendDirectly(streams.member(programId, mover.id), {
        type: 'MemberUpdated',
        data: {
          memberId: mover.id,
          changes: { externalId: next },
          at: app.clock.now().toISOString(),
        },
      });
      const body = {
        email: `${unique('heir')}@example.com`,
        name: 'Heir',
        external_id: externalId,
      };
      app.clock.advance(11_000);
      const heir = expectStatus(await api.post<MemberView>(p('/members'), body), 201).body;
      assert.deepEqual(await listed(`external_id=${externalId}`), [heir.id]);
      assert.deepEqual((await eventTypes(streams.member(programId, mover.id))).slice(-2), [
        'MemberUpdated',
        'MemberReservationRevoked',
      ]);
      const still = expectStatus(await api.get<MemberView>(p(`/members/${mover.id}`)), 200).body;
      assert.equal(still.external_id, next);
      assert.equal(still.status, 'active');
    });
  });

  describe('a member registered before reservations existed', () => {
    it('keeps its email and external id: a create with either is a 409 naming it', async () => {
      const legacy = `mem_legacy${randomBytes(6).toString('hex')}`;
      const email = `${unique('legacy')}@example.com`;
      const externalId = unique('crm');
      await appendDirectly(streams.member(programId, legacy), {
        type: 'MemberRegistered',
        data: {
          memberId: legacy,
          programId,
          email,
          name: 'From before',
          externalId,
          attributes: {},
          tier: null,
          at: app.clock.now().toISOString(),
        },
      });
      await settle(app.runtime);
      const byEmail = await api.post<Conflict>(p('/members'), {
        email: email.toUpperCase(),
        name: 'Again',
      });
      assert.equal(byEmail.status, 409, byEmail.text);
      assert.equal(byEmail.body.error.member_id, legacy);
      const byExternalId = await api.post<Conflict>(p('/members'), {
        email: `${unique('other')}@example.com`,
        name: 'Again',
        external_id: externalId,
      });
      assert.equal(byExternalId.status, 409, byExternalId.text);
      assert.equal(byExternalId.body.error.member_id, legacy);
      assert.deepEqual(
        await eventTypes(streams.reservation(programId, 'externalId', externalId)),
        ['IdentifierReserved'],
        'reserved for the member that has it',
      );
      const mover = await createMember(api, programId);
      const patched = await api.patch<Conflict>(p(`/members/${mover.id}`), {
        external_id: externalId,
      });
      assert.equal(patched.status, 409);
      assert.equal(patched.body.error.member_id, legacy);
    });
  });

  describe('the audit after all of the above', () => {
    it('finds every hash chain intact and the replay equal to the live read models', async () => {
      await settle(app.runtime);
      const chains = await verifyChains(app.runtime.database.db);
      assert.equal(chains.ok, true);
      const report = await replayReadModels(app.runtime.database.db, { verify: true });
      assert.equal(report.totalDifferences, 0);
    });
  });
});

/** The embedded default: one process, PGlite's single connection, the same SQL append. */
describe('one member per person on the embedded database (PGlite)', () => {
  const rootKey = 'embedded-root-key-0123456789abcdef';
  let dir: string;
  let runtime: Runtime;
  let api: Api;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'incentable-unique-embedded-'));
    runtime = await startRuntime(
      loadConfig({
        DATA_DIR: dir,
        PORT: '0',
        ADMIN_API_KEY: rootKey,
        LOG_LEVEL: 'silent',
        NODE_ENV: 'test',
      }),
      { scheduler: false },
    );
    api = apiClient(runtime.url!, rootKey);
  });
  after(async () => {
    await runtime?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('makes one member of 20 parallel creates of one external id', async () => {
    const programId = (await createProgram(api)).id;
    const externalId = unique('crm');
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        api.post<MemberView & Conflict & { position: string }>(
          `/v1/programs/${programId}/members`,
          {
            email: `${unique(`embedded${i}`)}@example.com`,
            name: `Embedded ${i}`,
            external_id: externalId,
          },
        ),
      ),
    );
    const created = responses.filter((r) => r.status === 201);
    assert.equal(created.length, 1, responses.map((r) => `${r.status} ${r.text}`).join('\n'));
    const winner = created[0]!.body;
    assert.deepEqual(
      responses.filter((r) => r.status !== 201).map((r) => [r.status, r.body.error.member_id]),
      Array.from({ length: 19 }, () => [409, winner.id]),
    );
    const listed = expectStatus(
      await api.get<Page<MemberView>>(
        `/v1/programs/${programId}/members?external_id=${externalId}&after_position=${winner.position}`,
      ),
      200,
    ).body;
    assert.deepEqual(
      listed.data.map((m) => m.id),
      [winner.id],
    );
  });
});
