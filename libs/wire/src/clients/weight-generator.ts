/**
 * Client helpers for the weight generator, for the CLI and the other services: a typed
 * client, an async iterator over WatchTraining and a one-call
 * `fetchWeights` that reassembles a GenerateWeights stream into tensors by name.
 */
import type { ChannelCredentials } from '@grpc/grpc-js';
import { TensorAssembler, tensorToFloat32, weightgen } from '@metaprune/proto';
import { envClient, grpcClientOptions } from '@metaprune/runtime';
import { type CallOpts, callOptions, iterate, meta } from './call.js';

export type WeightGeneratorClient = weightgen.WeightGeneratorServiceClient;

export interface ConnectOptions {
  credentials?: ChannelCredentials;
  maxMessageBytes?: number;
  /**
   * No keepalive pings on the connection: an export keeps the weight generator's event loop
   * busy for many seconds, and an unanswered ping (10 s) would drop the connection under the
   * call ("Connection dropped").
   */
  longCalls?: boolean;
}

export function weightGeneratorClient(
  address: string,
  opts: ConnectOptions = {},
): WeightGeneratorClient {
  // without explicit credentials: METAPRUNE_TLS_* and METAPRUNE_TOKEN from the environment
  const c = envClient({
    ...grpcClientOptions(opts.maxMessageBytes ? { maxMessageBytes: opts.maxMessageBytes } : {}),
    ...(opts.longCalls
      ? { 'grpc.keepalive_time_ms': 2 ** 31 - 1, 'grpc.keepalive_permit_without_calls': 0 }
      : {}),
  });
  return new weightgen.WeightGeneratorServiceClient(
    address,
    opts.credentials ?? c.credentials,
    c.options,
  );
}

/** WatchTraining as an async iterator of progress reports. */
export function watchTraining(
  client: WeightGeneratorClient,
  jobId: string,
  opts: CallOpts = {},
): AsyncGenerator<weightgen.WatchTrainingResponse> {
  return iterate(client.watchTraining({ jobId }, meta(opts), callOptions(opts)));
}

export interface FetchedWeights {
  header: weightgen.WeightsHeader;
  /** Tensors by name ("<layer>.<part>"), in stream order. */
  tensors: Map<string, { shape: number[]; values: Float32Array }>;
}

/** Calls GenerateWeights and reassembles the streamed chunks. */
export async function fetchWeights(
  client: WeightGeneratorClient,
  req: Partial<weightgen.GenerateWeightsRequest> & { pruningnetId: string },
  opts: CallOpts = {},
): Promise<FetchedWeights> {
  const stream = client.generateWeights(
    weightgen.GenerateWeightsRequest.fromPartial(req),
    meta(opts),
    callOptions(opts),
  );
  let header: weightgen.WeightsHeader | undefined;
  const assembler = new TensorAssembler();
  const tensors = new Map<string, { shape: number[]; values: Float32Array }>();
  for await (const msg of iterate(stream)) {
    const p = msg.payload;
    if (!p) continue;
    if (p.$case === 'header') {
      if (header) throw new Error('GenerateWeights sent a second header');
      header = p.value;
      continue;
    }
    if (!header) throw new Error('GenerateWeights sent a chunk before its header');
    const done = assembler.push(p.value);
    if (done) {
      if (tensors.has(done.name)) throw new Error(`tensor ${done.name} was sent twice`);
      tensors.set(done.name, { shape: done.tensor.shape, values: tensorToFloat32(done.tensor) });
    }
  }
  if (!header) throw new Error('GenerateWeights ended without a header');
  if (assembler.incomplete !== undefined) {
    throw new Error(`GenerateWeights ended inside tensor ${assembler.incomplete}`);
  }
  if (tensors.size !== header.tensorCount) {
    throw new Error(
      `GenerateWeights sent ${tensors.size} tensors, the header announced ${header.tensorCount}`,
    );
  }
  return { header, tensors };
}
