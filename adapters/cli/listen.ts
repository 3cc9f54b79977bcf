import { setTimeout as delay } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { request } from 'undici';
import { isId } from '../../domain/ids.ts';
import { newWebhookSecret, signDocs, signStandard, standardKeyOf } from '../../delivery/signing.ts';
import { backoff } from '../backoff.ts';
import { productVersion } from '../version.ts';

/**
 * `npx incentable listen`: the program's webhooks, as they happen, forwarded to a local URL
 * (what `stripe listen` and `svix listen` do, without a relay). It reads the service's live
 * stream (`GET …/webhook-events/stream`, Server-Sent Events, authenticated with the API key),
 * POSTs each envelope's exact bytes to `--forward-to` with the headers of a real delivery,
 * signed with a secret of this session (printed at start), and prints a line per event. A
 * dropped stream is resumed from the last event handled (its SSE id): nothing lost, nothing
 * forwarded twice. Nothing is created on the service, so nothing is left behind at Ctrl-C.
 */
export type ListenOptions = {
  url: string;
  key: string;
  program: string;
  forwardTo?: string;
  events?: string;
  printJson?: boolean;
};

type Envelope = { id: string; type: string; body: string };

/** Not worth retrying: the key, the program or the filter is wrong. */
class ListenRefused extends Error {}

const forwardTimeoutMs = 10_000;

const urlArgument = (value: string): string => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new InvalidArgumentError('must be http or https');
  return value.replace(/\/+$/, '');
};

const programArgument = (value: string): string => {
  if (!isId('program', value)) throw new InvalidArgumentError('not a program id (prg_…)');
  return value;
};

export const registerListenCommand = (program: Command): void => {
  program
    .command('listen')
    .description("Forward a program's webhooks, as they happen, to a local URL")
    .addOption(
      new Option('--url <url>', 'the Incentable service, e.g. https://incentable.example.com')
        .env('INCENTABLE_URL')
        .argParser(urlArgument)
        .makeOptionMandatory(),
    )
    .addOption(
      new Option('--key <key>', 'an API key that can read the program')
        .env('INCENTABLE_KEY')
        .makeOptionMandatory(),
    )
    .addOption(
      new Option('--program <id>', 'the program (prg_…)')
        .argParser(programArgument)
        .makeOptionMandatory(),
    )
    .option('--forward-to <url>', 'where to POST each webhook', urlArgument)
    .option('--events <types>', 'comma-separated types, "*" or "<group>.*" (default: all)')
    .option('--print-json', 'print each envelope as one JSON line instead of forwarding')
    .action(async (options: ListenOptions) => {
      if (options.forwardTo === undefined && options.printJson !== true)
        program.error('error: give --forward-to <url>, or --print-json');
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        await listen(options, stop.signal);
      } catch (error) {
        if (!(error instanceof ListenRefused)) throw error;
        console.error(error.message);
        process.exitCode = 1;
      }
    });
};

/** Runs until `signal` aborts (Ctrl-C); reconnects on its own while the service answers. */
export const listen = async (options: ListenOptions, signal: AbortSignal): Promise<void> => {
  const secret = newWebhookSecret((n) => randomBytes(n));
  const session = { secret, key: standardKeyOf(secret), cursor: null as string | null };
  const target = options.printJson ? 'stdout as JSON' : options.forwardTo;
  console.error(
    `Ready. Forwarding ${options.program}'s webhooks to ${target}.\n` +
      `Your webhook signing secret for this session is ${secret} (^C to quit)`,
  );
  for (let attempt = 0; !signal.aborted;) {
    try {
      const received = await readStream(options, session, signal);
      if (received) attempt = 0;
    } catch (error) {
      if (error instanceof ListenRefused) throw error;
      if (signal.aborted) break;
      console.error(`Stream dropped (${messageOf(error)}).`);
    }
    if (signal.aborted) break;
    const delayMs = backoff({ attempt: attempt++, baseMs: 250, maxMs: 10_000, jitter: 0.2 });
    console.error(
      `Reconnecting in ${Math.round(delayMs)} ms, after ${session.cursor ?? 'the start'}.`,
    );
    await sleep(delayMs, signal);
  }
  console.error('Session ended.');
};

/**
 * One connection: resolves when the service ends it (a restart, a shutdown), true when it
 * delivered anything. Events are handled one at a time, in order; the cursor moves only once
 * an event is handled, so a drop mid-way resumes at that event.
 */
const readStream = async (
  options: ListenOptions,
  session: { secret: string; key: Uint8Array; cursor: string | null },
  signal: AbortSignal,
): Promise<boolean> => {
  const query = new URLSearchParams();
  if (options.events !== undefined) query.set('events', options.events);
  const response = await request(
    `${options.url}/v1/programs/${options.program}/webhook-events/stream?${query.toString()}`,
    {
      headers: {
        authorization: `Bearer ${options.key}`,
        accept: 'text/event-stream',
        'user-agent': `Incentable-Listen/${productVersion}`,
        ...(session.cursor !== null && { 'last-event-id': session.cursor }),
      },
      signal,
      bodyTimeout: 60_000,
    },
  );
  if (response.statusCode !== 200) {
    const text = await response.body.text();
    const message = `${response.statusCode}: ${errorMessageOf(text)}`;
    if ([400, 401, 403, 404].includes(response.statusCode))
      throw new ListenRefused(`The service refused the stream (${message}).`);
    throw new Error(message);
  }
  let received = false;
  const queue: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (message) => queue.push(message) });
  const decoder = new TextDecoder();
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    parser.feed(decoder.decode(chunk, { stream: true }));
    for (let message = queue.shift(); message !== undefined; message = queue.shift()) {
      if (message.event === 'ready') {
        const ready = JSON.parse(message.data) as { cursor: string };
        if (session.cursor === null) session.cursor = ready.cursor;
        console.error(`Connected; listening after ${session.cursor}.`);
      } else if (message.event === 'webhook') {
        await handle(options, session, JSON.parse(message.data) as Envelope);
        if (message.id !== undefined) session.cursor = message.id;
        received = true;
      } else if (message.event === 'error') {
        throw new Error(errorMessageOf(message.data));
      }
    }
  }
  return received;
};

/** Forwards one envelope (or prints it) and prints its line; never throws for the receiver. */
const handle = async (
  options: ListenOptions,
  session: { secret: string; key: Uint8Array },
  envelope: Envelope,
): Promise<void> => {
  if (options.printJson || options.forwardTo === undefined) {
    console.log(envelope.body);
    return;
  }
  const sentAt = new Date();
  const headers = {
    'content-type': 'application/json',
    'user-agent': `Incentable-Listen/${productVersion}`,
    'x-incentable-signature': signDocs(envelope.body, session.secret),
    'x-incentable-event': envelope.type,
    'x-incentable-delivery': `listen_${envelope.id}`,
    ...signStandard({ id: envelope.id, sentAt, body: envelope.body }, [session.key]),
  };
  const startedAt = performance.now();
  let outcome: string;
  try {
    const response = await request(options.forwardTo, {
      method: 'POST',
      headers,
      body: envelope.body,
      headersTimeout: forwardTimeoutMs,
      bodyTimeout: forwardTimeoutMs,
    });
    await response.body.dump();
    outcome = `${response.statusCode}`;
  } catch (error) {
    outcome = `error: ${messageOf(error)}`;
  }
  const ms = Math.round(performance.now() - startedAt);
  console.log(
    `${sentAt.toISOString()}  ${envelope.type}  ${envelope.id}  -> ${outcome}  (${ms} ms)`,
  );
};

const errorMessageOf = (text: string): string => {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string }; message?: string };
    return parsed.error?.message ?? parsed.message ?? text.slice(0, 200);
  } catch {
    return text.slice(0, 200);
  }
};

const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

/** Waits `ms`, or less when `signal` aborts first; never rejects. */
const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  delay(ms, undefined, { signal }).catch(() => undefined);
