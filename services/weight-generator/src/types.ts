/**
 * The narrow seams between the service (gRPC, NATS, jobs, checkpoints) and the tensor
 * engine. `engine-adapter.ts` implements them with @metaprune/engine; everything else in
 * this package only knows these types.
 */
import type { Encoding, NetworkSpec } from '@metaprune/core';

/** A validated training configuration with every default filled in (JSON-serialisable). */
export interface ResolvedTrainingConfig {
  /** Fully resolved core network spec. */
  network: NetworkSpec;
  /** "fashion-mnist", "cifar10", "dir:<relative path>" or "imagefolder:<relative path>" as requested. */
  dataset: string;
  /** File format of the dataset directory. */
  dataFormat: 'fashion-mnist' | 'cifar10' | 'imagefolder';
  /** Absolute directory the dataset files are read from. */
  dataDir: string;
  epochs: number;
  batchSize: number;
  learningRate: number;
  momentum: number;
  labelSmoothing: number;
  weightDecay: number;
  seed: number;
  /** 0 = whole split. */
  maxStepsPerEpoch: number;
  /** Images held out as sub-val (never 0 here: the default is filled in). */
  validationImages: number;
  /** Hidden width of single-input generator MLPs. */
  hiddenUnits: number;
  /**
   * The RQ5 ablation: generators see a constant input (one shared tensor per layer,
   * cropped per candidate). Absent in records of older versions: false.
   */
  noWeightPrediction?: boolean;
  /**
   * Data-parallel training threads, fixed when the job is accepted (a resume must use the
   * same number to continue exactly). Absent: the engine adapter's default.
   */
  workers?: number;
}

/** One progress report of a running training (engine → service). */
export interface TrainerProgress {
  /** 1-based epoch in progress. */
  epoch: number;
  epochs: number;
  /** 1-based step within the epoch. */
  step: number;
  stepsPerEpoch: number;
  /** Mean loss / accuracy since the previous report. */
  loss: number;
  accuracy: number;
  learningRate: number;
  imagesPerSecond: number;
  etaSeconds: number;
  /** Set at an epoch end when measured. */
  validationAccuracy?: number;
}

/** A complete checkpoint the engine has written. */
export interface TrainerCheckpoint {
  /** Directory holding the checkpoint's files (the service copies them away). */
  dir: string;
  /** Epochs fully trained at this checkpoint. */
  epochsTrained: number;
  /** True at an epoch end (published as a new version); false for a mid-epoch pause. */
  epochComplete: boolean;
  validationAccuracy?: number;
}

export type StopReason = 'cancel' | 'pause';

export interface TrainerRequest {
  jobId: string;
  pruningnetId: string;
  config: ResolvedTrainingConfig;
  /** Scratch directory owned by this job (kept across restarts). */
  workDir: string;
  /** Continue this job exactly from a checkpoint of its own. */
  resumeFrom?: string;
  /** Start a new training run from the weights of this checkpoint (continue a PruningNet). */
  initFrom?: string;
  /** tfjs backend ("auto" = the engine's order). */
  backend: string;
}

export interface TrainerHooks {
  /** Aborted with a StopReason as `signal.reason` to stop; the trainer checkpoints first. */
  signal: AbortSignal;
  onProgress(progress: TrainerProgress): void;
  /** Resolves once the checkpoint's files have been copied and may be overwritten. */
  onCheckpoint(checkpoint: TrainerCheckpoint): Promise<void>;
}

export type TrainerOutcome = { status: 'completed' } | { status: 'stopped' };

/** Trains a PruningNet (runs inside the training process). */
export interface Trainer {
  train(request: TrainerRequest, hooks: TrainerHooks): Promise<TrainerOutcome>;
}

/** One generated, cropped tensor in tfjs layout (see GenerateWeightsResponse). */
export interface NamedTensor {
  name: string;
  shape: number[];
  values: Float32Array;
}

/** A loaded PruningNet checkpoint that generates weights. */
export interface LoadedPruningNet {
  /** Generated + cropped tensors of a candidate, in layer order. */
  generate(encoding: Encoding): Promise<NamedTensor[]>;
  dispose(): void;
}

/** What the service needs from the engine in its own process. */
export interface WeightEngine {
  /** Loads a verified checkpoint directory. */
  load(dir: string, config: ResolvedTrainingConfig): Promise<LoadedPruningNet>;
}

export interface ExportRequest {
  /** Verified checkpoint directory. */
  checkpointDir: string;
  config: ResolvedTrainingConfig;
  encoding: Encoding;
  /** Directory to write model.json and its weights into (created). */
  outDir: string;
  /** Recorded in the model's userDefinedMetadata. */
  metadata: Record<string, unknown>;
  /** Sub-train batches that recompute the BN statistics. */
  recalBatches: number;
  backend: string;
}

/**
 * Materialises a candidate as a plain tfjs layers model. Long, synchronous tensor work
 * (BN recalibration), so the service runs it outside its event loop (a child process).
 */
export interface Exporter {
  export(request: ExportRequest, signal?: AbortSignal): Promise<void>;
}
