/**
 * Promise and async-iterator forms of grpc-js calls, with a bearer token and a deadline:
 * one helper for every service client.
 */
import type { CallOptions, Client, ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';

export interface CallOpts {
  /** Bearer token sent as "authorization" metadata. */
  token?: string;
  /** Deadline in milliseconds from now. */
  timeoutMs?: number;
}

export function meta(opts: CallOpts): Metadata {
  const m = new Metadata();
  if (opts.token) m.set('authorization', `Bearer ${opts.token}`);
  return m;
}

export function callOptions(opts: CallOpts): Partial<CallOptions> {
  return opts.timeoutMs ? { deadline: new Date(Date.now() + opts.timeoutMs) } : {};
}

type UnaryMethod<Req, Res> = (
  req: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  cb: (err: ServiceError | null, res: Res) => void,
) => unknown;

/** Promise form of a unary call: `unary(client, client.getTraining, { jobId })`. */
export function unary<Req, Res>(
  client: Client,
  method: UnaryMethod<Req, Res>,
  req: Req,
  opts: CallOpts = {},
): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    method.call(client, req, meta(opts), callOptions(opts), (err, res) =>
      err ? reject(err) : resolve(res),
    );
  });
}

/** Iterates a server stream's messages; the stream's error status rejects the iteration. */
export async function* iterate<T>(stream: ClientReadableStream<T>): AsyncGenerator<T> {
  try {
    for await (const msg of stream) yield msg as T;
  } finally {
    stream.cancel();
  }
}
