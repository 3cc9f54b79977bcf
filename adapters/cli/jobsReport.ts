import type { TierReevaluationProgress } from '../../application/jobs.ts';

const count = (n: number) => n.toLocaleString('en-US');

/** One rule-change job as the CLI prints it: "program prg_…: 3,200 of 10,000 members re-evaluated". */
export const reevaluationLine = (progress: TierReevaluationProgress): string =>
  `program ${progress.programId}: ${count(progress.handled)} of ${count(progress.total)} members ` +
  `re-evaluated, ${count(progress.moved)} moved` +
  (progress.finished ? ' (done)' : ' (running)');
