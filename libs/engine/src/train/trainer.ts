/**
 * PruningNet training by stochastic structure sampling (DESIGN 1.3): every step draws a
 * random encoding (a pure function of (seed, global step)), generates + crops the weights,
 * runs forward + backward of the batch, and updates the generators with SGD momentum 0.9
 * under a learning rate decayed linearly to 0 per step; label smoothing 0.1; no weight
 * decay on the generators.
 *
 * Checkpoints every epoch (and when stopped through `signal`) hold everything a resume needs
 * (parameters, momentum, lazily-updated row counters, position); the data order is a pure
 * function of (epoch, step) (the batch iterator's contract) and so is the structure drawn,
 * so a resumed run continues exactly as an uninterrupted one.
 */
import type { Encoding } from '@metaprune/core';
import {
  type CheckpointManifest,
  loadCheckpoint,
  saveCheckpoint,
  type TrainPosition,
} from '../checkpoint/checkpoint.js';
import { type PruningNet, sampleEncoding } from '../pruningnet/pruningnet.js';
import { LABEL_SMOOTHING } from '../pruningnet/tfstep.js';
import { LocalStepper, type Stepper } from './local.js';
import { linearOptim } from './schedule.js';

/** One batch as the data library's BatchIterator returns it (NHWC floats). */
export interface TrainBatch {
  images: Float32Array;
  labels: Int32Array;
  size: number;
  shape: readonly [number, number, number, number];
}

/**
 * Batches addressable by (epoch, step), e.g. @metaprune/data's BatchIterator, or its
 * ImageFolderStream (asynchronous: images decoded on demand, bounded memory).
 */
export interface TrainData {
  readonly batchesPerEpoch: number;
  batch(epoch: number, step: number): TrainBatch | Promise<TrainBatch>;
}

export interface TrainProgress {
  phase: 'step' | 'epoch' | 'checkpoint' | 'stopped';
  epoch: number;
  epochs: number;
  /** Steps done in this epoch. */
  step: number;
  stepsPerEpoch: number;
  globalStep: number;
  totalSteps: number;
  /** This step's loss (phase 'step'). */
  stepLoss: number;
  /** Running mean loss and batch-statistics accuracy over the epoch so far. */
  loss: number;
  accuracy: number;
  lr: number;
  imagesPerSec: number;
  etaSec: number;
  encoding?: Encoding;
  checkpoint?: string;
}

export interface EpochSummary {
  epoch: number;
  loss: number;
  accuracy: number;
  images: number;
  seconds: number;
}

export interface TrainConfig {
  epochs: number;
  stepsPerEpoch: number;
  lr: number;
  momentum: number;
  classifierLrScale: number;
  warmupSteps: number;
  minScaleId: number;
  labelSmoothing: number;
  seed: number;
  /** Data-parallel shards per step (1: in-process). */
  shards: number;
}

export interface TrainOptions {
  pnet: PruningNet;
  data: TrainData;
  epochs: number;
  /** Informational (the data decides); checked against the first batch when given. */
  batchSize?: number;
  /**
   * Initial learning rate of the generators (default 0.4), decayed linearly to 0 over all
   * steps. A generated weight moves ~(1 + |h|^2) times faster than its generator's
   * parameters, and BN makes conv weights scale-free, so the generators tolerate (and on
   * Fashion-MNIST at batch 64 learn fastest with) a large rate.
   */
  lr?: number;
  momentum?: number;
  /**
   * The classifier's learning rate relative to `lr` (default 0.05). The classifier is an
   * ordinary FC over 1280 non-negative pooled features: at the generators' rate its logits
   * jump by several units per step with 10 classes and the loss diverges (measured).
   */
  classifierLrScale?: number;
  /** Linear learning-rate warm-up steps (default 0). */
  warmupSteps?: number;
  /**
   * Smallest scale id the structure sampler draws (default 0: uniform over the whole space,
   * as the reference). Tiny test networks, whose narrowest choices leave 1-channel layers,
   * train more sensibly with a floor.
   */
  minScaleId?: number;
  /** Seed of the structure sampling (default: the PruningNet's seed). */
  seed?: number;
  /** Use only the first N batches of every epoch (default: all). */
  stepsPerEpoch?: number;
  onProgress?: (p: TrainProgress) => void;
  /** Write a checkpoint here after every epoch (and when stopped). */
  checkpointDir?: string;
  /** Checkpoints to keep (default 1). */
  keepCheckpoints?: number;
  /** Continue from this checkpoint (directory, or a parent with latest.json). */
  resumeFrom?: string;
  signal?: AbortSignal;
  /**
   * Step executor. Default: in-process. A ParallelStepper (worker threads) must have been
   * created for this PruningNet with shared memory.
   */
  stepper?: Stepper;
  /** Emit a 'step' progress event every N steps (default 1). */
  progressEvery?: number;
}

export const DEFAULT_LR = 0.4;
export const DEFAULT_CLASSIFIER_LR_SCALE = 0.05;

export interface TrainResult {
  position: TrainPosition;
  history: EpochSummary[];
  /** True when stopped by `signal` before the last epoch ended. */
  stopped: boolean;
  checkpoint?: string;
}

interface Partial {
  lossSum: number;
  correct: number;
  images: number;
  seconds: number;
}

interface Extra {
  history: EpochSummary[];
  partial: Partial | null;
}

function checkCompatible(saved: TrainConfig, now: TrainConfig, file: string): void {
  for (const k of Object.keys(now) as (keyof TrainConfig)[]) {
    if (saved[k] !== now[k]) {
      throw new Error(
        `cannot resume from ${file}: ${k} was ${String(saved[k])}, now ${String(now[k])} (use the same settings to continue exactly)`,
      );
    }
  }
}

export async function trainPruningNet(options: TrainOptions): Promise<TrainResult> {
  const { pnet, data, epochs } = options;
  if (!Number.isInteger(epochs) || epochs < 1)
    throw new RangeError(`epochs must be >= 1, got ${epochs}`);
  const stepsPerEpoch = Math.min(
    options.stepsPerEpoch ?? data.batchesPerEpoch,
    data.batchesPerEpoch,
  );
  if (!(stepsPerEpoch >= 1)) throw new RangeError('the data has no batches');
  const stepper = options.stepper ?? null;
  const config: TrainConfig = {
    epochs,
    stepsPerEpoch,
    lr: options.lr ?? DEFAULT_LR,
    momentum: options.momentum ?? 0.9,
    classifierLrScale: options.classifierLrScale ?? DEFAULT_CLASSIFIER_LR_SCALE,
    warmupSteps: options.warmupSteps ?? 0,
    minScaleId: options.minScaleId ?? 0,
    labelSmoothing: LABEL_SMOOTHING,
    seed: options.seed ?? pnet.seed,
    shards: stepper?.shards ?? 1,
  };
  const totalSteps = epochs * stepsPerEpoch;
  const optim = linearOptim({
    lr: config.lr,
    totalSteps,
    momentum: config.momentum,
    warmupSteps: config.warmupSteps,
    classifierLrScale: config.classifierLrScale,
  });

  let position: TrainPosition = { epoch: 0, step: 0, globalStep: 0 };
  let history: EpochSummary[] = [];
  let partial: Partial | null = null;
  if (options.resumeFrom) {
    const loaded = await loadCheckpoint<TrainConfig>(options.resumeFrom, { into: pnet });
    checkCompatible(loaded.manifest.config, config, loaded.dir);
    position = loaded.manifest.position;
    const extra = loaded.manifest.extra as Extra | null;
    history = extra?.history ?? [];
    partial = extra?.partial ?? null;
  } else if (pnet.step !== 0) {
    throw new Error(
      `this PruningNet has already been trained ${pnet.step} steps; pass resumeFrom to continue`,
    );
  }
  pnet.optim = optim;
  const exec: Stepper = stepper ?? new LocalStepper(pnet, optim);
  exec.setOptim?.(optim);

  const save = async (pos: TrainPosition, part: Partial | null): Promise<string | undefined> => {
    if (!options.checkpointDir) return undefined;
    const extra: Extra = { history, partial: part };
    return saveCheckpoint(options.checkpointDir, pnet, pos, {
      config,
      extra,
      keep: options.keepCheckpoints,
    });
  };

  const every = Math.max(1, options.progressEvery ?? 1);
  const runStart = performance.now();
  const startGlobal = position.globalStep;
  let runImages = 0;
  let lastCheckpoint: string | undefined;
  try {
    for (let epoch = position.epoch; epoch < epochs; epoch++) {
      const startStep = epoch === position.epoch ? position.step : 0;
      const acc: Partial =
        startStep > 0 && partial
          ? { ...partial }
          : { lossSum: 0, correct: 0, images: 0, seconds: 0 };
      const epochStart = performance.now() - acc.seconds * 1000;
      for (let step = startStep; step < stepsPerEpoch; step++) {
        const t = epoch * stepsPerEpoch + step;
        if (options.signal?.aborted) {
          acc.seconds = (performance.now() - epochStart) / 1000;
          const pos = { epoch, step, globalStep: t };
          lastCheckpoint = await save(pos, acc);
          options.onProgress?.({
            ...progressBase(epoch, step, t, acc),
            phase: 'stopped',
            checkpoint: lastCheckpoint,
          });
          return { position: pos, history, stopped: true, checkpoint: lastCheckpoint };
        }
        if (pnet.step !== t)
          throw new Error(`internal: PruningNet at step ${pnet.step}, expected ${t}`);
        const b = await data.batch(epoch, step);
        if (step === startStep && options.batchSize && b.size > options.batchSize) {
          throw new RangeError(`batch of ${b.size} images exceeds batchSize ${options.batchSize}`);
        }
        const enc = sampleEncoding(pnet.net, config.seed, t, config.minScaleId);
        const r = await exec.step(t, enc, {
          images: b.images,
          labels: b.labels,
          n: b.size,
          imageShape: [b.shape[1], b.shape[2], b.shape[3]],
        });
        pnet.step = t + 1;
        acc.lossSum += r.loss * r.n;
        acc.correct += r.correct;
        acc.images += r.n;
        runImages += r.n;
        if (options.onProgress && ((step + 1) % every === 0 || step + 1 === stepsPerEpoch)) {
          options.onProgress({
            ...progressBase(epoch, step + 1, t + 1, acc),
            phase: 'step',
            stepLoss: r.loss,
            encoding: enc,
          });
        }
      }
      pnet.flush();
      acc.seconds = (performance.now() - epochStart) / 1000;
      history.push({
        epoch,
        loss: acc.lossSum / Math.max(1, acc.images),
        accuracy: acc.correct / Math.max(1, acc.images),
        images: acc.images,
        seconds: acc.seconds,
      });
      const pos = { epoch: epoch + 1, step: 0, globalStep: (epoch + 1) * stepsPerEpoch };
      options.onProgress?.({ ...progressBase(epoch + 1, 0, pos.globalStep, acc), phase: 'epoch' });
      lastCheckpoint = await save(pos, null);
      if (lastCheckpoint) {
        options.onProgress?.({
          ...progressBase(epoch + 1, 0, pos.globalStep, acc),
          phase: 'checkpoint',
          checkpoint: lastCheckpoint,
        });
      }
      position = pos;
    }
  } finally {
    if (!stepper) await exec.close();
  }
  return { position, history, stopped: false, checkpoint: lastCheckpoint };

  function progressBase(
    epoch: number,
    step: number,
    globalStep: number,
    acc: Partial,
  ): TrainProgress {
    const elapsed = (performance.now() - runStart) / 1000;
    const ips = elapsed > 0 ? runImages / elapsed : 0;
    const remainingSteps = totalSteps - globalStep;
    const done = globalStep - startGlobal;
    const perStep = done > 0 ? elapsed / done : 0;
    return {
      phase: 'step',
      epoch,
      epochs,
      step,
      stepsPerEpoch,
      globalStep,
      totalSteps,
      stepLoss: Number.NaN,
      loss: acc.lossSum / Math.max(1, acc.images),
      accuracy: acc.correct / Math.max(1, acc.images),
      lr: optim.lrAt(Math.min(globalStep, totalSteps - 1)),
      imagesPerSec: ips,
      etaSec: remainingSteps * perStep,
    };
  }
}

export type { CheckpointManifest };
