import * as grpc from '@grpc/grpc-js';
import { common, TensorAssembler, weightgen } from '@metaprune/proto';
import { grpcClientOptions, tracedClientOptions } from '@metaprune/runtime';
import type { GeneratedWeights, WeightRequest, WeightSource } from './types.js';

export interface GrpcWeightSourceOptions {
  /** host:port of the weight generator. */
  address: string;
  credentials?: grpc.ChannelCredentials;
  /** Extra channel options (e.g. a TLS server name override). */
  channelOptions?: grpc.ChannelOptions;
  /** Deadline of one GenerateWeights call (default 120 s). */
  deadlineMs?: number;
  maxMessageBytes?: number;
}

/**
 * GenerateWeights over gRPC with one long-lived client (channel reuse, reconnect backoff).
 * Reassembles the chunked tensors; a truncated or inconsistent stream is an error.
 */
export class GrpcWeightSource implements WeightSource {
  private readonly client: weightgen.WeightGeneratorServiceClient;
  private readonly deadlineMs: number;

  constructor(opts: GrpcWeightSourceOptions) {
    this.client = new weightgen.WeightGeneratorServiceClient(
      opts.address,
      opts.credentials ?? grpc.credentials.createInsecure(),
      // the trace context goes along, so weight generation joins the evaluation's trace
      tracedClientOptions({
        ...grpcClientOptions(
          opts.maxMessageBytes !== undefined ? { maxMessageBytes: opts.maxMessageBytes } : {},
        ),
        ...opts.channelOptions,
      }),
    );
    this.deadlineMs = opts.deadlineMs ?? 120_000;
  }

  generate(req: WeightRequest, signal?: AbortSignal): Promise<GeneratedWeights> {
    signal?.throwIfAborted();
    const call = this.client.generateWeights(
      weightgen.GenerateWeightsRequest.fromPartial({
        pruningnetId: req.pruningnetId,
        version: req.version,
        encoding: common.Encoding.fromPartial({ genes: [...req.encoding] }),
      }),
      new grpc.Metadata(),
      { deadline: new Date(Date.now() + this.deadlineMs) },
    );
    const onAbort = (): void => call.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    return new Promise<GeneratedWeights>((resolve, reject) => {
      let header: weightgen.WeightsHeader | undefined;
      const tensors = new Map<string, common.Tensor>();
      const assembler = new TensorAssembler();
      let bytes = 0;
      let failed = false;
      const fail = (err: unknown): void => {
        if (failed) return;
        failed = true;
        signal?.removeEventListener('abort', onAbort);
        call.cancel();
        reject(signal?.aborted ? signal.reason : err);
      };
      call.on('data', (msg: weightgen.GenerateWeightsResponse) => {
        if (failed) return;
        try {
          const p = msg.payload;
          if (!p) throw new Error('GenerateWeights sent a message without payload');
          if (p.$case === 'header') {
            if (header) throw new Error('GenerateWeights sent a second header');
            header = p.value;
            return;
          }
          if (!header) throw new Error('GenerateWeights sent a chunk before the header');
          const done = assembler.push(p.value);
          if (done) {
            if (tensors.has(done.name)) throw new Error(`tensor "${done.name}" sent twice`);
            tensors.set(done.name, done.tensor);
            bytes += done.tensor.data.length;
          }
        } catch (err) {
          fail(err);
        }
      });
      call.on('error', (err) => fail(err));
      call.on('end', () => {
        if (failed) return;
        signal?.removeEventListener('abort', onAbort);
        if (!header) return fail(new Error('GenerateWeights ended without a header'));
        if (assembler.incomplete !== undefined) {
          return fail(new Error(`GenerateWeights ended inside tensor "${assembler.incomplete}"`));
        }
        if (header.tensorCount !== 0 && tensors.size !== header.tensorCount) {
          return fail(
            new Error(
              `GenerateWeights announced ${header.tensorCount} tensors but sent ${tensors.size}`,
            ),
          );
        }
        resolve({ header, tensors, bytes });
      });
    });
  }

  close(): void {
    this.client.close();
  }
}
