import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  identifierValue,
  memberReservation,
  type ReservationCommand,
  type ReservationEvent,
} from '../../domain/memberReservation.ts';
import { refusalOf, specOf } from './given.ts';

const { given, stateAfter } = specOf(memberReservation);
const now = new Date('2024-06-15T14:30:00.000Z');
const at = '2024-06-15T14:30:00.000Z';

const reserve = (
  memberId: string,
  reservationId: string,
  replacing: string | null = null,
): ReservationCommand => ({
  type: 'ReserveIdentifier',
  data: { kind: 'externalId', memberId, reservationId, replacing, now },
});
const release = (memberId: string, reservationId: string): ReservationCommand => ({
  type: 'ReleaseIdentifier',
  data: { kind: 'externalId', memberId, reservationId, now },
});
const reserved = (
  memberId: string,
  reservationId: string,
  replaces: string | null = null,
): ReservationEvent => ({
  type: 'IdentifierReserved',
  data: { kind: 'externalId', memberId, reservationId, replaces, at },
});
const released = (memberId: string, reservationId: string): ReservationEvent => ({
  type: 'IdentifierReleased',
  data: { kind: 'externalId', memberId, reservationId, at },
});

describe('member reservation', () => {
  describe('of a value nobody has reserved', () => {
    it('reserves it for the member', () => {
      assert.deepEqual(given().when(reserve('mem_a', 'rsv_1')), {
        ok: true,
        events: [reserved('mem_a', 'rsv_1')],
      });
    });

    it('releases nothing', () => {
      assert.deepEqual(given().when(release('mem_a', 'rsv_1')), { ok: true, events: [] });
    });
  });

  describe('held by a member', () => {
    const history = [reserved('mem_a', 'rsv_1')];

    it('refuses another member', () => {
      assert.deepEqual(refusalOf(given(history).when(reserve('mem_b', 'rsv_2'))), {
        rejection: 'member_exists',
        field: 'external_id',
      });
    });

    it('renews it for the same member, and records nothing for the same reservation', () => {
      assert.deepEqual(given(history).when(reserve('mem_a', 'rsv_2')), {
        ok: true,
        events: [reserved('mem_a', 'rsv_2', 'rsv_1')],
      });
      assert.deepEqual(given(history).when(reserve('mem_a', 'rsv_1')), { ok: true, events: [] });
    });

    it('is taken over only by a command that names the reservation it replaces', () => {
      assert.deepEqual(given(history).when(reserve('mem_b', 'rsv_2', 'rsv_1')), {
        ok: true,
        events: [reserved('mem_b', 'rsv_2', 'rsv_1')],
      });
      const renewed = [...history, reserved('mem_a', 'rsv_3', 'rsv_1')];
      assert.deepEqual(refusalOf(given(renewed).when(reserve('mem_b', 'rsv_2', 'rsv_1'))), {
        rejection: 'member_exists',
        field: 'external_id',
      });
    });

    it('is released by its member with its reservation id, and then free', () => {
      assert.deepEqual(given(history).when(release('mem_a', 'rsv_1')), {
        ok: true,
        events: [released('mem_a', 'rsv_1')],
      });
      const free = [...history, released('mem_a', 'rsv_1')];
      assert.deepEqual(stateAfter(free), { held: false });
      assert.deepEqual(given(free).when(reserve('mem_b', 'rsv_2')), {
        ok: true,
        events: [reserved('mem_b', 'rsv_2')],
      });
    });

    it('stays held when the release names an older reservation or another member', () => {
      const renewed = [...history, reserved('mem_a', 'rsv_3', 'rsv_1')];
      assert.deepEqual(given(renewed).when(release('mem_a', 'rsv_1')), { ok: true, events: [] });
      assert.deepEqual(given(history).when(release('mem_b', 'rsv_1')), { ok: true, events: [] });
    });
  });

  describe('values', () => {
    it('compares emails without letter case and external ids exactly', () => {
      assert.equal(identifierValue('email', 'Ana.Souza@Example.COM'), 'ana.souza@example.com');
      assert.equal(identifierValue('externalId', 'CRM-42'), 'CRM-42');
    });
  });
});
