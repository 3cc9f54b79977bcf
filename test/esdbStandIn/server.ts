import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import persistentGrpc from '@eventstore/db-client/generated/persistent_grpc_pb.js';
import persistentPb from '@eventstore/db-client/generated/persistent_pb.js';
import serverFeaturesGrpc from '@eventstore/db-client/generated/serverfeatures_grpc_pb.js';
import serverFeaturesPb from '@eventstore/db-client/generated/serverfeatures_pb.js';
import sharedPb from '@eventstore/db-client/generated/shared_pb.js';
import streamsGrpc from '@eventstore/db-client/generated/streams_grpc_pb.js';
import streamsPb from '@eventstore/db-client/generated/streams_pb.js';

/**
 * An in-process stand-in for the subset of EventStoreDB's gRPC API our adapter uses, served with
 * @grpc/grpc-js from the service definitions @eventstore/db-client ships. See README.md for what
 * it does not prove. Semantics follow the EventStoreDB docs: $all positions, inclusive forward
 * reads from a position, persistent subscriptions with at-least-once delivery, retried messages
 * ahead of new ones, parking at maxRetryCount, lazy checkpoints redelivered after a restart.
 */

type StoredEvent = {
  index: number;
  id: string;
  stream: string;
  revision: bigint;
  type: string;
  contentType: string;
  data: Uint8Array;
  customMetadata: Uint8Array;
  position: bigint;
  createdTicks: string;
};

type Message = { event: StoredEvent; link: StoredEvent | null; retryCount: number; ackId: string };

type Settings = {
  maxRetryCount: number;
  messageTimeoutMs: number;
  checkPointAfterMs: number;
  minCheckPointCount: number;
  maxCheckPointCount: number;
  liveBufferSize: number;
  readBatchSize: number;
  historyBufferSize: number;
  strategy: string;
  maxSubscriberCount: number;
  resolveLinks: boolean;
  extraStatistics: boolean;
};

type Consumer = {
  id: string;
  call: grpc.ServerDuplexStream<persistentPb.ReadReq, persistentPb.ReadResp>;
  bufferSize: number;
  inFlight: number;
};

type Group = {
  name: string;
  settings: Settings;
  filter: ((event: StoredEvent) => boolean) | null;
  startFrom: number;
  cursor: number;
  savedCheckpoint: number;
  acksSinceCheckpoint: number;
  lastCheckpointAt: number;
  outstanding: Map<string, { message: Message; consumer: Consumer; sentAt: number }>;
  retry: Message[];
  consumers: Consumer[];
  parkedTruncateBefore: bigint;
};

const strategyNames: Record<number, string> = {
  0: 'DispatchToSingle',
  1: 'RoundRobin',
  2: 'Pinned',
};

const ticksNow = () => (BigInt(Date.now()) * 10_000n).toString();

const exceptionError = (
  code: grpc.status,
  exception: string,
  details: string,
  extra: Record<string, string> = {},
): Partial<grpc.StatusObject> => {
  const metadata = new grpc.Metadata();
  metadata.set('exception', exception);
  for (const [key, value] of Object.entries(extra)) metadata.set(key, value);
  return { code, details, metadata };
};

const streamName = (identifier: sharedPb.StreamIdentifier | undefined): string =>
  Buffer.from(identifier?.getStreamName_asU8() ?? new Uint8Array()).toString('utf8');

const identifier = (name: string): sharedPb.StreamIdentifier => {
  const id = new sharedPb.StreamIdentifier();
  id.setStreamName(Uint8Array.from(Buffer.from(name, 'utf8')));
  return id;
};

const uuid = (id: string): sharedPb.UUID => {
  const value = new sharedPb.UUID();
  value.setString(id);
  return value;
};

type RecordLike = {
  setId(value?: sharedPb.UUID): unknown;
  setStreamIdentifier(value?: sharedPb.StreamIdentifier): unknown;
  setStreamRevision(value: string): unknown;
  setPreparePosition(value: string): unknown;
  setCommitPosition(value: string): unknown;
  getMetadataMap(): { set(key: string, value: string): unknown };
  setCustomMetadata(value: Uint8Array): unknown;
  setData(value: Uint8Array): unknown;
};

const fillRecord = <R extends RecordLike>(record: R, event: StoredEvent): R => {
  record.setId(uuid(event.id));
  record.setStreamIdentifier(identifier(event.stream));
  record.setStreamRevision(event.revision.toString());
  record.setPreparePosition(event.position.toString());
  record.setCommitPosition(event.position.toString());
  record.getMetadataMap().set('type', event.type);
  record.getMetadataMap().set('content-type', event.contentType);
  record.getMetadataMap().set('created', event.createdTicks);
  record.setCustomMetadata(event.customMetadata);
  record.setData(event.data);
  return record;
};

const parkedStream = (group: string) => `$persistentsubscription-$all::${group}-parked`;
const checkpointStream = (group: string) => `$persistentsubscription-$all::${group}-checkpoint`;

export type StandIn = {
  /** `esdb://127.0.0.1:<port>?tls=false` */
  connectionString: string;
  port: number;
  /** Cuts every connection (as a network fault would), unreachable for `downMs`; state stays. */
  dropConnections: (downMs?: number) => Promise<void>;
  /** A server restart: connections cut, subscriptions resume from their last saved checkpoint. */
  restart: () => Promise<void>;
  /** Writes an event with arbitrary bytes (e.g. malformed JSON), as another client could. */
  appendRaw: (
    stream: string,
    event: { type: string; data: Uint8Array; metadata: Uint8Array; contentType?: string },
  ) => void;
  /** What the test can check about a group (settings as the server holds them). */
  group: (name: string) => { settings: Settings; parked: number; groups: number } | null;
  stop: () => Promise<void>;
};

/** Starts the stand-in on 127.0.0.1 at an ephemeral port, insecure. */
export const startStandIn = async (): Promise<StandIn> => {
  const log: StoredEvent[] = [];
  const streams = new Map<string, StoredEvent[]>();
  const groups = new Map<string, Group>();
  let nextPosition = 128n;

  const write = (
    stream: string,
    event: Omit<StoredEvent, 'index' | 'stream' | 'revision' | 'position' | 'createdTicks'>,
  ) => {
    const events = streams.get(stream) ?? [];
    const stored: StoredEvent = {
      ...event,
      index: log.length,
      stream,
      revision: BigInt(events.length),
      position: nextPosition,
      createdTicks: ticksNow(),
    };
    nextPosition += 64n + BigInt(event.data.length + event.customMetadata.length);
    events.push(stored);
    streams.set(stream, events);
    log.push(stored);
    for (const group of groups.values()) pump(group);
    return stored;
  };

  const json = (value: unknown) => Uint8Array.from(Buffer.from(JSON.stringify(value), 'utf8'));

  // ---- persistent subscriptions ------------------------------------------------------------

  const lowestUnfinished = (group: Group): number => {
    let lowest = group.cursor;
    for (const { message } of group.outstanding.values())
      if (!message.link) lowest = Math.min(lowest, message.event.index);
    for (const message of group.retry)
      if (!message.link) lowest = Math.min(lowest, message.event.index);
    return lowest;
  };

  const saveCheckpoint = (group: Group) => {
    const lowest = lowestUnfinished(group);
    if (lowest === group.savedCheckpoint) return;
    group.savedCheckpoint = lowest;
    group.acksSinceCheckpoint = 0;
    group.lastCheckpointAt = Date.now();
    const at = log[lowest - 1]?.position ?? 0n;
    write(checkpointStream(group.name), {
      id: randomUUID(),
      type: '$SubscriptionCheckpoint',
      contentType: 'application/json',
      data: json(`C:${at}/P:${at}`),
      customMetadata: new Uint8Array(),
    });
  };

  const matches = (group: Group, event: StoredEvent) => !group.filter || group.filter(event);

  const pick = (group: Group, message: Message): Consumer | null => {
    if (group.consumers.length === 0) return null;
    if (group.settings.strategy === 'Pinned') {
      let hash = 0;
      for (const char of message.event.stream) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
      const consumer = group.consumers[hash % group.consumers.length]!;
      return consumer.inFlight < consumer.bufferSize ? consumer : null;
    }
    return group.consumers.find((c) => c.inFlight < c.bufferSize) ?? null;
  };

  const send = (group: Group, consumer: Consumer, message: Message) => {
    consumer.inFlight++;
    group.outstanding.set(message.ackId, { message, consumer, sentAt: Date.now() });
    const readEvent = new persistentPb.ReadResp.ReadEvent();
    readEvent.setEvent(
      fillRecord(new persistentPb.ReadResp.ReadEvent.RecordedEvent(), message.event),
    );
    if (message.link)
      readEvent.setLink(
        fillRecord(new persistentPb.ReadResp.ReadEvent.RecordedEvent(), message.link),
      );
    readEvent.setCommitPosition((message.link ?? message.event).position.toString());
    readEvent.setRetryCount(message.retryCount);
    const response = new persistentPb.ReadResp();
    response.setEvent(readEvent);
    consumer.call.write(response);
  };

  /** Retries first (in $all order), then new events, to consumers with free slots. */
  function pump(group: Group): void {
    for (;;) {
      let message: Message | null = null;
      let fromRetry = false;
      if (group.retry.length > 0) {
        message = group.retry[0]!;
        fromRetry = true;
      } else {
        while (group.cursor < log.length && !matches(group, log[group.cursor]!)) group.cursor++;
        const event = log[group.cursor];
        if (event) message = { event, link: null, retryCount: 0, ackId: event.id };
      }
      if (!message) return;
      const consumer = pick(group, message);
      if (!consumer) return;
      if (fromRetry) group.retry.shift();
      else group.cursor++;
      send(group, consumer, message);
    }
  }

  const park = (group: Group, message: Message, reason: string) => {
    const target = message.event;
    write(parkedStream(group.name), {
      id: randomUUID(),
      type: '$>',
      contentType: 'application/octet-stream',
      data: Uint8Array.from(Buffer.from(`${target.revision}@${target.stream}`, 'utf8')),
      customMetadata: json({ added: new Date().toISOString(), reason }),
    });
  };

  const retryOrPark = (group: Group, message: Message, reason: string) => {
    if (message.retryCount >= group.settings.maxRetryCount) {
      park(group, message, reason || 'max retry count reached');
      return;
    }
    const retried = { ...message, retryCount: message.retryCount + 1 };
    // Retries are kept in $all order; replayed parked messages after the rest.
    const key = (m: Message) => (m.link ? Number.MAX_SAFE_INTEGER : m.event.index);
    const at = group.retry.findIndex((m) => key(m) > key(retried));
    if (at === -1) group.retry.push(retried);
    else group.retry.splice(at, 0, retried);
  };

  const finish = (group: Group, ackId: string) => {
    const outstanding = group.outstanding.get(ackId);
    if (!outstanding) return null;
    group.outstanding.delete(ackId);
    outstanding.consumer.inFlight--;
    return outstanding.message;
  };

  const afterAck = (group: Group) => {
    group.acksSinceCheckpoint++;
    if (group.acksSinceCheckpoint >= group.settings.maxCheckPointCount) saveCheckpoint(group);
  };

  const disconnect = (group: Group, consumer: Consumer) => {
    const at = group.consumers.indexOf(consumer);
    if (at === -1) return;
    group.consumers.splice(at, 1);
    for (const [ackId, outstanding] of [...group.outstanding])
      if (outstanding.consumer === consumer) {
        finish(group, ackId);
        retryOrPark(group, outstanding.message, 'consumer disconnected');
      }
    pump(group);
  };

  const timer = setInterval(() => {
    const now = Date.now();
    for (const group of groups.values()) {
      for (const [ackId, outstanding] of [...group.outstanding])
        if (now - outstanding.sentAt > group.settings.messageTimeoutMs) {
          finish(group, ackId);
          retryOrPark(group, outstanding.message, 'message timeout');
        }
      if (
        now - group.lastCheckpointAt >= group.settings.checkPointAfterMs &&
        group.acksSinceCheckpoint >= group.settings.minCheckPointCount
      )
        saveCheckpoint(group);
      pump(group);
    }
  }, 50);
  timer.unref();

  const readSettings = (
    settings: persistentPb.CreateReq.Settings | persistentPb.UpdateReq.Settings | undefined,
  ): Settings => {
    if (!settings) throw new Error('settings missing');
    return {
      maxRetryCount: settings.getMaxRetryCount(),
      messageTimeoutMs: settings.getMessageTimeoutMs(),
      checkPointAfterMs: settings.getCheckpointAfterMs(),
      minCheckPointCount: settings.getMinCheckpointCount(),
      maxCheckPointCount: settings.getMaxCheckpointCount(),
      liveBufferSize: settings.getLiveBufferSize(),
      readBatchSize: settings.getReadBatchSize(),
      historyBufferSize: settings.getHistoryBufferSize(),
      strategy: strategyNames[settings.getNamedConsumerStrategy()] ?? 'RoundRobin',
      maxSubscriberCount: settings.getMaxSubscriberCount(),
      resolveLinks: settings.getResolveLinks(),
      extraStatistics: settings.getExtraStatistics(),
    };
  };

  const startIndex = (position: { getCommitPosition(): string } | undefined): number => {
    if (!position) return 0;
    const commit = BigInt(position.getCommitPosition());
    const at = log.findIndex((e) => e.position >= commit);
    return at === -1 ? log.length : at;
  };

  const persistentService: persistentGrpc.IPersistentSubscriptionsServer = {
    create: (call, callback) => {
      const options = call.request.getOptions();
      const all = options?.getAll();
      if (!options || !all)
        return callback({ code: grpc.status.UNIMPLEMENTED, details: 'stand-in: $all groups only' });
      const name = options.getGroupName();
      if (groups.has(name))
        return callback(
          exceptionError(
            grpc.status.ALREADY_EXISTS,
            'persistent-subscription-exists',
            `group ${name} exists`,
            {
              'stream-name': '$all',
              'group-name': name,
            },
          ),
        );
      let filter: Group['filter'] = null;
      if (all.hasFilter()) {
        const options = all.getFilter()!;
        const expression = options.hasEventType()
          ? options.getEventType()!
          : options.getStreamIdentifier()!;
        const regex = expression.getRegex() ? new RegExp(expression.getRegex()) : null;
        const prefixes = expression.getPrefixList();
        const field = options.hasEventType()
          ? (e: StoredEvent) => e.type
          : (e: StoredEvent) => e.stream;
        filter = (event) => {
          const value = field(event);
          return regex ? regex.test(value) : prefixes.some((p) => value.startsWith(p));
        };
      }
      const start = all.hasEnd()
        ? log.length
        : all.hasPosition()
          ? startIndex(all.getPosition())
          : 0;
      groups.set(name, {
        name,
        settings: readSettings(options.getSettings()),
        filter,
        startFrom: start,
        cursor: start,
        savedCheckpoint: start,
        acksSinceCheckpoint: 0,
        lastCheckpointAt: Date.now(),
        outstanding: new Map(),
        retry: [],
        consumers: [],
        parkedTruncateBefore: 0n,
      });
      callback(null, new persistentPb.CreateResp());
    },
    update: (call, callback) => {
      const options = call.request.getOptions();
      const group = options && groups.get(options.getGroupName());
      if (!options || !group)
        return callback(
          exceptionError(
            grpc.status.NOT_FOUND,
            'persistent-subscription-does-not-exist',
            'no such group',
            {
              'stream-name': '$all',
              'group-name': options?.getGroupName() ?? '',
            },
          ),
        );
      group.settings = readSettings(options.getSettings());
      callback(null, new persistentPb.UpdateResp());
    },
    delete: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'stand-in' }),
    getInfo: (call, callback) => {
      const options = call.request.getOptions();
      const group = options && groups.get(options.getGroupName());
      if (!group)
        return callback(
          exceptionError(
            grpc.status.NOT_FOUND,
            'persistent-subscription-does-not-exist',
            'no such group',
            {
              'stream-name': '$all',
              'group-name': options?.getGroupName() ?? '',
            },
          ),
        );
      const s = group.settings;
      const startAt = log[group.startFrom - 1]?.position;
      const info = new persistentPb.SubscriptionInfo();
      const checkpointAt = log[group.savedCheckpoint - 1]?.position;
      info
        .setEventSource('$all')
        .setGroupName(group.name)
        .setStatus('Live')
        .setStartFrom(group.startFrom === 0 ? 'C:0/P:0' : `C:${startAt}/P:${startAt}`)
        .setMessageTimeoutMilliseconds(s.messageTimeoutMs)
        .setMaxRetryCount(s.maxRetryCount)
        .setLiveBufferSize(s.liveBufferSize)
        .setBufferSize(s.historyBufferSize)
        .setReadBatchSize(s.readBatchSize)
        .setCheckPointAfterMilliseconds(s.checkPointAfterMs)
        .setMinCheckPointCount(s.minCheckPointCount)
        .setMaxCheckPointCount(s.maxCheckPointCount)
        .setNamedConsumerStrategy(s.strategy)
        .setMaxSubscriberCount(s.maxSubscriberCount)
        .setResolveLinkTos(s.resolveLinks)
        .setExtraStatistics(s.extraStatistics)
        .setTotalItems('0')
        .setCountSinceLastMeasurement('0')
        .setLiveBufferCount('0')
        .setRetryBufferCount(group.retry.length)
        .setTotalInFlightMessages(group.outstanding.size)
        .setOutstandingMessagesCount(group.outstanding.size)
        .setLastCheckpointedEventPosition(
          checkpointAt === undefined ? '' : `C:${checkpointAt}/P:${checkpointAt}`,
        )
        .setLastKnownEventPosition('')
        .setParkedMessageCount(String(parkedOf(group).length));
      const response = new persistentPb.GetInfoResp();
      response.setSubscriptionInfo(info);
      callback(null, response);
    },
    replayParked: (call, callback) => {
      const options = call.request.getOptions();
      const group = options && groups.get(options.getGroupName());
      if (!options || !group)
        return callback(
          exceptionError(
            grpc.status.NOT_FOUND,
            'persistent-subscription-does-not-exist',
            'no such group',
            {
              'stream-name': '$all',
              'group-name': options?.getGroupName() ?? '',
            },
          ),
        );
      const limit = options.hasNoLimit() ? Number.MAX_SAFE_INTEGER : Number(options.getStopAt());
      const links = parkedOf(group).slice(0, limit);
      for (const link of links) {
        const [revision, ...rest] = Buffer.from(link.data).toString('utf8').split('@');
        const target = streams.get(rest.join('@'))?.[Number(revision)];
        if (target) group.retry.push({ event: target, link, retryCount: 0, ackId: link.id });
        group.parkedTruncateBefore = link.revision + 1n;
      }
      pump(group);
      callback(null, new persistentPb.ReplayParkedResp());
    },
    list: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'stand-in' }),
    restartSubsystem: (_call, callback) =>
      callback({ code: grpc.status.UNIMPLEMENTED, details: 'stand-in' }),
    read: (call) => {
      let consumer: Consumer | null = null;
      let group: Group | null = null;
      call.on('data', (request: persistentPb.ReadReq) => {
        if (request.hasOptions()) {
          const options = request.getOptions()!;
          group = groups.get(options.getGroupName()) ?? null;
          if (!group || !options.hasAll()) {
            call.emit(
              'error',
              exceptionError(
                grpc.status.NOT_FOUND,
                'persistent-subscription-does-not-exist',
                'no such group',
                {
                  'stream-name': '$all',
                  'group-name': options.getGroupName(),
                },
              ),
            );
            return;
          }
          consumer = {
            id: randomUUID(),
            call,
            bufferSize: Math.max(1, options.getBufferSize()),
            inFlight: 0,
          };
          group.consumers.push(consumer);
          const confirmation = new persistentPb.ReadResp.SubscriptionConfirmation();
          confirmation.setSubscriptionId(consumer.id);
          const response = new persistentPb.ReadResp();
          response.setSubscriptionConfirmation(confirmation);
          call.write(response);
          pump(group);
          return;
        }
        if (!group || !consumer) return;
        const g: Group = group;
        if (request.hasAck()) {
          for (const id of request.getAck()!.getIdsList())
            if (finish(g, id.getString())) afterAck(g);
        } else if (request.hasNack()) {
          const nack = request.getNack()!;
          for (const id of nack.getIdsList()) {
            const message = finish(g, id.getString());
            if (!message) continue;
            const action = nack.getAction();
            if (action === persistentPb.ReadReq.Nack.Action.PARK)
              park(g, message, nack.getReason());
            else if (action === persistentPb.ReadReq.Nack.Action.SKIP) afterAck(g);
            else retryOrPark(g, message, nack.getReason());
          }
        }
        pump(g);
      });
      const gone = () => {
        if (group && consumer) disconnect(group, consumer);
        consumer = null;
      };
      call.on('end', () => {
        gone();
        call.end();
      });
      call.on('cancelled', gone);
      call.on('close', gone);
      call.on('error', gone);
    },
  };

  const parkedOf = (group: Group): StoredEvent[] =>
    (streams.get(parkedStream(group.name)) ?? []).filter(
      (e) => e.revision >= group.parkedTruncateBefore,
    );

  // ---- streams ------------------------------------------------------------------------------

  const readEvent = (event: StoredEvent, resolveLinks: boolean): streamsPb.ReadResp => {
    const read = new streamsPb.ReadResp.ReadEvent();
    let target: StoredEvent | undefined = event;
    if (resolveLinks && event.type === '$>') {
      const [revision, ...rest] = Buffer.from(event.data).toString('utf8').split('@');
      target = streams.get(rest.join('@'))?.[Number(revision)];
      read.setLink(fillRecord(new streamsPb.ReadResp.ReadEvent.RecordedEvent(), event));
    }
    if (target) read.setEvent(fillRecord(new streamsPb.ReadResp.ReadEvent.RecordedEvent(), target));
    read.setCommitPosition(event.position.toString());
    const response = new streamsPb.ReadResp();
    response.setEvent(read);
    return response;
  };

  const writeAll = async (
    call: grpc.ServerWritableStream<streamsPb.ReadReq, streamsPb.ReadResp>,
    events: Iterable<StoredEvent>,
    resolveLinks: boolean,
  ) => {
    for (const event of events) {
      if (call.cancelled) return;
      // Backpressure: a reader that does not keep up holds the server here.
      if (!call.write(readEvent(event, resolveLinks)))
        await new Promise((resolve) => call.once('drain', resolve));
    }
    call.end();
  };

  function* take(events: StoredEvent[], from: number, step: 1 | -1, count: number) {
    for (let i = from, n = 0; i >= 0 && i < events.length && n < count; i += step, n++)
      yield events[i]!;
  }

  const streamsService: streamsGrpc.IStreamsServer = {
    read: (call) => {
      const options = call.request.getOptions();
      if (!options || options.hasSubscription()) {
        call.emit('error', {
          code: grpc.status.UNIMPLEMENTED,
          details: 'stand-in: no catch-up subscriptions',
        });
        return;
      }
      const backwards =
        options.getReadDirection() === streamsPb.ReadReq.Options.ReadDirection.BACKWARDS;
      const step = backwards ? -1 : 1;
      const count = Number(options.getCount());
      const resolveLinks = options.getResolveLinks();
      if (options.hasStream()) {
        const stream = options.getStream()!;
        const name = streamName(stream.getStreamIdentifier());
        const all = streams.get(name);
        if (!all) {
          const notFound = new streamsPb.ReadResp.StreamNotFound();
          notFound.setStreamIdentifier(identifier(name));
          const response = new streamsPb.ReadResp();
          response.setStreamNotFound(notFound);
          call.write(response);
          call.end();
          return;
        }
        const visible = name.endsWith('-parked')
          ? all.filter(
              (e) =>
                e.revision >=
                (groups.get(name.slice('$persistentsubscription-$all::'.length, -'-parked'.length))
                  ?.parkedTruncateBefore ?? 0n),
            )
          : all;
        let from: number;
        if (stream.hasStart()) from = 0;
        else if (stream.hasEnd()) from = backwards ? visible.length - 1 : visible.length;
        else {
          const revision = BigInt(stream.getRevision());
          from = visible.findIndex((e) => e.revision >= revision);
          if (backwards) from = visible.findLastIndex((e) => e.revision <= revision);
          if (from === -1) from = backwards ? -1 : visible.length;
        }
        void writeAll(call, take(visible, from, step, count), resolveLinks);
        return;
      }
      const all = options.getAll()!;
      let from: number;
      if (all.hasStart()) from = backwards ? -1 : 0;
      else if (all.hasEnd()) from = backwards ? log.length - 1 : log.length;
      else {
        const commit = BigInt(all.getPosition()!.getCommitPosition());
        // Forwards from a position includes it; backwards reads what lies before it.
        from = backwards
          ? log.findLastIndex((e) => e.position < commit)
          : log.findIndex((e) => e.position >= commit);
        if (from === -1 && !backwards) from = log.length;
      }
      void writeAll(call, take(log, from, step, count), resolveLinks);
    },
    append: (call, callback) => {
      let options: streamsPb.AppendReq.Options | null = null;
      const proposed: streamsPb.AppendReq.ProposedMessage[] = [];
      call.on('data', (request: streamsPb.AppendReq) => {
        if (request.hasOptions()) options = request.getOptions()!;
        else if (request.hasProposedMessage()) proposed.push(request.getProposedMessage()!);
      });
      call.on('end', () => {
        const o = options;
        if (!o) return callback({ code: grpc.status.INVALID_ARGUMENT, details: 'options first' });
        const name = streamName(o.getStreamIdentifier());
        const existing = streams.get(name) ?? [];
        const current = existing.length - 1;
        const response = new streamsPb.AppendResp();
        const ok =
          o.hasAny() ||
          (o.hasNoStream() && current === -1) ||
          (o.hasStreamExists() && current >= 0) ||
          (o.hasRevision() && BigInt(o.getRevision()) === BigInt(current));
        // Idempotent by event id: the same events at the same expected revision succeed again.
        const ids = proposed.map((m) => m.getId()?.getString() ?? '');
        const repeat =
          !ok &&
          ids.length > 0 &&
          (o.hasNoStream() ? 0 : o.hasRevision() ? Number(o.getRevision()) + 1 : -1) >= 0 &&
          ids.every(
            (id, i) => existing[(o.hasNoStream() ? 0 : Number(o.getRevision()) + 1) + i]?.id === id,
          );
        if (!ok && !repeat) {
          const wrong = new streamsPb.AppendResp.WrongExpectedVersion();
          if (current === -1) wrong.setCurrentNoStream(new sharedPb.Empty());
          else wrong.setCurrentRevision(String(current));
          if (o.hasNoStream()) wrong.setExpectedNoStream(new sharedPb.Empty());
          else if (o.hasStreamExists()) wrong.setExpectedStreamExists(new sharedPb.Empty());
          else if (o.hasRevision()) wrong.setExpectedRevision(o.getRevision());
          response.setWrongExpectedVersion(wrong);
          return callback(null, response);
        }
        let last: StoredEvent | undefined;
        if (repeat) last = existing.find((e) => e.id === ids[ids.length - 1]);
        else
          for (const message of proposed) {
            const metadata = message.getMetadataMap();
            last = write(name, {
              id: message.getId()?.getString() ?? randomUUID(),
              type: metadata.get('type') ?? '',
              contentType: metadata.get('content-type') ?? 'application/octet-stream',
              data: message.getData_asU8(),
              customMetadata: message.getCustomMetadata_asU8(),
            });
          }
        const success = new streamsPb.AppendResp.Success();
        success.setCurrentRevision(String(last?.revision ?? current));
        const position = new streamsPb.AppendResp.Position();
        position.setCommitPosition(String(last?.position ?? 0n));
        position.setPreparePosition(String(last?.position ?? 0n));
        success.setPosition(position);
        response.setSuccess(success);
        callback(null, response);
      });
    },
    delete: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'stand-in' }),
    tombstone: (_call, callback) =>
      callback({ code: grpc.status.UNIMPLEMENTED, details: 'stand-in' }),
    batchAppend: (call) =>
      call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'stand-in' }),
  };

  const serverFeatures: serverFeaturesGrpc.IServerFeaturesServer = {
    getSupportedMethods: (_call, callback) => {
      const methods = new serverFeaturesPb.SupportedMethods();
      methods.setEventStoreServerVersion('23.10.0-stand-in');
      const add = (service: string, method: string, features: string[] = []) => {
        const m = new serverFeaturesPb.SupportedMethod();
        m.setServiceName(service).setMethodName(method).setFeaturesList(features);
        methods.addMethods(m);
      };
      add('event_store.client.streams.Streams', 'Read');
      add('event_store.client.streams.Streams', 'Append');
      for (const method of ['Create', 'Update', 'Read', 'GetInfo', 'ReplayParked'])
        add('event_store.client.persistent_subscriptions.PersistentSubscriptions', method, [
          'stream',
          'all',
        ]);
      callback(null, methods);
    },
  };

  let server: grpc.Server;
  let port = 0;
  const listen = async () => {
    server = new grpc.Server();
    server.addService(streamsGrpc.StreamsService, streamsService);
    server.addService(persistentGrpc.PersistentSubscriptionsService, persistentService);
    server.addService(serverFeaturesGrpc.ServerFeaturesService, serverFeatures);
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        `127.0.0.1:${port}`,
        grpc.ServerCredentials.createInsecure(),
        (error, bound) => (error ? reject(error) : resolve(bound)),
      ),
    );
  };
  await listen();

  const cut = async (downMs = 0) => {
    server.forceShutdown();
    if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
    for (const group of groups.values())
      for (const consumer of [...group.consumers]) disconnect(group, consumer);
    await listen();
  };

  return {
    connectionString: `esdb://127.0.0.1:${port}?tls=false`,
    port,
    dropConnections: cut,
    restart: async () => {
      server.forceShutdown();
      for (const group of groups.values()) {
        group.consumers = [];
        group.outstanding.clear();
        group.retry = group.retry.filter((m) => m.link);
        group.cursor = group.savedCheckpoint;
        group.acksSinceCheckpoint = 0;
      }
      await listen();
    },
    appendRaw: (stream, event) => {
      write(stream, {
        id: randomUUID(),
        type: event.type,
        contentType: event.contentType ?? 'application/json',
        data: event.data,
        customMetadata: event.metadata,
      });
    },
    group: (name) => {
      const group = groups.get(name);
      return group
        ? { settings: { ...group.settings }, parked: parkedOf(group).length, groups: groups.size }
        : null;
    },
    stop: async () => {
      clearInterval(timer);
      server.forceShutdown();
      await Promise.resolve();
    },
  };
};
