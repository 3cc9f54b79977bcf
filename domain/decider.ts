/**
 * The shape every aggregate follows (Emmett's decider): a pure `decide` that turns a command and
 * the current state into facts or a refusal, and a pure `evolve` that folds a fact into state.
 * Both are synchronous and total; the time and any ids arrive inside the command.
 */
export type Decider<Command, Event, State, Rejection extends string> = {
  initialState: () => State;
  decide: (command: Command, state: State) => Decision<Event, Rejection>;
  evolve: (state: State, event: Event) => State;
};

/** A refusal is an expected outcome, not an exception; `field` names the input at fault. */
export type Refusal<Rejection extends string> = {
  ok: false;
  rejection: Rejection;
  message: string;
  field?: string;
};

export type Decision<Event, Rejection extends string> =
  { ok: true; events: Event[] } | Refusal<Rejection>;

export const accept = <Event>(events: Event[]): { ok: true; events: Event[] } => ({
  ok: true,
  events,
});

export const reject = <Rejection extends string>(
  rejection: Rejection,
  message: string,
  field?: string,
): Refusal<Rejection> =>
  field === undefined
    ? { ok: false, rejection, message }
    : { ok: false, rejection, message, field };

/** Folds a history into state: what the command handler does before it decides. */
export const fold = <Event, State>(
  evolve: (state: State, event: Event) => State,
  initial: State,
  events: Iterable<Event>,
): State => {
  let state = initial;
  for (const event of events) state = evolve(state, event);
  return state;
};
