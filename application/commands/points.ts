import { pointsAccount, type PointsExpiryMode } from '../../domain/pointsAccount.ts';
import type { CommandContext } from '../commandHandler.ts';
import { refused, run, streams, type CommandKit } from './kit.ts';

export type PointsDeps = {
  /** The member a transaction belongs to (the ledger), or null when there is none. */
  transactionOwner: (programId: string, transactionId: string) => Promise<string | null>;
};

/** Points: awards, deductions, reversals and expiry, each on the member's points stream. */
export const pointsCommands = (kit: CommandKit, deps: PointsDeps) => ({
  async movePoints(
    programId: string,
    memberId: string,
    input: {
      direction: 'award' | 'deduct';
      points: number;
      reason: string;
      reference: string | null;
    },
    context: CommandContext,
  ) {
    const guard = await kit.activeMember(programId, memberId);
    if (!guard.ok) return guard;
    const c = kit.ctx(context);
    const data = {
      transactionId: kit.idFor('transaction', context, 'points'),
      memberId,
      points: input.points,
      reason: input.reason,
      reference: input.reference,
      now: c.now,
    };
    const command =
      input.direction === 'award'
        ? ({ type: 'AwardPoints', data } as const)
        : ({ type: 'DeductPoints', data } as const);
    return run(
      await kit.handler.handle(pointsAccount, streams.points(programId, memberId), command, c),
    );
  },

  /**
   * Undoes one award or manual deduction: the points account decides (at most once, not below
   * zero unless allowed); tiers and leaderboard scores follow in the policy reactor. The
   * transaction's member is found through the ledger, waiting for it to show a transaction
   * just made.
   */
  async reverseTransaction(
    programId: string,
    transactionId: string,
    input: { reason: string; allowNegative: boolean },
    context: CommandContext,
  ) {
    const memberId = await deps.transactionOwner(programId, transactionId);
    if (memberId === null)
      return refused<never>({
        ok: false,
        rejection: 'transaction_not_found',
        message: `no transaction ${transactionId} in this program`,
        field: 'transaction_id',
      });
    const guard = await kit.activeMember(programId, memberId);
    if (!guard.ok) return guard;
    const c = kit.ctx(context);
    return run(
      await kit.handler.handle(
        pointsAccount,
        streams.points(programId, memberId),
        {
          type: 'ReverseTransaction',
          data: {
            transactionId: kit.idFor('transaction', context, 'reversal'),
            reversalOf: transactionId,
            memberId,
            reason: input.reason,
            allowNegative: input.allowNegative,
            now: c.now,
          },
        },
        c,
      ),
    );
  },

  async expirePoints(
    programId: string,
    memberId: string,
    expiry: { mode: PointsExpiryMode; days: number },
    context: CommandContext,
  ) {
    const c = kit.ctx(context);
    return run(
      await kit.handler.handle(
        pointsAccount,
        streams.points(programId, memberId),
        {
          type: 'ExpirePoints',
          data: {
            transactionId: kit.idFor('transaction', context, `expiry ${memberId}`),
            memberId,
            mode: expiry.mode,
            expiryDays: expiry.days,
            now: c.now,
          },
        },
        c,
      ),
    );
  },
});
