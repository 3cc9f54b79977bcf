import assert from 'node:assert/strict';
import type { ServiceProcess } from './service.ts';

/**
 * Fails with every problem found, followed by the recent output of each process, so a red run
 * says what broke and what the service printed meanwhile.
 */
export const assertNoProblems = (
  problems: readonly string[],
  services: readonly ServiceProcess[],
) => {
  if (problems.length === 0) return;
  const outputs = services
    .map(
      (s) =>
        `--- ${s.name} (pid ${s.pid ?? '-'}), last output:\n${s.output.slice(-3000) || '(none)'}`,
    )
    .join('\n');
  assert.fail(`${problems.length} problem(s):\n- ${problems.join('\n- ')}\n\n${outputs}`);
};

/**
 * A line on stdout as the scenario goes (the test runner shows it as it happens): a run that
 * times out still says how far it got and how long each restart took.
 */
export const progress = (message: string): void => {
  console.log(`[reliability ${new Date().toISOString().slice(11, 23)}] ${message}`);
};
