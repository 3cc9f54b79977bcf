import type { Period } from './periods.ts';

/** A leaderboard's commands, events and refusals (the decider is leaderboard.ts). */

export type Standing = { position: number; memberId: string; points: number };

export type LeaderboardCommand =
  | {
      type: 'CreateLeaderboard';
      data: {
        leaderboardId: string;
        name: string;
        period: Period;
        timezone: string;
        /** Places that count as the board's top (1-100); see `PositionChanged`. */
        topN: number;
        now: Date;
      };
    }
  | {
      type: 'RecordScore';
      data: {
        leaderboardId: string;
        memberId: string;
        points: number;
        transactionId: string;
        /**
         * When the award was made (its event's time): it picks the period, whenever the policy
         * reactor gets to it. `now`, when it is scored, only times the events recorded.
         */
        awardedAt: Date;
        now: Date;
      };
    }
  | {
      type: 'ClosePeriod';
      /** `force` ends the current period at `now` even before its natural end. */
      data: { leaderboardId: string; now: Date; force: boolean };
    }
  | {
      /**
       * Takes an award's points back (its reversal): from the open period when it counted there,
       * as a correction of the ended period that counted it otherwise; nothing when none did.
       */
      type: 'ReverseScore';
      data: {
        leaderboardId: string;
        memberId: string;
        /** The reversal's transaction. */
        transactionId: string;
        /** The award reversed. */
        reversalOf: string;
        now: Date;
      };
    }
  | {
      /** A deactivated member leaves the open period; their score is kept aside. */
      type: 'WithdrawMember';
      data: { leaderboardId: string; memberId: string; now: Date };
    }
  | {
      /** A reactivated member gets the score they left with back, if that period is still open. */
      type: 'ReinstateMember';
      data: { leaderboardId: string; memberId: string; now: Date };
    }
  | {
      /**
       * The program's zone changed: the open period keeps its end, and the periods after it are
       * cut in `timezone` (the first of them starts where the open one ends).
       */
      type: 'ChangeTimezone';
      data: { leaderboardId: string; timezone: string; now: Date };
    };

export type LeaderboardEvent =
  | {
      type: 'LeaderboardCreated';
      data: {
        leaderboardId: string;
        name: string;
        period: Period;
        timezone: string;
        /** Absent from boards created before top_n existed: they have `defaultTopN`. */
        topN?: number;
        periodStart: string;
        periodEnd: string;
        at: string;
      };
    }
  | {
      type: 'ScoreRecorded';
      data: {
        leaderboardId: string;
        memberId: string;
        points: number;
        /** The member's total in this period after the points. */
        score: number;
        transactionId: string;
        at: string;
      };
    }
  | {
      /**
       * Recorded for the scorer of every award, and for another member only when the award moves
       * them into or out of the board's top N. Histories from before issue 14 hold one for every
       * member an award displaced; projections rank positions themselves and read neither.
       */
      type: 'PositionChanged';
      data: {
        leaderboardId: string;
        memberId: string;
        /** Null when the member enters the board. */
        previousPosition: number | null;
        newPosition: number;
        /** The member's score. */
        points: number;
        at: string;
      };
    }
  | {
      type: 'PeriodEnded';
      data: {
        leaderboardId: string;
        periodStart: string;
        /** When it actually ended: the natural end, or earlier when closed by force. */
        periodEnd: string;
        /**
         * The top 10 entries (`standingsSize`): the webhook's. The read models keep the whole
         * final ranking from the scores before this event (projections/readModels.ts).
         */
        standings: Standing[];
        at: string;
      };
    }
  | {
      type: 'PeriodOpened';
      data: { leaderboardId: string; periodStart: string; periodEnd: string; at: string };
    }
  | {
      /** An award reversed in the period that counted it: the member's score goes down. */
      type: 'ScoreReversed';
      data: {
        leaderboardId: string;
        memberId: string;
        /** The points taken back. */
        points: number;
        /** The member's total in this period after the reversal. */
        score: number;
        transactionId: string;
        reversalOf: string;
        at: string;
      };
    }
  | {
      /**
       * An award reversed after its period ended: the ended period's standings gain this
       * correction (its published PeriodEnded stays as it was).
       */
      type: 'PeriodCorrected';
      data: {
        leaderboardId: string;
        periodStart: string;
        memberId: string;
        /** The points taken back from the member's final score. */
        points: number;
        transactionId: string;
        reversalOf: string;
        at: string;
      };
    }
  | {
      type: 'MemberWithdrawn';
      data: { leaderboardId: string; memberId: string; score: number; at: string };
    }
  | {
      type: 'MemberReinstated';
      data: { leaderboardId: string; memberId: string; score: number; at: string };
    }
  | {
      /** Periods from the next one on are cut in `timezone`. */
      type: 'LeaderboardTimezoneChanged';
      data: { leaderboardId: string; timezone: string; at: string };
    };

export type LeaderboardRejection =
  | 'leaderboard_exists'
  | 'leaderboard_not_found'
  | 'invalid_name'
  | 'invalid_period'
  | 'invalid_timezone'
  | 'invalid_top_n'
  | 'invalid_points'
  | 'balance_overflow';
