import { accept, reject, type Decider, type Decision, type Refusal } from './decider.ts';
import type { PointsExpiryMode } from './pointsAccount.ts';
import { isEmail, isIntegerBetween, isName, isTimezone, isoOf, jsonEqual } from './validation.ts';

/** A tier is reached when the basis value is at least `minPoints`. */
export type Tier = { name: string; minPoints: number };
export type TierBasis = 'lifetime' | 'balance';

export type ProgramSettings = {
  name: string;
  /** Ordered by strictly increasing `minPoints`; may be empty (no tiers). */
  tiers: Tier[];
  tierBasis: TierBasis;
  /**
   * Days after which points expire, counted as `pointsExpiryMode` says; null = points never
   * expire.
   */
  pointsExpiryDays: number | null;
  /**
   * How `pointsExpiryDays` counts: from the last activity (the whole balance) or from each
   * award (its lot). Absent from the events of programs created before the mode existed, which
   * count by inactivity; the fold always sets it.
   */
  pointsExpiryMode?: PointsExpiryMode;
  /** IANA zone in which leaderboard periods and reports are cut. */
  timezone: string;
  notificationEmail: string;
};

export type ProgramChanges = Partial<ProgramSettings>;

export type ProgramCommand =
  | { type: 'CreateProgram'; data: ProgramSettings & { programId: string; now: Date } }
  | { type: 'UpdateProgram'; data: { programId: string; changes: ProgramChanges; now: Date } };

export type ProgramEvent =
  | { type: 'ProgramCreated'; data: ProgramSettings & { programId: string; at: string } }
  | { type: 'ProgramUpdated'; data: { programId: string; changes: ProgramChanges; at: string } };

export type ProgramRejection =
  | 'program_exists'
  | 'program_not_found'
  | 'invalid_name'
  | 'invalid_tiers'
  | 'invalid_tier_basis'
  | 'invalid_points_expiry_days'
  | 'invalid_points_expiry_mode'
  | 'invalid_timezone'
  | 'invalid_email';

export type Program = { exists: false } | ({ exists: true; programId: string } & ProgramSettings);

export const maxPointsExpiryDays = 3650;

export const initialState = (): Program => ({ exists: false });

/** The highest tier whose `minPoints` the value reaches, or null below the first tier. */
export const tierFor = (tiers: readonly Tier[], basisValue: number): string | null => {
  let reached: string | null = null;
  for (const tier of tiers) if (tier.minPoints <= basisValue) reached = tier.name;
  return reached;
};

const tiersProblem = (tiers: unknown): string | null => {
  if (!Array.isArray(tiers)) return 'tiers must be a list';
  const seen = new Set<string>();
  let previous = -1;
  for (const tier of tiers as unknown[]) {
    if (typeof tier !== 'object' || tier === null) return 'each tier needs a name and minPoints';
    const { name, minPoints } = tier as Record<string, unknown>;
    if (!isName(name)) return 'tier names are 1-200 characters without control characters';
    if (seen.has(name)) return `tier name "${name}" appears twice`;
    seen.add(name);
    if (!isIntegerBetween(minPoints, 0, Number.MAX_SAFE_INTEGER)) {
      return 'tier minPoints must be non-negative integers';
    }
    if (minPoints <= previous) return 'tier minPoints must strictly increase';
    previous = minPoints;
  }
  return null;
};

/** Checks the given settings; absent keys (an update's untouched fields) are not checked. */
const validate = (settings: ProgramChanges): Refusal<ProgramRejection> | null => {
  if (settings.name !== undefined && !isName(settings.name)) {
    return reject(
      'invalid_name',
      'name must be 1-200 characters without control characters',
      'name',
    );
  }
  if (settings.tiers !== undefined) {
    const problem = tiersProblem(settings.tiers);
    if (problem !== null) return reject('invalid_tiers', problem, 'tiers');
  }
  if (
    settings.tierBasis !== undefined &&
    settings.tierBasis !== 'lifetime' &&
    settings.tierBasis !== 'balance'
  ) {
    return reject('invalid_tier_basis', 'tierBasis is lifetime or balance', 'tier_basis');
  }
  if (
    settings.pointsExpiryDays !== undefined &&
    settings.pointsExpiryDays !== null &&
    !isIntegerBetween(settings.pointsExpiryDays, 1, maxPointsExpiryDays)
  ) {
    return reject(
      'invalid_points_expiry_days',
      `pointsExpiryDays is null or an integer from 1 to ${maxPointsExpiryDays}`,
      'points_expiry_days',
    );
  }
  if (
    settings.pointsExpiryMode !== undefined &&
    settings.pointsExpiryMode !== 'inactivity' &&
    settings.pointsExpiryMode !== 'per_award'
  ) {
    return reject(
      'invalid_points_expiry_mode',
      'pointsExpiryMode is inactivity or per_award',
      'points_expiry.mode',
    );
  }
  if (settings.timezone !== undefined && !isTimezone(settings.timezone)) {
    return reject('invalid_timezone', 'timezone must be an IANA time zone', 'timezone');
  }
  if (settings.notificationEmail !== undefined && !isEmail(settings.notificationEmail)) {
    return reject(
      'invalid_email',
      'notificationEmail is not an email address',
      'notification_email',
    );
  }
  return null;
};

const settingKeys = [
  'name',
  'tiers',
  'tierBasis',
  'pointsExpiryDays',
  'pointsExpiryMode',
  'timezone',
  'notificationEmail',
] as const satisfies readonly (keyof ProgramSettings)[];

/** Only the keys whose value differs from the current settings. */
const changedSettings = (current: ProgramSettings, requested: ProgramChanges): ProgramChanges => {
  const changes: Record<string, unknown> = {};
  for (const key of settingKeys) {
    const value = requested[key];
    if (value !== undefined && !jsonEqual(value, current[key])) changes[key] = value;
  }
  return changes;
};

export const decide = (
  command: ProgramCommand,
  state: Program,
): Decision<ProgramEvent, ProgramRejection> => {
  switch (command.type) {
    case 'CreateProgram': {
      if (state.exists) return reject('program_exists', 'the program already exists', 'program_id');
      const { now, programId, name, tiers, tierBasis, pointsExpiryDays, timezone } = command.data;
      const { notificationEmail } = command.data;
      const pointsExpiryMode = command.data.pointsExpiryMode ?? 'inactivity';
      const refusal = validate({
        name,
        tiers,
        tierBasis,
        pointsExpiryDays,
        pointsExpiryMode,
        timezone,
        notificationEmail,
      });
      if (refusal) return refusal;
      const settings: ProgramSettings = {
        name,
        tiers: tiers.map((tier) => ({ name: tier.name, minPoints: tier.minPoints })),
        tierBasis,
        pointsExpiryDays,
        pointsExpiryMode,
        timezone,
        notificationEmail,
      };
      return accept([{ type: 'ProgramCreated', data: { programId, ...settings, at: isoOf(now) } }]);
    }
    case 'UpdateProgram': {
      if (!state.exists) return reject('program_not_found', 'no such program', 'program_id');
      const refusal = validate(command.data.changes);
      if (refusal) return refusal;
      const changes = changedSettings(state, command.data.changes);
      if (Object.keys(changes).length === 0) return accept([]);
      return accept([
        {
          type: 'ProgramUpdated',
          data: { programId: state.programId, changes, at: isoOf(command.data.now) },
        },
      ]);
    }
  }
};

export const evolve = (state: Program, event: ProgramEvent): Program => {
  switch (event.type) {
    case 'ProgramCreated': {
      const { at: _at, ...created } = event.data;
      return {
        exists: true,
        ...created,
        pointsExpiryMode: created.pointsExpiryMode ?? 'inactivity',
      };
    }
    case 'ProgramUpdated':
      if (!state.exists) return state;
      return { ...state, ...event.data.changes };
  }
};

export const program: Decider<ProgramCommand, ProgramEvent, Program, ProgramRejection> = {
  initialState,
  decide,
  evolve,
};
