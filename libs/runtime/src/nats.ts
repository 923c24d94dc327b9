/**
 * NATS / JetStream bootstrap: a connection that reconnects forever, idempotent work-queue
 * streams and durable pull consumers, KV buckets, de-duplicated publishing and in-progress
 * heartbeats for long jobs.
 */
import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type PubAck,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import {
  connect,
  type MsgHdrs,
  type NatsConnection,
  type NodeConnectionOptions,
  nanos,
  headers as natsHeaders,
  nkeyAuthenticator,
  type Payload,
} from '@nats-io/transport-node';
import { FailedPreconditionError } from './errors.js';
import { type Logger, nullLogger } from './log.js';

export interface NatsTlsOptions {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface ConnectNatsOptions {
  /** One URL, a comma-separated list, or an array. */
  servers: string | string[];
  /** Connection name shown by the server (e.g. "evaluator-1234"). */
  name: string;
  user?: string;
  pass?: string;
  token?: string;
  /** NKey seed (SU…) for nkey authentication. */
  nkeySeed?: string;
  tls?: NatsTlsOptions;
  /** Base wait between reconnect attempts (default 1000 ms), jittered. */
  reconnectTimeWaitMs?: number;
  /** Keep retrying the first connect too instead of failing (default false). */
  waitOnFirstConnect?: boolean;
  /** Timeout of one connection attempt (default 5000 ms). */
  timeoutMs?: number;
  logger?: Logger;
}

/**
 * Splits `user:password@` out of server URLs (the client library ignores it): the URLs
 * without it, and the first credentials found. Lets one URL carry a stack's credentials
 * (`metaprune up` hands its operator URL to pipelines and tests; `up --nats` accepts one).
 */
export function splitNatsCredentials(servers: readonly string[]): {
  servers: string[];
  user?: string;
  pass?: string;
} {
  let user: string | undefined;
  let pass: string | undefined;
  const out = servers.map((s) => {
    const m = /^([a-z]+:\/\/)([^@/]*)@(.*)$/i.exec(s);
    if (!m) return s;
    const [name, password] = m[2]!.split(':', 2) as [string, string | undefined];
    if (user === undefined && name !== '') {
      user = decodeURIComponent(name);
      pass = decodeURIComponent(password ?? '');
    }
    return `${m[1]}${m[3]}`;
  });
  return { servers: out, ...(user !== undefined ? { user, pass: pass ?? '' } : {}) };
}

/** A server URL with its credentials (if any) replaced by `***`, for logs and output. */
export function redactNatsUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/)[^@/]*@/i, '$1***@');
}

/**
 * Connects with reconnect forever (jittered backoff) and logs disconnects / reconnects.
 * The returned connection's `closed()` promise resolves when it is closed or drained.
 */
export async function connectNats(opts: ConnectNatsOptions): Promise<NatsConnection> {
  const logger = opts.logger ?? nullLogger;
  const split = splitNatsCredentials(
    Array.isArray(opts.servers)
      ? opts.servers
      : opts.servers
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
  );
  const servers = split.servers;
  const options: NodeConnectionOptions = {
    servers,
    name: opts.name,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: opts.reconnectTimeWaitMs ?? 1000,
    reconnectJitter: Math.max(100, Math.round((opts.reconnectTimeWaitMs ?? 1000) / 2)),
    reconnectJitterTLS: 1000,
    waitOnFirstConnect: opts.waitOnFirstConnect ?? false,
    timeout: opts.timeoutMs ?? 5000,
    pingInterval: 10_000,
    maxPingOut: 3,
  };
  if (opts.user !== undefined) {
    options.user = opts.user;
    options.pass = opts.pass ?? '';
  } else if (split.user !== undefined && opts.token === undefined && !opts.nkeySeed) {
    options.user = split.user;
    options.pass = split.pass ?? '';
  }
  if (opts.token !== undefined) options.token = opts.token;
  if (opts.nkeySeed !== undefined) {
    options.authenticator = nkeyAuthenticator(new TextEncoder().encode(opts.nkeySeed));
  }
  if (opts.tls) {
    options.tls = {
      ...(opts.tls.caFile ? { caFile: opts.tls.caFile } : {}),
      ...(opts.tls.certFile ? { certFile: opts.tls.certFile } : {}),
      ...(opts.tls.keyFile ? { keyFile: opts.tls.keyFile } : {}),
    };
  }
  const nc = await connect(options);
  logger.info('connected to NATS', { server: nc.getServer(), name: opts.name });
  void (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect':
          logger.warn('NATS disconnected', { server: s.server });
          break;
        case 'reconnect':
          logger.info('NATS reconnected', { server: s.server });
          break;
        case 'error':
          logger.warn('NATS error', { err: s.error });
          break;
        case 'slowConsumer':
          logger.warn('NATS slow consumer', { sub: s.sub.getSubject() });
          break;
        case 'ldm':
          logger.warn('NATS server entering lame duck mode');
          break;
        default:
          logger.debug('NATS status', { type: s.type });
      }
    }
  })().catch(() => {});
  void nc.closed().then((err) => {
    if (err) logger.error('NATS connection closed with error', { err });
    else logger.info('NATS connection closed');
  });
  return nc;
}

function isNotFound(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}
const STREAM_NOT_FOUND = 10059;
const CONSUMER_NOT_FOUND = 10014;

export interface WorkQueueStreamOptions {
  name: string;
  subjects: string[];
  /** Messages older than this are dropped (default: never). */
  maxAgeMs?: number;
  /** Window in which a repeated Nats-Msg-Id is ignored. */
  duplicateWindowMs: number;
  maxMsgs?: number;
  maxBytes?: number;
  replicas?: number;
}

/**
 * Creates the work-queue stream (WorkQueue retention, file storage) or updates its mutable
 * settings to match. Safe to call concurrently from every replica at start-up.
 */
export async function ensureWorkQueueStream(
  jsm: JetStreamManager,
  opts: WorkQueueStreamOptions,
): Promise<StreamInfo> {
  const maxAge = opts.maxAgeMs ? nanos(opts.maxAgeMs) : 0;
  const wanted: Partial<StreamConfig> & { name: string } = {
    name: opts.name,
    subjects: opts.subjects,
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: maxAge,
    duplicate_window: nanos(opts.duplicateWindowMs),
    max_msgs: opts.maxMsgs ?? -1,
    max_bytes: opts.maxBytes ?? -1,
    num_replicas: opts.replicas ?? 1,
  };
  let info: StreamInfo;
  try {
    info = await jsm.streams.info(opts.name);
  } catch (err) {
    if (!isNotFound(err, STREAM_NOT_FOUND)) throw err;
    try {
      return await jsm.streams.add(wanted);
    } catch (addErr) {
      // another replica may have created it between info() and add()
      try {
        info = await jsm.streams.info(opts.name);
      } catch {
        throw addErr;
      }
    }
  }
  const cfg = info.config;
  if (cfg.retention !== RetentionPolicy.Workqueue || cfg.storage !== StorageType.File) {
    throw new FailedPreconditionError(
      `stream ${opts.name} exists with retention=${cfg.retention} storage=${cfg.storage}; ` +
        'expected workqueue retention and file storage (delete the stream to recreate it)',
    );
  }
  const same =
    JSON.stringify([...cfg.subjects].sort()) === JSON.stringify([...opts.subjects].sort()) &&
    cfg.max_age === wanted.max_age &&
    cfg.duplicate_window === wanted.duplicate_window &&
    cfg.max_msgs === wanted.max_msgs &&
    cfg.max_bytes === wanted.max_bytes;
  if (same) return info;
  return jsm.streams.update(opts.name, {
    ...cfg,
    subjects: opts.subjects,
    max_age: wanted.max_age!,
    duplicate_window: wanted.duplicate_window!,
    max_msgs: wanted.max_msgs!,
    max_bytes: wanted.max_bytes!,
  });
}

export interface DurableConsumerOptions {
  durable: string;
  filterSubject?: string;
  /** How long a delivered message may stay un-acked before redelivery. */
  ackWaitMs: number;
  /** Deliveries before the server gives up on a message (-1 = unlimited). */
  maxDeliver: number;
  /** Max un-acked messages outstanding across all pullers (default 1000). */
  maxAckPending?: number;
  /** Redelivery delays after a nak/ack timeout, per attempt. */
  backoffMs?: number[];
}

/**
 * Creates (or updates to match) a durable pull consumer with explicit acks. Safe to call
 * concurrently from every replica.
 */
export async function ensureDurableConsumer(
  jsm: JetStreamManager,
  stream: string,
  opts: DurableConsumerOptions,
): Promise<ConsumerInfo> {
  const wanted: Partial<ConsumerConfig> = {
    durable_name: opts.durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(opts.ackWaitMs),
    max_deliver: opts.maxDeliver,
    max_ack_pending: opts.maxAckPending ?? 1000,
    ...(opts.filterSubject ? { filter_subject: opts.filterSubject } : {}),
    ...(opts.backoffMs?.length ? { backoff: opts.backoffMs.map((ms) => nanos(ms)) } : {}),
  };
  let info: ConsumerInfo;
  try {
    info = await jsm.consumers.info(stream, opts.durable);
  } catch (err) {
    if (!isNotFound(err, CONSUMER_NOT_FOUND)) throw err;
    try {
      return await jsm.consumers.add(stream, wanted);
    } catch (addErr) {
      try {
        info = await jsm.consumers.info(stream, opts.durable);
      } catch {
        throw addErr;
      }
    }
  }
  const cfg = info.config;
  if ((cfg.filter_subject ?? '') !== (opts.filterSubject ?? '')) {
    throw new FailedPreconditionError(
      `consumer ${stream}/${opts.durable} filters ${cfg.filter_subject ?? '(nothing)'}, ` +
        `expected ${opts.filterSubject ?? '(nothing)'} (delete the consumer to change it)`,
    );
  }
  const same =
    cfg.ack_wait === wanted.ack_wait &&
    cfg.max_deliver === wanted.max_deliver &&
    cfg.max_ack_pending === wanted.max_ack_pending &&
    JSON.stringify(cfg.backoff ?? []) === JSON.stringify(wanted.backoff ?? []);
  if (same) return info;
  return jsm.consumers.update(stream, opts.durable, {
    ack_wait: wanted.ack_wait!,
    max_deliver: wanted.max_deliver!,
    max_ack_pending: wanted.max_ack_pending!,
    ...(wanted.backoff ? { backoff: wanted.backoff } : {}),
  });
}

export interface OpenKvOptions {
  /** Values kept per key (1–64; default 1). */
  history?: number;
  /** Entries older than this are removed (default: never). */
  ttlMs?: number;
  maxBytes?: number;
}

/** Creates or opens a file-backed KV bucket. */
export function openKv(js: JetStreamClient, bucket: string, opts: OpenKvOptions = {}): Promise<KV> {
  return new Kvm(js).create(bucket, {
    history: opts.history ?? 1,
    storage: StorageType.File,
    ...(opts.ttlMs ? { ttl: opts.ttlMs } : {}),
    ...(opts.maxBytes ? { max_bytes: opts.maxBytes } : {}),
  });
}

export interface PublishWithMsgIdOptions {
  headers?: MsgHdrs;
  timeoutMs?: number;
  /** Fail unless the subject is bound to this stream. */
  expectStream?: string;
}

/**
 * Publishes to JetStream with a Nats-Msg-Id header; within the stream's duplicate window a
 * second publish with the same id is not stored again (`ack.duplicate` is true).
 */
export function publishWithMsgId(
  js: JetStreamClient,
  subject: string,
  data: Payload,
  msgId: string,
  opts: PublishWithMsgIdOptions = {},
): Promise<PubAck> {
  return js.publish(subject, data, {
    msgID: msgId,
    ...(opts.headers ? { headers: opts.headers } : {}),
    ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}),
    ...(opts.expectStream ? { expect: { streamName: opts.expectStream } } : {}),
  });
}

/**
 * Tells the server a long job on `msg` is still in progress every `intervalMs` (use about a
 * third of the consumer's ack wait) so it is not redelivered. Returns a stop function.
 */
export function keepWorking(msg: JsMsg, intervalMs: number): () => void {
  const timer = setInterval(() => {
    try {
      msg.working();
    } catch {
      // connection closed: the server will redeliver after ack wait
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Runs `fn` while sending in-progress heartbeats for `msg`. */
export async function withInProgress<T>(
  msg: JsMsg,
  intervalMs: number,
  fn: () => Promise<T>,
): Promise<T> {
  const stop = keepWorking(msg, intervalMs);
  try {
    return await fn();
  } finally {
    stop();
  }
}

/** A headers object (re-exported so services need not import nats-core directly). */
export function createHeaders(): MsgHdrs {
  return natsHeaders();
}
