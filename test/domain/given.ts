import { fold, type Decider, type Decision } from '../../domain/decider.ts';

/** `given(history).when(command)`: folds the history, then decides; the decision is the result. */
export const specOf = <Command, Event, State, Rejection extends string>(
  decider: Decider<Command, Event, State, Rejection>,
) => ({
  given: (events: Event[] = []) => ({
    when: (command: Command): Decision<Event, Rejection> =>
      decider.decide(command, fold(decider.evolve, decider.initialState(), events)),
  }),
  stateAfter: (events: Event[]): State => fold(decider.evolve, decider.initialState(), events),
});

/** The events of an accepted decision; fails the test on a refusal. */
export const eventsOf = <Event, Rejection extends string>(
  decision: Decision<Event, Rejection>,
): Event[] => {
  if (!decision.ok)
    throw new Error(`expected acceptance, got ${decision.rejection}: ${decision.message}`);
  return decision.events;
};

/** The refusal's code and field, without the human message. */
export const refusalOf = <Event, Rejection extends string>(
  decision: Decision<Event, Rejection>,
): { rejection: Rejection; field: string | undefined } => {
  if (decision.ok) throw new Error(`expected a refusal, got ${JSON.stringify(decision.events)}`);
  return { rejection: decision.rejection, field: decision.field };
};
