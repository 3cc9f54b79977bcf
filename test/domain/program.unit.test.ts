import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  program,
  tierFor,
  type ProgramCommand,
  type ProgramEvent,
  type ProgramSettings,
} from '../../domain/program.ts';
import { refusalOf, specOf } from './given.ts';

const { given, stateAfter } = specOf(program);
const now = new Date('2024-06-15T14:30:00.000Z');
const at = '2024-06-15T14:30:00.000Z';

const settings: ProgramSettings = {
  name: 'Partner Rewards',
  tiers: [
    { name: 'Bronze', minPoints: 0 },
    { name: 'Silver', minPoints: 1000 },
    { name: 'Gold', minPoints: 5000 },
  ],
  tierBasis: 'lifetime',
  pointsExpiryDays: 365,
  pointsExpiryMode: 'inactivity',
  timezone: 'Europe/Berlin',
  notificationEmail: 'ops@example.com',
};

const create = (overrides: Partial<ProgramSettings> = {}): ProgramCommand => ({
  type: 'CreateProgram',
  data: { programId: 'prg_1', ...settings, ...overrides, now },
});
const update = (changes: Partial<ProgramSettings>): ProgramCommand => ({
  type: 'UpdateProgram',
  data: { programId: 'prg_1', changes, now },
});
const created: ProgramEvent = {
  type: 'ProgramCreated',
  data: { programId: 'prg_1', ...settings, at },
};

describe('program', () => {
  describe('with no history', () => {
    it('creates the program with its settings', () => {
      assert.deepEqual(given().when(create()), { ok: true, events: [created] });
    });

    it('accepts an empty tier table and no points expiry', () => {
      const decision = given().when(create({ tiers: [], pointsExpiryDays: null }));
      assert.deepEqual(decision, {
        ok: true,
        events: [
          {
            type: 'ProgramCreated',
            data: { programId: 'prg_1', ...settings, tiers: [], pointsExpiryDays: null, at },
          },
        ],
      });
    });

    it('accepts emoji in the name', () => {
      const decision = given().when(create({ name: 'Top Sellers 🏆' }));
      assert.equal(decision.ok, true);
    });

    it('refuses to update a program that does not exist', () => {
      assert.deepEqual(refusalOf(given().when(update({ name: 'X' }))), {
        rejection: 'program_not_found',
        field: 'program_id',
      });
    });

    const invalid: [string, Partial<ProgramSettings>, string, string][] = [
      ['an empty name', { name: '' }, 'invalid_name', 'name'],
      ['a blank name', { name: '   ' }, 'invalid_name', 'name'],
      ['a name of 201 characters', { name: 'a'.repeat(201) }, 'invalid_name', 'name'],
      ['a name with a control character', { name: 'Bad\u0007name' }, 'invalid_name', 'name'],
      [
        'duplicate tier names',
        {
          tiers: [
            { name: 'A', minPoints: 0 },
            { name: 'A', minPoints: 10 },
          ],
        },
        'invalid_tiers',
        'tiers',
      ],
      ['an empty tier name', { tiers: [{ name: '', minPoints: 0 }] }, 'invalid_tiers', 'tiers'],
      ['negative minPoints', { tiers: [{ name: 'A', minPoints: -1 }] }, 'invalid_tiers', 'tiers'],
      [
        'fractional minPoints',
        { tiers: [{ name: 'A', minPoints: 1.5 }] },
        'invalid_tiers',
        'tiers',
      ],
      [
        'equal minPoints',
        {
          tiers: [
            { name: 'A', minPoints: 10 },
            { name: 'B', minPoints: 10 },
          ],
        },
        'invalid_tiers',
        'tiers',
      ],
      [
        'decreasing minPoints',
        {
          tiers: [
            { name: 'A', minPoints: 100 },
            { name: 'B', minPoints: 10 },
          ],
        },
        'invalid_tiers',
        'tiers',
      ],
      [
        'points expiry of 0 days',
        { pointsExpiryDays: 0 },
        'invalid_points_expiry_days',
        'points_expiry_days',
      ],
      [
        'points expiry of 3651 days',
        { pointsExpiryDays: 3651 },
        'invalid_points_expiry_days',
        'points_expiry_days',
      ],
      [
        'fractional points expiry',
        { pointsExpiryDays: 1.5 },
        'invalid_points_expiry_days',
        'points_expiry_days',
      ],
      ['an unknown time zone', { timezone: 'Mars/Olympus_Mons' }, 'invalid_timezone', 'timezone'],
      ['an empty time zone', { timezone: '' }, 'invalid_timezone', 'timezone'],
      [
        'a malformed email',
        { notificationEmail: 'ops.example.com' },
        'invalid_email',
        'notification_email',
      ],
      [
        'an email of 255 characters',
        { notificationEmail: `${'a'.repeat(243)}@example.com` },
        'invalid_email',
        'notification_email',
      ],
      [
        'an unknown points expiry mode',
        { pointsExpiryMode: 'forever' as never },
        'invalid_points_expiry_mode',
        'points_expiry.mode',
      ],
      [
        'an unknown tier basis',
        { tierBasis: 'monthly' as never },
        'invalid_tier_basis',
        'tier_basis',
      ],
    ];
    for (const [what, overrides, rejection, field] of invalid) {
      it(`refuses to create with ${what}`, () => {
        assert.deepEqual(refusalOf(given().when(create(overrides))), { rejection, field });
      });
    }

    it('accepts the longest valid values', () => {
      const decision = given().when(
        create({
          name: 'a'.repeat(200),
          pointsExpiryDays: 3650,
          notificationEmail: `${'a'.repeat(242)}@example.com`,
        }),
      );
      assert.equal(decision.ok, true);
    });
  });

  describe('points expiry mode', () => {
    it('records per-award expiry when asked', () => {
      const decision = given().when(create({ pointsExpiryMode: 'per_award' }));
      assert.deepEqual(decision, {
        ok: true,
        events: [{ ...created, data: { ...created.data, pointsExpiryMode: 'per_award' } }],
      });
    });

    it('counts by inactivity when the command names no mode', () => {
      const { pointsExpiryMode: _mode, ...withoutMode } = settings;
      const decision = given().when({
        type: 'CreateProgram',
        data: { programId: 'prg_1', ...withoutMode, now },
      });
      assert.deepEqual(decision, { ok: true, events: [created] });
    });

    it('folds a program created before the mode existed as inactivity', () => {
      const { pointsExpiryMode: _mode, ...withoutMode } = created.data;
      const state = stateAfter([{ type: 'ProgramCreated', data: withoutMode }]);
      assert.equal(state.exists && state.pointsExpiryMode, 'inactivity');
    });

    it('records a change of mode alone', () => {
      const decision = given([created]).when(update({ pointsExpiryMode: 'per_award' }));
      assert.deepEqual(decision, {
        ok: true,
        events: [
          {
            type: 'ProgramUpdated',
            data: { programId: 'prg_1', changes: { pointsExpiryMode: 'per_award' }, at },
          },
        ],
      });
    });
  });

  describe('once created', () => {
    it('refuses to create it again', () => {
      assert.deepEqual(refusalOf(given([created]).when(create())), {
        rejection: 'program_exists',
        field: 'program_id',
      });
    });

    it('records only the settings that differ', () => {
      const decision = given([created]).when(
        update({ name: 'Partner Rewards', tierBasis: 'balance', pointsExpiryDays: null }),
      );
      assert.deepEqual(decision, {
        ok: true,
        events: [
          {
            type: 'ProgramUpdated',
            data: {
              programId: 'prg_1',
              changes: { tierBasis: 'balance', pointsExpiryDays: null },
              at,
            },
          },
        ],
      });
    });

    it('records a new tier table', () => {
      const tiers = [{ name: 'Member', minPoints: 0 }];
      assert.deepEqual(given([created]).when(update({ tiers })), {
        ok: true,
        events: [{ type: 'ProgramUpdated', data: { programId: 'prg_1', changes: { tiers }, at } }],
      });
    });

    it('records nothing when no setting changes', () => {
      const decision = given([created]).when(
        update({ tiers: settings.tiers.map((t) => ({ ...t })), timezone: 'Europe/Berlin' }),
      );
      assert.deepEqual(decision, { ok: true, events: [] });
    });

    it('validates the changes', () => {
      assert.deepEqual(refusalOf(given([created]).when(update({ timezone: 'Nowhere/Land' }))), {
        rejection: 'invalid_timezone',
        field: 'timezone',
      });
      assert.deepEqual(
        refusalOf(
          given([created]).when(
            update({
              tiers: [
                { name: 'A', minPoints: 5 },
                { name: 'B', minPoints: 1 },
              ],
            }),
          ),
        ),
        {
          rejection: 'invalid_tiers',
          field: 'tiers',
        },
      );
    });

    it('applies the update to its state', () => {
      const updated: ProgramEvent = {
        type: 'ProgramUpdated',
        data: { programId: 'prg_1', changes: { name: 'Renamed' }, at },
      };
      assert.deepEqual(given([created, updated]).when(update({ name: 'Renamed' })), {
        ok: true,
        events: [],
      });
    });
  });

  describe('tierFor', () => {
    const tiers = settings.tiers;
    it('is null below the first tier', () => {
      assert.equal(tierFor([{ name: 'Silver', minPoints: 100 }], 99), null);
      assert.equal(tierFor([], 1_000_000), null);
    });
    it('reaches a tier at exactly its minimum', () => {
      assert.equal(tierFor(tiers, 0), 'Bronze');
      assert.equal(tierFor(tiers, 999), 'Bronze');
      assert.equal(tierFor(tiers, 1000), 'Silver');
      assert.equal(tierFor(tiers, 4999), 'Silver');
      assert.equal(tierFor(tiers, 5000), 'Gold');
      assert.equal(tierFor(tiers, Number.MAX_SAFE_INTEGER), 'Gold');
    });
  });
});
