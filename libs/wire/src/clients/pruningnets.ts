/**
 * Resolving a search's PruningNet: which checkpoint version (0 = latest at start), which
 * network it generates weights for, and which data split it was trained on (so the
 * evaluators hold out the same sub-val).
 */
import * as grpc from '@grpc/grpc-js';
import { common, weightgen } from '@metaprune/proto';
import {
  grpcClientOptions,
  InvalidArgumentError,
  NotFoundError,
  tracedClientOptions,
  UnavailableError,
} from '@metaprune/runtime';
import type { ResolvedDataSplit } from '../evaluation.js';
import { unary } from './call.js';

export interface ResolvedPruningNet {
  pruningnetId: string;
  version: number;
  network: common.NetworkSpec;
  geneCount: number;
  data: ResolvedDataSplit;
}

export interface PruningNetResolver {
  /** NotFoundError (naming the field) for an unknown id or version. */
  resolve(pruningnetId: string, version: number): Promise<ResolvedPruningNet>;
  close?(): void;
}

/** A fixed set of PruningNets (unit tests and single-process use). */
export class StaticPruningNets implements PruningNetResolver {
  constructor(private readonly nets: readonly ResolvedPruningNet[]) {}
  async resolve(pruningnetId: string, version: number): Promise<ResolvedPruningNet> {
    const all = this.nets.filter((n) => n.pruningnetId === pruningnetId);
    if (all.length === 0) {
      throw new InvalidArgumentError('pruningnetId', `unknown PruningNet "${pruningnetId}"`);
    }
    const hit =
      version === 0
        ? all.reduce((a, b) => (b.version > a.version ? b : a))
        : all.find((n) => n.version === version);
    if (!hit) {
      throw new InvalidArgumentError(
        'pruningnetVersion',
        `PruningNet "${pruningnetId}" has no version ${version} (versions: ${all.map((n) => n.version).join(', ')})`,
      );
    }
    return hit;
  }
}

/** Asks the weight generator (ListPruningNets, then GetTraining for the data split). */
export class GrpcPruningNets implements PruningNetResolver {
  private readonly client: weightgen.WeightGeneratorServiceClient;

  constructor(
    address: string,
    credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
    private readonly deadlineMs = 10_000,
    channelOptions: grpc.ChannelOptions = {},
  ) {
    this.client = new weightgen.WeightGeneratorServiceClient(
      address,
      credentials,
      tracedClientOptions({ ...grpcClientOptions(), ...channelOptions }),
    );
  }

  async resolve(pruningnetId: string, version: number): Promise<ResolvedPruningNet> {
    const nets: weightgen.PruningNet[] = [];
    let pageToken = '';
    try {
      do {
        const res = await unary<
          weightgen.ListPruningNetsRequest,
          weightgen.ListPruningNetsResponse
        >(
          this.client,
          this.client.listPruningNets,
          weightgen.ListPruningNetsRequest.fromPartial({ pruningnetId, pageSize: 1000, pageToken }),
          { timeoutMs: this.deadlineMs },
        );
        nets.push(...res.pruningnets.filter((n) => n.pruningnetId === pruningnetId));
        pageToken = res.nextPageToken;
      } while (pageToken);
    } catch (err) {
      throw downstream(err, 'pruningnetId', `PruningNet "${pruningnetId}"`);
    }
    if (nets.length === 0) {
      throw new InvalidArgumentError(
        'pruningnetId',
        `unknown PruningNet "${pruningnetId}" (no checkpoint saved yet, or a wrong id)`,
      );
    }
    const hit =
      version === 0
        ? nets.reduce((a, b) => (b.version > a.version ? b : a))
        : nets.find((n) => n.version === version);
    if (!hit) {
      throw new InvalidArgumentError(
        'pruningnetVersion',
        `PruningNet "${pruningnetId}" has no version ${version} (versions: ${nets
          .map((n) => n.version)
          .sort((a, b) => a - b)
          .join(', ')})`,
      );
    }
    if (!hit.network) {
      throw new UnavailableError(`PruningNet "${pruningnetId}" v${hit.version} has no network`);
    }
    let data: ResolvedDataSplit = { dataset: hit.dataset, seed: 0, validationImages: 0 };
    if (hit.config) {
      // the record carries its training configuration: the split the evaluators hold out
      data = {
        dataset: hit.config.dataset || hit.dataset,
        seed: hit.config.seed,
        validationImages: hit.config.validationImages,
      };
    } else if (hit.jobId) {
      try {
        const res = await unary<weightgen.GetTrainingRequest, weightgen.GetTrainingResponse>(
          this.client,
          this.client.getTraining,
          { jobId: hit.jobId },
          { timeoutMs: this.deadlineMs },
        );
        const cfg = res.job?.config;
        if (cfg) {
          data = {
            dataset: cfg.dataset || hit.dataset,
            seed: cfg.seed,
            validationImages: cfg.validationImages,
          };
        }
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code !== grpc.status.NOT_FOUND) throw downstream(err, 'pruningnetId', 'training job');
      }
    }
    return {
      pruningnetId,
      version: hit.version,
      network: common.NetworkSpec.fromPartial(hit.network),
      geneCount: hit.geneCount,
      data,
    };
  }

  close(): void {
    this.client.close();
  }
}

function downstream(err: unknown, field: string, what: string): Error {
  const code = (err as { code?: number }).code;
  const details = (err as { details?: string }).details ?? String(err);
  if (code === grpc.status.NOT_FOUND) return new NotFoundError(`${what}: ${details}`);
  if (code === grpc.status.INVALID_ARGUMENT) return new InvalidArgumentError(field, details);
  return new UnavailableError(`the weight generator could not be asked about ${what}: ${details}`, {
    cause: err,
  });
}
