import { randomUUID } from 'node:crypto';
import type { Decider, Refusal } from '../domain/decider.ts';
import type { EventMetadata, Position } from '../domain/recordedEvent.ts';
import { ConcurrencyError, type EventStore } from './ports.ts';
import { noTrace, traceparentOf, tracer, type TraceContext } from './tracing.ts';
import { SpanStatusCode } from '@opentelemetry/api';

/**
 * A request's Idempotency-Key, as a command sees it. `key` is an opaque digest recorded in the
 * metadata of every event the command appends. `recover` is set when a retry took over a request
 * that died or failed: the command then first looks in its stream for events recorded under the
 * key, and when it finds them returns them as its result instead of deciding again.
 */
export type IdempotencyContext = { key: string; recover: boolean };

/** Who and what caused a command: recorded in every event's metadata. */
export type CommandContext = {
  programId: string | null;
  actor: string;
  correlationId: string;
  causationId: string | null;
  idempotency?: IdempotencyContext;
  /** The trace the command runs in (the request's, a policy batch's); none starts a new one. */
  trace?: TraceContext;
};

export type Handled<Event, State> = {
  ok: true;
  /** Events appended by this command (empty when the decision changed nothing). */
  events: Event[];
  state: State;
  /** Stream revision after the command; -1n for a stream that still does not exist. */
  revision: bigint;
  /** Position of the last appended event, or null when nothing was appended. */
  position: Position | null;
};

export type ConcurrencyExhausted = {
  ok: false;
  rejection: 'concurrency_conflict';
  message: string;
};

export type CommandResult<Event, State, Rejection extends string> =
  Handled<Event, State> | Refusal<Rejection> | ConcurrencyExhausted;

/** A folded stream, and when it was last known to be current (ms, from performance.now). */
type Cached = { state: unknown; revision: bigint; checkedAt: number };

export type CommandHandlerOptions = {
  store: EventStore<unknown>;
  /** Attempts per command when another writer wins the race; default 10. */
  maxAttempts?: number;
  /** Streams whose folded state is kept in memory; default 20,000. */
  cacheSize?: number;
  newEventId?: () => string;
};

/**
 * The one generic command handler: read the stream (from the cached revision on), fold, decide,
 * append with the expected revision, and retry on conflict a bounded number of times.
 *
 * Commands on one stream are queued in this process, so local callers never race each other;
 * optimistic concurrency still guards against other processes. The fold is cached per stream and
 * only events past the cached revision are read, so a long stream is not re-read per command.
 */
export class CommandHandler {
  readonly #store: EventStore<unknown>;
  readonly #maxAttempts: number;
  readonly #cacheSize: number;
  readonly #newEventId: () => string;
  readonly #cache = new Map<string, Cached>();
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(options: CommandHandlerOptions) {
    this.#store = options.store;
    this.#maxAttempts = options.maxAttempts ?? 10;
    this.#cacheSize = options.cacheSize ?? 20_000;
    this.#newEventId = options.newEventId ?? randomUUID;
  }

  handle<Command, Event extends { type: string; data: unknown }, State, Rejection extends string>(
    decider: Decider<Command, Event, State, Rejection>,
    stream: string,
    command: Command,
    context: CommandContext & { now: Date },
  ): Promise<CommandResult<Event, State, Rejection>> {
    const previous = this.#queues.get(stream) ?? Promise.resolve();
    const run = previous.then(() => this.#traced(decider, stream, command, context));
    const settled = run.catch(() => {});
    this.#queues.set(stream, settled);
    void settled.then(() => {
      if (this.#queues.get(stream) === settled) this.#queues.delete(stream);
    });
    return run;
  }

  /**
   * Current state of a stream, folded through the cache. By default it reads the events past the
   * cached revision; with `maxAgeMs` a cached state checked that recently is returned without a
   * read (for guards that tolerate another process's write of the last moment).
   */
  async load<Event extends { type: string; data: unknown }, State>(
    decider: Pick<Decider<unknown, Event, State, string>, 'initialState' | 'evolve'>,
    stream: string,
    options: { maxAgeMs?: number } = {},
  ): Promise<{ state: State; revision: bigint }> {
    const cached = this.#cache.get(stream) as (Cached & { state: State }) | undefined;
    if (
      cached &&
      options.maxAgeMs !== undefined &&
      performance.now() - cached.checkedAt <= options.maxAgeMs
    ) {
      return { state: cached.state, revision: cached.revision };
    }
    let state = cached?.state ?? decider.initialState();
    let revision = cached?.revision ?? -1n;
    const events = await this.#store.readStream(stream, { fromRevision: revision + 1n });
    for (const event of events) {
      state = decider.evolve(state, { type: event.type, data: event.data } as Event);
      revision = event.revision;
    }
    this.#remember(stream, { state, revision, checkedAt: performance.now() });
    return { state, revision };
  }

  /**
   * The command's span (a child of the request's, or of a policy batch's): its context is written
   * into the metadata of the events it appends, the link from all the later, asynchronous work.
   */
  async #traced<
    Command,
    Event extends { type: string; data: unknown },
    State,
    Rejection extends string,
  >(
    decider: Decider<Command, Event, State, Rejection>,
    stream: string,
    command: Command,
    context: CommandContext & { now: Date },
  ): Promise<CommandResult<Event, State, Rejection>> {
    const type = (command as { type?: unknown }).type;
    const name = typeof type === 'string' ? type : 'command';
    const attributes = {
      'incentable.command': name,
      'incentable.stream': stream,
      ...(context.programId !== null && { 'incentable.program_id': context.programId }),
    };
    const span = tracer().startSpan(`command ${name}`, { attributes }, context.trace ?? noTrace);
    try {
      const traceparent = traceparentOf(span);
      const result = await this.#handleNow(decider, stream, command, { ...context, traceparent });
      span.setAttribute(
        'incentable.command.outcome',
        !result.ok ? result.rejection : result.position === null ? 'unchanged' : 'appended',
      );
      return result;
    } catch (error) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  }

  async #handleNow<
    Command,
    Event extends { type: string; data: unknown },
    State,
    Rejection extends string,
  >(
    decider: Decider<Command, Event, State, Rejection>,
    stream: string,
    command: Command,
    context: CommandContext & { now: Date; traceparent: string | undefined },
  ): Promise<CommandResult<Event, State, Rejection>> {
    if (context.idempotency?.recover) {
      const applied = await this.#findApplied(decider, stream, context.idempotency.key);
      if (applied) return applied;
    }
    // Every write to a stream from this process goes through here, so a cached fold is current
    // unless another process wrote: decide on it without a read, and let the expected revision
    // catch the other process. A refusal on a cached fold is checked once against a fresh read.
    let trustCache = this.#cache.has(stream) && !context.idempotency?.recover;
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      const { state, revision } = await this.load(
        decider,
        stream,
        trustCache ? { maxAgeMs: Infinity } : {},
      );
      const decision = decider.decide(command, state);
      if (!decision.ok || decision.events.length === 0) {
        if (trustCache) {
          trustCache = false;
          attempt--;
          continue;
        }
        if (!decision.ok) return decision;
      }
      if (decision.events.length === 0)
        return { ok: true, events: [], state, revision, position: null };
      const metadata: EventMetadata = {
        programId: context.programId,
        correlationId: context.correlationId,
        causationId: context.causationId,
        actor: context.actor,
        recordedAt: context.now.toISOString(),
        ...(context.idempotency && { idempotencyKey: context.idempotency.key }),
        ...(context.traceparent !== undefined && { traceparent: context.traceparent }),
      };
      try {
        const appended = await this.#store.append(
          stream,
          decision.events.map((event) => ({
            id: this.#newEventId(),
            type: event.type,
            data: event.data,
            metadata,
          })),
          revision === -1n ? 'no_stream' : revision,
        );
        let next = state;
        for (const event of decision.events) next = decider.evolve(next, event);
        this.#remember(stream, {
          state: next,
          revision: appended.nextRevision,
          checkedAt: performance.now(),
        });
        return {
          ok: true,
          events: decision.events,
          state: next,
          revision: appended.nextRevision,
          position: appended.position,
        };
      } catch (error) {
        if (!(error instanceof ConcurrencyError)) throw error;
        trustCache = false;
        // Another process appended: the next load reads its events from the cached revision on.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
      }
    }
    return {
      ok: false,
      rejection: 'concurrency_conflict',
      message: `stream ${stream} kept changing: gave up after ${this.#maxAttempts} attempts`,
    };
  }

  /**
   * The result a command under `key` already had on this stream: the events appended under the
   * key (one append: they are consecutive) and the state right after them. Null when the stream
   * holds none, i.e. the command was never applied. Reads the whole stream: this runs only when a
   * retry takes over a request that died, never on the ordinary path.
   */
  async #findApplied<Event extends { type: string; data: unknown }, State>(
    decider: Pick<Decider<unknown, Event, State, string>, 'initialState' | 'evolve'>,
    stream: string,
    key: string,
  ): Promise<Handled<Event, State> | null> {
    let state = decider.initialState();
    let found: Handled<Event, State> | null = null;
    for (const recorded of await this.#store.readStream(stream)) {
      const event = { type: recorded.type, data: recorded.data } as Event;
      state = decider.evolve(state, event);
      if (recorded.metadata.idempotencyKey !== key) {
        if (found) break;
        continue;
      }
      found ??= { ok: true, events: [], state, revision: -1n, position: null };
      found.events.push(event);
      found.state = state;
      found.revision = recorded.revision;
      found.position = recorded.position;
    }
    return found;
  }

  #remember(stream: string, entry: Cached): void {
    this.#cache.delete(stream);
    this.#cache.set(stream, entry);
    if (this.#cache.size > this.#cacheSize) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
  }
}
