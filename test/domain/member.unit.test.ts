import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  member,
  type MemberChanges,
  type MemberCommand,
  type MemberEvent,
  type MemberProfile,
  type MemberReservations,
} from '../../domain/member.ts';
import { refusalOf, specOf } from './given.ts';

const { given, stateAfter } = specOf(member);
const now = new Date('2024-06-15T14:30:00.000Z');
const at = '2024-06-15T14:30:00.000Z';

const profile: MemberProfile = {
  email: 'ana@example.com',
  name: 'Ana Souza',
  externalId: 'crm-42',
  attributes: { region: 'EMEA', seats: 12, partner: true, note: null },
};

/** The reservations registration makes first (memberReservation.ts). */
const reserved: MemberReservations = { email: 'rsv_email1', externalId: 'rsv_crm1' };

const register = (
  overrides: Partial<MemberProfile & { initialTier: string | null }> = {},
  reservations: MemberReservations = reserved,
): MemberCommand => ({
  type: 'RegisterMember',
  data: {
    memberId: 'mem_1',
    programId: 'prg_1',
    initialTier: 'Bronze',
    ...profile,
    ...overrides,
    reservations,
    now,
  },
});
const update = (changes: MemberChanges, reservations: MemberReservations = {}): MemberCommand => ({
  type: 'UpdateMember',
  data: { memberId: 'mem_1', changes, reservations, now },
});
const revoke = (
  reservationId: string,
  kind: 'email' | 'externalId' = 'email',
  value = 'ana@example.com',
): MemberCommand => ({
  type: 'RevokeReservation',
  data: { memberId: 'mem_1', kind, value, reservationId, now },
});
const revoked = (reservationId: string, kind: 'email' | 'externalId' = 'email'): MemberEvent => ({
  type: 'MemberReservationRevoked',
  data: { memberId: 'mem_1', kind, reservationId, at },
});
const changeTier = (newTier: string | null, reason = 'Manual upgrade'): MemberCommand => ({
  type: 'ChangeTier',
  data: { memberId: 'mem_1', newTier, reason, now },
});
const deactivate: MemberCommand = { type: 'DeactivateMember', data: { memberId: 'mem_1', now } };

const registered: MemberEvent = {
  type: 'MemberRegistered',
  data: { memberId: 'mem_1', programId: 'prg_1', ...profile, tier: 'Bronze', at },
};
const deactivated: MemberEvent = { type: 'MemberDeactivated', data: { memberId: 'mem_1', at } };

const manyAttributes = (count: number) =>
  Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, i]));

describe('member', () => {
  describe('with no history', () => {
    it('registers the member with its initial tier', () => {
      assert.deepEqual(given().when(register()), { ok: true, events: [registered] });
    });

    it('registers without an external id or tier', () => {
      assert.deepEqual(
        given().when(register({ externalId: null, initialTier: null, attributes: {} })),
        {
          ok: true,
          events: [
            {
              type: 'MemberRegistered',
              data: {
                memberId: 'mem_1',
                programId: 'prg_1',
                ...profile,
                externalId: null,
                attributes: {},
                tier: null,
                at,
              },
            },
          ],
        },
      );
    });

    it('accepts emoji in the name and 50 attributes', () => {
      assert.equal(
        given().when(register({ name: 'Zoë 🚀', attributes: manyAttributes(50) })).ok,
        true,
      );
    });

    const invalid: [
      string,
      Partial<MemberProfile & { initialTier: string | null }>,
      string,
      string,
    ][] = [
      ['an email without @', { email: 'ana.example.com' }, 'invalid_email', 'email'],
      ['an email without a domain dot', { email: 'ana@example' }, 'invalid_email', 'email'],
      ['an email with spaces', { email: 'ana souza@example.com' }, 'invalid_email', 'email'],
      [
        'an email of 255 characters',
        { email: `${'a'.repeat(243)}@example.com` },
        'invalid_email',
        'email',
      ],
      ['an empty name', { name: '' }, 'invalid_name', 'name'],
      ['a name of 201 characters', { name: 'n'.repeat(201) }, 'invalid_name', 'name'],
      ['a name with a newline', { name: 'Ana\nSouza' }, 'invalid_name', 'name'],
      ['a name with DEL', { name: 'Ana\u007f' }, 'invalid_name', 'name'],
      ['an empty external id', { externalId: '' }, 'invalid_external_id', 'external_id'],
      [
        'an external id of 201 characters',
        { externalId: 'x'.repeat(201) },
        'invalid_external_id',
        'external_id',
      ],
      ['51 attributes', { attributes: manyAttributes(51) }, 'invalid_attributes', 'attributes'],
      ['an empty attribute key', { attributes: { '': 1 } }, 'invalid_attributes', 'attributes'],
      [
        'an attribute key of 101 characters',
        { attributes: { ['k'.repeat(101)]: 1 } },
        'invalid_attributes',
        'attributes',
      ],
      [
        'an attribute string of 1001 characters',
        { attributes: { note: 'v'.repeat(1001) } },
        'invalid_attributes',
        'attributes',
      ],
      [
        'a nested attribute',
        { attributes: { nested: { a: 1 } as never } },
        'invalid_attributes',
        'attributes',
      ],
      [
        'an infinite attribute',
        { attributes: { n: Number.POSITIVE_INFINITY } },
        'invalid_attributes',
        'attributes',
      ],
      ['a name with a lone surrogate', { name: 'Ana\ud800' }, 'invalid_name', 'name'],
      [
        'an attribute string with a lone surrogate',
        { attributes: { note: 'a\udc00' } },
        'invalid_attributes',
        'attributes',
      ],
      [
        'an attribute string with NUL',
        { attributes: { note: 'a\u0000' } },
        'invalid_attributes',
        'attributes',
      ],
      [
        'an attribute key with a lone surrogate',
        { attributes: { 'k\ud800': 1 } },
        'invalid_attributes',
        'attributes',
      ],
      ...(['__proto__', 'constructor', 'prototype'] as const).map(
        (key): [string, Partial<MemberProfile>, string, string] => [
          `an attribute named ${key}`,
          // A computed key makes an own property, as JSON.parse does.
          { attributes: { [key]: 'x' } },
          'invalid_attributes',
          'attributes',
        ],
      ),
      ['an empty initial tier', { initialTier: '' }, 'invalid_tier', 'initial_tier'],
    ];
    for (const [what, overrides, rejection, field] of invalid) {
      it(`refuses to register with ${what}`, () => {
        assert.deepEqual(refusalOf(given().when(register(overrides))), { rejection, field });
      });
    }

    for (const [name, command] of [
      ['update', update({ name: 'X' })],
      ['change the tier of', changeTier('Gold')],
      ['deactivate', deactivate],
    ] as const) {
      it(`refuses to ${name} a member that does not exist`, () => {
        assert.deepEqual(refusalOf(given().when(command)), {
          rejection: 'member_not_found',
          field: 'member_id',
        });
      });
    }
  });

  describe('once registered', () => {
    it('exposes exists, active and tier', () => {
      const state = stateAfter([registered]);
      assert.equal(state.exists, true);
      assert.equal(state.active, true);
      assert.equal(state.tier, 'Bronze');
    });

    it('refuses to register it again', () => {
      assert.deepEqual(refusalOf(given([registered]).when(register())), {
        rejection: 'member_exists',
        field: 'member_id',
      });
    });

    it('records only the fields that change', () => {
      const decision = given([registered]).when(
        update({
          email: 'ana@example.com',
          name: 'Ana S.',
          attributes: { seats: 12, partner: true, region: 'EMEA' },
        }),
      );
      assert.deepEqual(decision, {
        ok: true,
        events: [
          { type: 'MemberUpdated', data: { memberId: 'mem_1', changes: { name: 'Ana S.' }, at } },
        ],
      });
    });

    it('merges an attribute patch into the map, null deleting a key, and records the whole map', () => {
      const decision = given([registered]).when(
        update({ attributes: { region: 'APAC', note: null }, externalId: null }),
      );
      assert.deepEqual(decision, {
        ok: true,
        events: [
          {
            type: 'MemberUpdated',
            data: {
              memberId: 'mem_1',
              changes: {
                externalId: null,
                attributes: { seats: 12, partner: true, region: 'APAC' },
              },
              at,
            },
          },
        ],
      });
    });

    it('records nothing for an update that changes nothing', () => {
      assert.deepEqual(given([registered]).when(update({ name: 'Ana Souza' })), {
        ok: true,
        events: [],
      });
      assert.deepEqual(given([registered]).when(update({})), { ok: true, events: [] });
    });

    it('validates the changes', () => {
      assert.deepEqual(refusalOf(given([registered]).when(update({ email: 'nope' }))), {
        rejection: 'invalid_email',
        field: 'email',
      });
      assert.deepEqual(
        refusalOf(given([registered]).when(update({ attributes: manyAttributes(51) }))),
        {
          rejection: 'invalid_attributes',
          field: 'attributes',
        },
      );
    });

    it('changes the tier with its reason', () => {
      assert.deepEqual(given([registered]).when(changeTier('Gold', 'Points threshold reached')), {
        ok: true,
        events: [
          {
            type: 'MemberTierChanged',
            data: {
              memberId: 'mem_1',
              previousTier: 'Bronze',
              newTier: 'Gold',
              reason: 'Points threshold reached',
              at,
            },
          },
        ],
      });
    });

    it('removes the tier', () => {
      assert.deepEqual(given([registered]).when(changeTier(null)), {
        ok: true,
        events: [
          {
            type: 'MemberTierChanged',
            data: {
              memberId: 'mem_1',
              previousTier: 'Bronze',
              newTier: null,
              reason: 'Manual upgrade',
              at,
            },
          },
        ],
      });
    });

    it('records nothing when the tier is the same', () => {
      assert.deepEqual(given([registered]).when(changeTier('Bronze')), { ok: true, events: [] });
    });

    it('refuses a tier change with an invalid reason', () => {
      for (const reason of ['', '   ', 'r'.repeat(501), 'line\nbreak']) {
        assert.deepEqual(refusalOf(given([registered]).when(changeTier('Gold', reason))), {
          rejection: 'invalid_reason',
          field: 'reason',
        });
      }
    });

    it('refuses a tier change to an empty tier name', () => {
      assert.deepEqual(refusalOf(given([registered]).when(changeTier(''))), {
        rejection: 'invalid_tier',
        field: 'new_tier',
      });
    });

    it('deactivates the member', () => {
      assert.deepEqual(given([registered]).when(deactivate), { ok: true, events: [deactivated] });
    });
  });

  describe('once deactivated', () => {
    const history = [registered, deactivated];

    it('is no longer active', () => {
      assert.equal(stateAfter(history).active, false);
    });

    it('refuses updates', () => {
      assert.deepEqual(refusalOf(given(history).when(update({ name: 'Other' }))), {
        rejection: 'member_inactive',
        field: 'member_id',
      });
    });

    it('still changes the tier', () => {
      assert.deepEqual(given(history).when(changeTier('Silver')), {
        ok: true,
        events: [
          {
            type: 'MemberTierChanged',
            data: {
              memberId: 'mem_1',
              previousTier: 'Bronze',
              newTier: 'Silver',
              reason: 'Manual upgrade',
              at,
            },
          },
        ],
      });
    });

    it('records nothing when deactivated again', () => {
      assert.deepEqual(given(history).when(deactivate), { ok: true, events: [] });
    });
  });

  describe('emails and external ids', () => {
    it('registers only with a reservation of each', () => {
      assert.deepEqual(refusalOf(given().when(register({}, { email: 'rsv_email1' }))), {
        rejection: 'identifier_not_reserved',
        field: 'external_id',
      });
      assert.deepEqual(refusalOf(given().when(register({}, { externalId: 'rsv_crm1' }))), {
        rejection: 'identifier_not_reserved',
        field: 'email',
      });
      assert.equal(
        given().when(register({ externalId: null }, { email: 'rsv_email1' })).ok,
        true,
        'no external id, no reservation for one',
      );
    });

    it('refuses to register with a reservation that was revoked, and accepts a new one', () => {
      const history = [revoked('rsv_email1')];
      assert.deepEqual(refusalOf(given(history).when(register())), {
        rejection: 'identifier_not_reserved',
        field: 'email',
      });
      assert.equal(
        given(history).when(register({}, { ...reserved, email: 'rsv_email2' })).ok,
        true,
      );
    });

    it('changes an email or external id only with a reservation of the new value', () => {
      assert.deepEqual(refusalOf(given([registered]).when(update({ email: 'new@example.com' }))), {
        rejection: 'identifier_not_reserved',
        field: 'email',
      });
      assert.deepEqual(refusalOf(given([registered]).when(update({ externalId: 'crm-43' }))), {
        rejection: 'identifier_not_reserved',
        field: 'external_id',
      });
      assert.equal(
        given([registered]).when(update({ email: 'new@example.com' }, { email: 'rsv_email2' })).ok,
        true,
      );
    });

    it('needs no reservation to drop the external id or to change the email’s letter case', () => {
      assert.deepEqual(
        given([registered]).when(update({ email: 'ANA@example.com', externalId: null })),
        {
          ok: true,
          events: [
            {
              type: 'MemberUpdated',
              data: {
                memberId: 'mem_1',
                changes: { email: 'ANA@example.com', externalId: null },
                at,
              },
            },
          ],
        },
      );
    });

    it('revokes a reservation of a member that was never registered', () => {
      assert.deepEqual(given().when(revoke('rsv_email1')), {
        ok: true,
        events: [revoked('rsv_email1')],
      });
      assert.deepEqual(given([revoked('rsv_email1')]).when(revoke('rsv_email1')), {
        ok: true,
        events: [],
      });
    });

    it('refuses to revoke the reservation of a value the member has', () => {
      assert.deepEqual(refusalOf(given([registered]).when(revoke('rsv_email1'))), {
        rejection: 'member_exists',
        field: 'email',
      });
      assert.deepEqual(
        refusalOf(given([registered]).when(revoke('rsv_email1', 'email', 'ana@example.com'))),
        { rejection: 'member_exists', field: 'email' },
      );
      assert.deepEqual(
        refusalOf(given([registered]).when(revoke('rsv_crm1', 'externalId', 'crm-42'))),
        { rejection: 'member_exists', field: 'external_id' },
      );
    });

    it('revokes the reservation of a value the member no longer has', () => {
      const moved: MemberEvent = {
        type: 'MemberUpdated',
        data: { memberId: 'mem_1', changes: { externalId: 'crm-43' }, at },
      };
      assert.deepEqual(
        given([registered, moved]).when(revoke('rsv_crm1', 'externalId', 'crm-42')),
        { ok: true, events: [revoked('rsv_crm1', 'externalId')] },
      );
      assert.deepEqual(
        refusalOf(
          given([registered, moved, revoked('rsv_crm1', 'externalId')]).when(
            update({ externalId: 'crm-42' }, { externalId: 'rsv_crm1' }),
          ),
        ),
        { rejection: 'identifier_not_reserved', field: 'external_id' },
        'the change that had reserved crm-42 with it cannot land any more',
      );
    });

    it('keeps the profile through a revocation', () => {
      const state = stateAfter([registered, revoked('rsv_old')]);
      assert.equal(state.exists, true);
      assert.equal(state.exists && state.email, 'ana@example.com');
      assert.deepEqual(state.revokedReservations, ['rsv_old']);
    });
  });

  describe('after updates and tier changes', () => {
    it('decides against the folded profile and tier', () => {
      const history: MemberEvent[] = [
        registered,
        { type: 'MemberUpdated', data: { memberId: 'mem_1', changes: { name: 'Ana S.' }, at } },
        {
          type: 'MemberTierChanged',
          data: { memberId: 'mem_1', previousTier: 'Bronze', newTier: 'Gold', reason: 'x', at },
        },
      ];
      assert.deepEqual(given(history).when(update({ name: 'Ana S.' })), { ok: true, events: [] });
      assert.deepEqual(given(history).when(changeTier('Gold')), { ok: true, events: [] });
      assert.equal(stateAfter(history).tier, 'Gold');
    });
  });
});

describe('a tier override hold', () => {
  const hold = (lockedUntil: string): MemberEvent => ({
    type: 'MemberTierLocked',
    data: { memberId: 'mem_1', lockedUntil, at },
  });

  it('keeps a policy from moving the tier it holds, decided on the state it is appended to', () => {
    const held = [registered, hold('2024-07-01T00:00:00.000Z')];
    assert.deepEqual(given(held).when(changeTier('Gold')), { ok: true, events: [] });
  });

  it('lets the rules move the tier once the hold has lapsed', () => {
    const lapsed = [registered, hold('2024-06-01T00:00:00.000Z')];
    const decision = given(lapsed).when(changeTier('Gold'));
    assert.equal(decision.ok && decision.events[0]?.type, 'MemberTierChanged');
  });
});
