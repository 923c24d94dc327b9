/**
 * Transport security and caller authentication shared by every service: the settings
 * (gRPC TLS / mutual TLS, NATS nkey and TLS), how they turn into grpc-js and NATS options,
 * and bearer tokens on mutating calls.
 *
 * One setting turns TLS on: a service given `tls-cert` + `tls-key` serves TLS; given
 * `tls-ca` too, it requires client certificates signed by that CA (mutual TLS). The same
 * three files are the service's identity when it calls other services: the CA verifies
 * them, the certificate and key are presented as its client certificate.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { ConfigSchema } from './config.js';
import { PermissionDeniedError, UnauthenticatedError } from './errors.js';
import type { ConnectNatsOptions } from './nats.js';
import { tracedClientOptions } from './telemetry/grpc.js';

/** gRPC TLS settings of a service (spread into its config schema). */
export const GRPC_TLS_SETTINGS = {
  tlsCert: {
    type: 'string',
    doc: 'PEM certificate (chain) file: turns on TLS for the gRPC server; also the client certificate towards other services',
  },
  tlsKey: { type: 'string', doc: 'PEM private key file of tls-cert' },
  tlsCa: {
    type: 'string',
    doc: 'PEM CA bundle file: verifies the services this one calls; with tls-cert, the server requires client certificates signed by it (mutual TLS)',
  },
  tlsServerName: {
    type: 'string',
    doc: 'name expected in the certificates of called services when it differs from the host of their address',
  },
} as const satisfies ConfigSchema;

/**
 * The settings of a service's gRPC server (spread into its config schema): listen address,
 * port, TLS, and the optional plaintext health-only port for probes.
 */
export function grpcServerSettings(defaultPort: number) {
  return {
    host: { type: 'string', default: '127.0.0.1', doc: 'address the gRPC server listens on' },
    port: {
      type: 'int',
      default: defaultPort,
      min: 0,
      max: 65535,
      doc: 'gRPC port (0 = any free port)',
    },
    ...GRPC_TLS_SETTINGS,
    healthPort: {
      type: 'int',
      min: 0,
      max: 65535,
      doc: 'also serve health checking only, in plaintext, on this port (for probes when TLS is on; 0 = any free; unset = off)',
    },
  } as const satisfies ConfigSchema;
}

/** NATS authentication (user/password, token, nkey) and TLS settings (spread into a schema). */
export const NATS_SECURITY_SETTINGS = {
  natsUser: { type: 'string', doc: 'NATS user (with nats-pass)' },
  natsPass: { type: 'string', secret: true, doc: 'NATS password' },
  natsToken: { type: 'string', secret: true, doc: 'NATS authentication token' },
  natsNkeySeed: {
    type: 'string',
    secret: true,
    doc: 'NKey seed (SU…) for NATS nkey authentication',
  },
  natsTlsCa: { type: 'string', doc: 'PEM CA bundle file verifying the NATS server (turns on TLS)' },
  natsTlsCert: { type: 'string', doc: 'PEM client certificate file for NATS (TLS verify)' },
  natsTlsKey: { type: 'string', doc: 'PEM private key file of nats-tls-cert' },
} as const satisfies ConfigSchema;

export interface TlsSettings {
  readonly tlsCert?: string | undefined;
  readonly tlsKey?: string | undefined;
  readonly tlsCa?: string | undefined;
  readonly tlsServerName?: string | undefined;
}

export interface NatsSecuritySettings {
  readonly natsUser?: string | undefined;
  readonly natsPass?: string | undefined;
  readonly natsToken?: string | undefined;
  readonly natsNkeySeed?: string | undefined;
  readonly natsTlsCa?: string | undefined;
  readonly natsTlsCert?: string | undefined;
  readonly natsTlsKey?: string | undefined;
}

/** The NATS authentication / TLS part of `connectNats`'s options. */
export type NatsSecurity = Pick<ConnectNatsOptions, 'user' | 'pass' | 'token' | 'nkeySeed' | 'tls'>;

const set = (v: string | undefined): v is string => v !== undefined && v !== '';

/** True when the settings turn TLS on for the gRPC server (cert and key given). */
export function tlsEnabled(s: TlsSettings): boolean {
  return set(s.tlsCert) || set(s.tlsKey);
}

/**
 * Server credentials from the settings: insecure when no certificate is set; TLS with
 * cert+key; mutual TLS (client certificate required) when a CA is set too. Throws when only
 * one of cert/key is set or a file cannot be read.
 */
export function serverTlsCredentials(s: TlsSettings): grpc.ServerCredentials {
  if (!tlsEnabled(s)) return grpc.ServerCredentials.createInsecure();
  if (!set(s.tlsCert) || !set(s.tlsKey)) {
    throw new Error('TLS needs both tls-cert and tls-key');
  }
  const ca = set(s.tlsCa) ? readFileSync(s.tlsCa) : null;
  return grpc.ServerCredentials.createSsl(
    ca,
    [{ cert_chain: readFileSync(s.tlsCert), private_key: readFileSync(s.tlsKey) }],
    ca !== null,
  );
}

export interface ClientSecurity {
  credentials: grpc.ChannelCredentials;
  /** Channel options to merge (the expected server name when overridden). */
  options: grpc.ChannelOptions;
}

/**
 * Channel credentials from the settings: insecure when neither a CA nor a certificate is
 * set; otherwise TLS verifying the server with the CA (system roots without one) and
 * presenting cert+key when set (mutual TLS).
 */
export function clientTlsCredentials(s: TlsSettings): ClientSecurity {
  if (!set(s.tlsCa) && !tlsEnabled(s)) {
    return { credentials: grpc.credentials.createInsecure(), options: {} };
  }
  if (set(s.tlsCert) !== set(s.tlsKey)) {
    throw new Error('a client certificate needs both tls-cert and tls-key');
  }
  return {
    credentials: grpc.credentials.createSsl(
      set(s.tlsCa) ? readFileSync(s.tlsCa) : null,
      set(s.tlsKey) ? readFileSync(s.tlsKey) : null,
      set(s.tlsCert) ? readFileSync(s.tlsCert) : null,
    ),
    options: set(s.tlsServerName)
      ? {
          'grpc.ssl_target_name_override': s.tlsServerName,
          'grpc.default_authority': s.tlsServerName,
        }
      : {},
  };
}

/** `connectNats` options for user/password, token, nkey and TLS from the settings. */
export function natsSecurity(s: NatsSecuritySettings): NatsSecurity {
  const out: NatsSecurity = {};
  if (set(s.natsUser)) {
    out.user = s.natsUser;
    out.pass = s.natsPass ?? '';
  }
  if (set(s.natsToken)) out.token = s.natsToken;
  if (set(s.natsNkeySeed)) out.nkeySeed = s.natsNkeySeed;
  if (set(s.natsTlsCa) || set(s.natsTlsCert)) {
    out.tls = {
      ...(set(s.natsTlsCa) ? { caFile: s.natsTlsCa } : {}),
      ...(set(s.natsTlsCert) ? { certFile: s.natsTlsCert } : {}),
      ...(set(s.natsTlsKey) ? { keyFile: s.natsTlsKey } : {}),
    };
  }
  return out;
}

/** The metadata key carrying `Bearer <token>`. */
export const AUTHORIZATION_METADATA_KEY = 'authorization';

/**
 * Checks `authorization: Bearer <token>` when `token` is set (no-op otherwise): missing →
 * UNAUTHENTICATED, wrong → PERMISSION_DENIED. Constant-time comparison.
 */
export function requireBearer(
  metadata: grpc.Metadata,
  token: string | undefined,
  what = 'this call',
): void {
  if (!token) return;
  const raw = metadata.get(AUTHORIZATION_METADATA_KEY)[0];
  if (raw === undefined || raw === '') {
    throw new UnauthenticatedError(`${what} needs "authorization: Bearer <token>" metadata`);
  }
  const m = /^Bearer\s+(.+)$/i.exec(String(raw));
  const given = Buffer.from(m?.[1] ?? '');
  const want = Buffer.from(token);
  if (!m || given.length !== want.length || !timingSafeEqual(given, want)) {
    throw new PermissionDeniedError(`${what}: the bearer token is not accepted`);
  }
}

/** A client interceptor adding `authorization: Bearer <token>` to every call. */
export function bearerInterceptor(token: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        if (metadata.get(AUTHORIZATION_METADATA_KEY).length === 0) {
          metadata.set(AUTHORIZATION_METADATA_KEY, `Bearer ${token}`);
        }
        next(metadata, listener);
      },
    });
}

/**
 * Client security of command-line tools and the console from the environment:
 * `METAPRUNE_TLS_CA`, `METAPRUNE_TLS_CERT`, `METAPRUNE_TLS_KEY`, `METAPRUNE_TLS_SERVER_NAME`
 * and `METAPRUNE_TOKEN` (sent as a bearer token).
 */
export function clientSecurityFromEnv(
  env: Record<string, string | undefined> = process.env,
): ClientSecurity & { interceptors: grpc.Interceptor[] } {
  const tls = clientTlsCredentials({
    tlsCa: env['METAPRUNE_TLS_CA'],
    tlsCert: env['METAPRUNE_TLS_CERT'],
    tlsKey: env['METAPRUNE_TLS_KEY'],
    tlsServerName: env['METAPRUNE_TLS_SERVER_NAME'],
  });
  const token = env['METAPRUNE_TOKEN'];
  return { ...tls, interceptors: set(token) ? [bearerInterceptor(token)] : [] };
}

/**
 * Credentials and client options for a tool's client from the `METAPRUNE_TLS_*` /
 * `METAPRUNE_TOKEN` environment (see `clientSecurityFromEnv`), with `base` channel options
 * and the tracing interceptor.
 */
export function envClient(
  base: grpc.ChannelOptions = {},
  env: Record<string, string | undefined> = process.env,
): { credentials: grpc.ChannelCredentials; options: grpc.ClientOptions } {
  const sec = clientSecurityFromEnv(env);
  return {
    credentials: sec.credentials,
    options: tracedClientOptions({ ...base, ...sec.options, interceptors: sec.interceptors }),
  };
}
