import type { CommandHandler } from './commandHandler.ts';
import { commandKit } from './commands/kit.ts';
import { leaderboardCommands, type LeaderboardDeps } from './commands/leaderboards.ts';
import { memberCommands } from './commands/members.ts';
import { orderCommands } from './commands/orders.ts';
import { pointsCommands, type PointsDeps } from './commands/points.ts';
import { programCommands } from './commands/programs.ts';
import { redemptionCommands } from './commands/redemption.ts';
import { memberIdentifiers, type MemberIdentifiersOptions } from './memberIdentifiers.ts';
import type { Clock, Ids } from './ports.ts';

export { streams, type Outcome, type Rejection } from './commands/kit.ts';
export type { MemberUpdate, TierOverride } from './commands/members.ts';

/**
 * The application services: each API command as the sequence of stream commands it takes
 * (commands/, one file per aggregate's use cases). Single-stream commands go straight through
 * the command handler; redemption and cancellation span streams and say there how they stay
 * consistent.
 */
export const incentives = (
  deps: {
    handler: CommandHandler;
    clock: Clock;
    ids: Ids;
  } & LeaderboardDeps &
    PointsDeps &
    Pick<MemberIdentifiersOptions, 'knownHolders' | 'graceMs' | 'waitMs'>,
) => {
  const kit = commandKit(deps);
  return {
    ...programCommands(kit),
    ...memberCommands(kit, memberIdentifiers(deps)),
    ...pointsCommands(kit, deps),
    ...redemptionCommands(kit),
    ...orderCommands(kit),
    ...leaderboardCommands(kit, deps),
  };
};

export type Incentives = ReturnType<typeof incentives>;
