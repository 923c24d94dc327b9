/**
 * gRPC server bootstrap with the standard grpc.health.v1 Health service, graceful shutdown,
 * client defaults, TLS helpers and a health client.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { service as healthProtoService } from 'grpc-health-check';
import { type Logger, nullLogger } from './log.js';
import { withSafeDecoding } from './safe-decode.js';

/** Default maximum message size (both directions): 32 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024;

/** The fully-qualified name of the health service. */
export const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health';

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING';
export type WatchStatus = ServingStatus | 'SERVICE_UNKNOWN';

/** The grpc.health.v1.Health service definition (protobuf codec from grpc-health-check). */
export const healthServiceDefinition =
  healthProtoService as unknown as grpc.ServiceDefinition<grpc.UntypedServiceImplementation>;

interface HealthRequest {
  service?: string;
}
interface HealthResponse {
  status: WatchStatus;
}

/**
 * In-memory health registry served as grpc.health.v1.Health (Check, Watch, List).
 * `''` is the overall server status.
 */
export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<
    string,
    Set<grpc.ServerWritableStream<HealthRequest, HealthResponse>>
  >();

  set(service: string, status: ServingStatus): void {
    this.statuses.set(service, status);
    for (const call of this.watchers.get(service) ?? []) {
      if (!call.cancelled && !call.writableEnded) call.write({ status });
    }
  }

  /** Sets every registered service (and the overall status '') to `status`. */
  setAll(status: ServingStatus): void {
    const names = new Set(['', ...this.statuses.keys()]);
    for (const name of names) this.set(name, status);
  }

  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** All known services and their statuses. */
  snapshot(): Record<string, ServingStatus> {
    return Object.fromEntries(this.statuses);
  }

  /** Ends all Watch streams with UNAVAILABLE (so they don't hold up a graceful shutdown). */
  closeWatchers(): void {
    for (const set of this.watchers.values()) {
      for (const call of set) {
        if (!call.cancelled && !call.writableEnded) {
          call.emit('error', {
            code: grpc.status.UNAVAILABLE,
            details: 'server shutting down',
            metadata: new grpc.Metadata(),
          });
        }
      }
      set.clear();
    }
  }

  /** The implementation to register with `healthServiceDefinition`. */
  implementation(): grpc.UntypedServiceImplementation {
    return {
      Check: (
        call: grpc.ServerUnaryCall<HealthRequest, HealthResponse>,
        callback: grpc.sendUnaryData<HealthResponse>,
      ) => {
        const name = call.request.service ?? '';
        const status = this.statuses.get(name);
        if (status === undefined) {
          callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${name}` });
        } else {
          callback(null, { status });
        }
      },
      Watch: (call: grpc.ServerWritableStream<HealthRequest, HealthResponse>) => {
        const name = call.request.service ?? '';
        let set = this.watchers.get(name);
        if (!set) {
          set = new Set();
          this.watchers.set(name, set);
        }
        set.add(call);
        const remove = (): void => {
          this.watchers.get(name)?.delete(call);
        };
        call.on('cancelled', remove);
        call.on('finish', remove);
        call.write({ status: this.statuses.get(name) ?? 'SERVICE_UNKNOWN' });
      },
      List: (
        _call: grpc.ServerUnaryCall<unknown, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => {
        const statuses: Record<string, HealthResponse> = {};
        for (const [name, status] of this.statuses) statuses[name] = { status };
        callback(null, { statuses });
      },
    };
  }
}

export interface GrpcServiceRegistration {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
  /** Name reported by health checking; derived from the method paths when omitted. */
  name?: string;
}

export interface StartGrpcServerOptions {
  host?: string;
  /** 0 = any free port. */
  port?: number;
  services: GrpcServiceRegistration[];
  /** Maximum message size in and out (default 32 MiB); larger → RESOURCE_EXHAUSTED. */
  maxMessageBytes?: number;
  /** Default: insecure. */
  credentials?: grpc.ServerCredentials;
  /**
   * Also serve Health (only) in plaintext on this port (0 = any free), so Kubernetes probes
   * keep working when the main port requires mutual TLS.
   */
  healthPort?: number;
  /** How long shutdown() reports NOT_SERVING before it stops taking calls (default 0). */
  drainDelayMs?: number;
  /** Extra grpc-js server options. */
  options?: grpc.ServerOptions;
  logger?: Logger;
}

export interface GrpcServerHandle {
  readonly port: number;
  /** host:port */
  readonly address: string;
  /** Port of the plaintext health-only listener when `healthPort` was given. */
  readonly healthPort: number | undefined;
  /** host:port of that listener (for probes and the ready line), when there is one. */
  readonly healthAddress: string | undefined;
  readonly server: grpc.Server;
  readonly health: HealthService;
  /** Names of the registered services (as used by health checking). */
  readonly serviceNames: readonly string[];
  /**
   * Health → NOT_SERVING, wait drainDelayMs, stop accepting calls and let in-flight ones
   * finish for up to `graceMs` (default 10 000), then force. Idempotent.
   */
  shutdown(graceMs?: number): Promise<void>;
}

/** "pkg.Service" from a service definition's method paths ("/pkg.Service/Method"). */
export function serviceNameOf(definition: grpc.ServiceDefinition): string {
  for (const method of Object.values(definition)) {
    const m = /^\/([^/]+)\//.exec(method.path);
    if (m?.[1]) return m[1];
  }
  throw new Error('cannot derive a service name from an empty service definition');
}

function bind(
  server: grpc.Server,
  address: string,
  creds: grpc.ServerCredentials,
): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port)));
  });
}

function serverOptions(maxMessageBytes: number, extra?: grpc.ServerOptions): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    'grpc.keepalive_time_ms': 60_000,
    'grpc.keepalive_timeout_ms': 20_000,
    'grpc.keepalive_permit_without_calls': 1,
    ...extra,
  };
}

function shutdownServer(server: grpc.Server, graceMs: number): Promise<'graceful' | 'forced'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve('forced');
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve('graceful');
    });
  });
}

/** Starts a gRPC server with the given services plus grpc.health.v1.Health, all SERVING. */
export async function startGrpcServer(opts: StartGrpcServerOptions): Promise<GrpcServerHandle> {
  const host = opts.host ?? '127.0.0.1';
  const maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const logger = opts.logger ?? nullLogger;
  const server = new grpc.Server(serverOptions(maxMessageBytes, opts.options));
  const health = new HealthService();
  const serviceNames: string[] = [];
  for (const svc of opts.services) {
    const safe = withSafeDecoding(svc.definition, svc.implementation);
    server.addService(safe.definition, safe.implementation);
    serviceNames.push(svc.name ?? serviceNameOf(svc.definition));
  }
  server.addService(healthServiceDefinition, health.implementation());

  const hostPort = (h: string, p: number): string =>
    h.includes(':') ? `[${h}]:${p}` : `${h}:${p}`;
  const port = await bind(
    server,
    hostPort(host, opts.port ?? 0),
    opts.credentials ?? grpc.ServerCredentials.createInsecure(),
  );

  let healthServer: grpc.Server | undefined;
  let healthPort: number | undefined;
  if (opts.healthPort !== undefined) {
    healthServer = new grpc.Server(serverOptions(64 * 1024));
    healthServer.addService(healthServiceDefinition, health.implementation());
    try {
      healthPort = await bind(
        healthServer,
        hostPort(host, opts.healthPort),
        grpc.ServerCredentials.createInsecure(),
      );
    } catch (err) {
      server.forceShutdown();
      throw err;
    }
  }

  health.set('', 'SERVING');
  for (const name of serviceNames) health.set(name, 'SERVING');
  logger.info('gRPC server listening', { address: hostPort(host, port), healthPort, serviceNames });

  let shuttingDown: Promise<void> | undefined;
  const drainDelayMs = opts.drainDelayMs ?? 0;

  return {
    port,
    address: hostPort(host, port),
    healthPort,
    healthAddress: healthPort !== undefined ? hostPort(host, healthPort) : undefined,
    server,
    health,
    serviceNames,
    shutdown(graceMs = 10_000) {
      shuttingDown ??= (async () => {
        health.setAll('NOT_SERVING');
        logger.info('gRPC server shutting down', { graceMs, drainDelayMs });
        if (drainDelayMs > 0) await new Promise((r) => setTimeout(r, drainDelayMs));
        health.closeWatchers();
        const how = await shutdownServer(server, graceMs);
        if (healthServer) await shutdownServer(healthServer, 1000);
        logger.info('gRPC server stopped', { how });
      })();
      return shuttingDown;
    },
  };
}

export interface ClientOptionsInput {
  maxMessageBytes?: number;
  /** Keepalive ping interval (default 30 s). */
  keepaliveMs?: number;
}

/** Default channel options for clients: message size limits, keepalive, reconnect backoff. */
export function grpcClientOptions(input: ClientOptionsInput = {}): grpc.ChannelOptions {
  const max = input.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  return {
    'grpc.max_receive_message_length': max,
    'grpc.max_send_message_length': max,
    'grpc.keepalive_time_ms': input.keepaliveMs ?? 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.initial_reconnect_backoff_ms': 200,
    'grpc.max_reconnect_backoff_ms': 5_000,
    'grpc.enable_retries': 1,
  };
}

export interface TlsFiles {
  /** PEM certificate chain of this side. */
  certFile?: string;
  /** PEM private key of this side. */
  keyFile?: string;
  /** PEM CA bundle used to verify the peer. */
  caFile?: string;
}

/**
 * Server credentials: insecure when `tls` is undefined; TLS with cert+key; mutual TLS when a
 * CA is given and `requireClientCert` (default true when caFile is set).
 */
export function serverCredentials(
  tls?: TlsFiles & { requireClientCert?: boolean },
): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  if (!tls.certFile || !tls.keyFile) {
    throw new Error('TLS for a gRPC server needs both certFile and keyFile');
  }
  const ca = tls.caFile ? readFileSync(tls.caFile) : null;
  return grpc.ServerCredentials.createSsl(
    ca,
    [{ cert_chain: readFileSync(tls.certFile), private_key: readFileSync(tls.keyFile) }],
    tls.requireClientCert ?? ca !== null,
  );
}

/** Channel credentials: insecure when `tls` is undefined; otherwise TLS (mutual with cert+key). */
export function channelCredentials(tls?: TlsFiles): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(
    tls.caFile ? readFileSync(tls.caFile) : null,
    tls.keyFile ? readFileSync(tls.keyFile) : null,
    tls.certFile ? readFileSync(tls.certFile) : null,
  );
}

const HealthClient = grpc.makeGenericClientConstructor(healthServiceDefinition, 'Health');

export interface HealthClientOptions {
  /** Service to check; '' (default) is the whole server. */
  service?: string;
  credentials?: grpc.ChannelCredentials;
  /** Deadline of one Check call (default 2000 ms). */
  timeoutMs?: number;
}

/** One Health/Check call; resolves to the status or rejects with the gRPC error. */
export function checkHealth(
  address: string,
  opts: HealthClientOptions = {},
): Promise<ServingStatus> {
  const client = new HealthClient(
    address,
    opts.credentials ?? grpc.credentials.createInsecure(),
    grpcClientOptions(),
  );
  const deadline = new Date(Date.now() + (opts.timeoutMs ?? 2000));
  type CheckFn = (
    req: HealthRequest,
    meta: grpc.Metadata,
    options: grpc.CallOptions,
    cb: grpc.requestCallback<HealthResponse>,
  ) => grpc.ClientUnaryCall;
  const check = client['Check'] as CheckFn;
  return new Promise<ServingStatus>((resolve, reject) => {
    const req = { service: opts.service ?? '' };
    check.call(client, req, new grpc.Metadata(), { deadline }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve((res?.status ?? 'UNKNOWN') as ServingStatus);
    });
  });
}

/** Polls Health/Check until it answers SERVING; rejects after `waitMs` (default 30 000). */
export async function waitForServing(
  address: string,
  opts: HealthClientOptions & { waitMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const until = Date.now() + (opts.waitMs ?? 30_000);
  let last = 'no answer';
  for (;;) {
    try {
      const status = await checkHealth(address, opts);
      if (status === 'SERVING') return;
      last = status;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= until) {
      throw new Error(
        `${address}${opts.service ? ` (${opts.service})` : ''} did not report SERVING within ${opts.waitMs ?? 30_000} ms (last: ${last})`,
      );
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}

/** Opens a Health/Watch stream; `onStatus` gets every status; returns a cancel function. */
export function watchHealth(
  address: string,
  onStatus: (status: WatchStatus) => void,
  opts: Omit<HealthClientOptions, 'timeoutMs'> & { onEnd?: (err?: grpc.ServiceError) => void } = {},
): () => void {
  const client = new HealthClient(
    address,
    opts.credentials ?? grpc.credentials.createInsecure(),
    grpcClientOptions(),
  );
  const watch = client['Watch'] as (
    req: HealthRequest,
  ) => grpc.ClientReadableStream<HealthResponse>;
  const stream = watch.call(client, { service: opts.service ?? '' });
  let ended = false;
  const end = (err?: grpc.ServiceError): void => {
    if (ended) return;
    ended = true;
    client.close();
    opts.onEnd?.(err);
  };
  stream.on('data', (res: HealthResponse) => onStatus(res.status));
  stream.on('error', (err: grpc.ServiceError) => end(err));
  stream.on('end', () => end());
  return () => {
    stream.cancel();
  };
}
