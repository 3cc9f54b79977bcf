import { program, type ProgramChanges, type ProgramSettings } from '../../domain/program.ts';
import type { CommandContext } from '../commandHandler.ts';
import { run, streams, type CommandKit } from './kit.ts';

/** Creating and changing programs: single-stream commands on the program's stream. */
export const programCommands = (kit: CommandKit) => ({
  loadProgram: kit.loadProgram,
  programExists: kit.programExists,

  async createProgram(input: ProgramSettings, context: CommandContext) {
    const programId = kit.idFor('program', context, 'program');
    const c = kit.ctx({ ...context, programId });
    return run(
      await kit.handler.handle(
        program,
        streams.program(programId),
        { type: 'CreateProgram', data: { ...input, programId, now: c.now } },
        c,
      ),
    );
  },

  async updateProgram(programId: string, changes: ProgramChanges, context: CommandContext) {
    const c = kit.ctx(context);
    return run(
      await kit.handler.handle(
        program,
        streams.program(programId),
        { type: 'UpdateProgram', data: { programId, changes, now: c.now } },
        c,
      ),
    );
  },
});
