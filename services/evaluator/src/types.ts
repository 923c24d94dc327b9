import type { Encoding, Network } from '@metaprune/core';
import type { common, evaluation, weightgen } from '@metaprune/proto';
import type { ResolvedDataSplit, ResolvedEvaluationSettings } from '@metaprune/wire';

/** Generated, cropped weights of one candidate, as streamed by GenerateWeights. */
export interface GeneratedWeights {
  readonly header: weightgen.WeightsHeader;
  /** Tensors by name, in stream (layer) order. */
  readonly tensors: ReadonlyMap<string, common.Tensor>;
  readonly bytes: number;
}

export interface WeightRequest {
  pruningnetId: string;
  version: number;
  encoding: Encoding;
}

/** Where an evaluator gets a candidate's weights (the weight generator over gRPC in production). */
export interface WeightSource {
  generate(req: WeightRequest, signal?: AbortSignal): Promise<GeneratedWeights>;
  close(): void;
}

export interface EvaluationInput {
  readonly job: evaluation.EvaluationJob;
  readonly network: Network;
  readonly encoding: Encoding;
  readonly settings: ResolvedEvaluationSettings;
  readonly data: ResolvedDataSplit;
  readonly weights: GeneratedWeights;
  /** Aborted when the evaluator shuts down: stop between batches and throw. */
  readonly signal: AbortSignal;
  /** Reports progress (phase RECALIBRATION / VALIDATION, fraction of that phase done). */
  readonly onPhase: (phase: evaluation.EvaluationPhase, progress: number) => void;
}

export interface EvaluationScore {
  /** Top-1 on the held-out split, in [0, 1]. */
  readonly top1: number;
  /** Mean cross-entropy on the held-out split. */
  readonly loss: number;
  /** Images scored. */
  readonly images: number;
  readonly recalibrationMs: number;
  readonly validationMs: number;
  readonly measuredLatencyMs?: number;
}

/**
 * Scores one candidate from its generated weights (DESIGN 1.5): reset BN statistics,
 * recompute them over `settings.recalibrationBatches` sub-train batches in training mode,
 * then top-1 over `settings.validationImages` sub-val images. Must be deterministic in its
 * input (the controller memoises on it). The engine provides the production one.
 */
export interface CandidateEvaluator {
  evaluate(input: EvaluationInput): Promise<EvaluationScore>;
  /** Loads what the first evaluation would otherwise load (datasets, backend). Optional. */
  warmUp?(): Promise<void>;
  close?(): Promise<void> | void;
}

/** An evaluation that cannot succeed however often it is retried. */
export class PermanentEvaluationError extends Error {
  override readonly name = 'PermanentEvaluationError';
  constructor(
    readonly reason: evaluation.FailureReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
