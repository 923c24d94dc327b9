/**
 * Retraining a plain pruned network (DESIGN 1.6): the encoding's network trained from
 * scratch (or from given weights) with SGD + momentum, a cosine or linear learning-rate
 * decay, label smoothing, light augmentation and weight decay on kernels; then top-1 on
 * the test set.
 *
 * The model trained is the very graph that is exported: it takes native images in [0, 1]
 * and pads / resizes and normalises them itself. The batch iterator therefore delivers
 * [0, 1] images at the native size (augmented for training: shift + flip, zero fill).
 */
import type { Encoding, Network } from '@metaprune/core';
import { countCost, validateEncoding } from '@metaprune/core';
import {
  type AugmentOptions,
  BatchIterator,
  computeChannelStats,
  type PreprocessConfig,
  preprocessConfig,
  type Subset,
} from '@metaprune/data';
import * as tf from '@tensorflow/tfjs';
import { useFastBatchNorm } from './fast-bn.js';
import { buildPlainModel, type PlainWeights } from './model.js';
import { type GradientMode, PlainGradients } from './step.js';

export interface RetrainData {
  /** Images trained on (e.g. the whole training set, or sub-train). */
  train: Subset;
  /** Images the final top-1 is measured on (the test set). */
  test: Subset;
  /**
   * The model's input stage. Default: normalisation by the train subset's per-channel
   * statistics, padding (or resizing) to the network's input size, and replication to
   * its input channels.
   */
  preprocess?: PreprocessConfig;
}

export interface RetrainProgress {
  phase: 'train' | 'eval';
  epoch: number;
  epochs: number;
  /** Steps done in this epoch (train) or images evaluated (eval). */
  step: number;
  steps: number;
  /** Overall fraction done of the training steps (train) or of the evaluation (eval). */
  fraction: number;
  /** Train: running mean loss and top-1 of this epoch so far. */
  loss?: number;
  top1?: number;
  lr?: number;
  imagesPerSec: number;
  /** Estimated seconds left for this phase. */
  etaSeconds: number;
}

export interface EpochSummary {
  epoch: number;
  loss: number;
  top1: number;
  lr: number;
  seconds: number;
  /** Test top-1 after this epoch, when `evalEveryEpoch`. */
  test_top1?: number;
}

export interface RetrainOptions {
  net: Network;
  encoding: Encoding;
  data: RetrainData;
  epochs: number;
  /** Default 64. */
  batchSize?: number;
  /** Peak learning rate (default 0.05 at batch 64; scale linearly with the batch). */
  lr?: number;
  /** Default `cosine`. */
  schedule?: 'cosine' | 'linear';
  /** Linear warm-up steps from 0 to `lr` (default: a fifth of the first epoch, at most 200). */
  warmupSteps?: number;
  /** Default 0.9. */
  momentum?: number;
  /** L2 on conv / dense kernels (not BN, not biases). Default 4e-5 (the reference's). */
  weightDecay?: number;
  /** Default 0.1. */
  labelSmoothing?: number;
  /** Default true: shift by up to 1/8 of the image and horizontal flip. */
  augment?: boolean | AugmentOptions;
  /** Seeds the initialisation, shuffling and augmentation. Default 0. */
  seed?: number;
  /** Start from these weights instead of scratch (e.g. the PruningNet's). */
  init?: 'scratch' | PlainWeights;
  /** Only use the first N images of an epoch's order (quick runs). */
  maxTrainImages?: number;
  /**
   * How gradients are computed: `manual` (default; the hand-written backward pass, ~5x
   * faster on wasm) or `autodiff` (tfjs' tape; the reference). See plain/step.ts.
   */
  gradients?: GradientMode;
  /** Measure test top-1 after every epoch, not only at the end. Default false. */
  evalEveryEpoch?: boolean;
  evalBatchSize?: number;
  onProgress?: (p: RetrainProgress) => void;
  onEpoch?: (e: EpochSummary) => void;
  signal?: AbortSignal;
}

export interface RetrainResult {
  test_top1: number;
  macs: number;
  params: number;
  epochs: EpochSummary[];
  seconds: number;
  /** Test images the top-1 is over. */
  test_images: number;
}

export interface RetrainOutput {
  /** The trained model (logits output; takes native images). The caller disposes it. */
  model: tf.LayersModel;
  /** The input stage it contains (record it in the export metadata). */
  preprocess: PreprocessConfig;
  result: RetrainResult;
}

/**
 * SGD with momentum, PyTorch's formulation (buf = m * buf + g + wd * w; w -= lr * buf; the
 * first step's buffer is the gradient). Our own so that every tensor it holds is freed by
 * `dispose()` (tfjs 4.22's MomentumOptimizer leaks its learning-rate scalar).
 */
export class SgdMomentum {
  private readonly buffers = new Map<string, tf.Variable>();

  constructor(readonly momentum: number) {}

  step(
    vars: readonly tf.Variable[],
    grads: tf.NamedTensorMap,
    lr: number,
    weightDecayOf: (v: tf.Variable) => number,
  ): void {
    tf.tidy(() => {
      for (const v of vars) {
        let g = grads[v.name];
        if (!g) continue;
        const wd = weightDecayOf(v);
        if (wd > 0) g = tf.add(g, tf.mul(v, wd));
        let buf = this.buffers.get(v.name);
        if (!buf) {
          buf = tf.variable(g, false, `${v.name}/momentum`);
          this.buffers.set(v.name, buf);
        } else {
          buf.assign(tf.add(tf.mul(buf, this.momentum), g));
        }
        v.assign(tf.sub(v, tf.mul(buf, lr)));
      }
    });
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

function abortIfNeeded(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw signal.reason instanceof Error ? signal.reason : new Error('retrain aborted');
  }
}

/** The learning rate at step `t` of `total` (warm-up, then cosine or linear decay to 0). */
export function learningRateAt(
  t: number,
  total: number,
  lr: number,
  schedule: 'cosine' | 'linear',
  warmup: number,
): number {
  if (warmup > 0 && t < warmup) return (lr * (t + 1)) / warmup;
  const span = Math.max(1, total - warmup);
  const p = Math.min(1, (t - warmup) / span);
  return schedule === 'cosine' ? 0.5 * lr * (1 + Math.cos(Math.PI * p)) : lr * (1 - p);
}

/** The default input stage for a network trained on `train`. */
export function defaultPreprocess(net: Network, train: Subset): PreprocessConfig {
  return preprocessConfig(train.imageShape, {
    stats: computeChannelStats(train),
    size: net.spec.inputSize,
    channels: net.spec.inputChannels,
  });
}

/**
 * Top-1 of `model` (native [0, 1] images in, logits or probabilities out) on `subset`.
 * `preprocess` must be the identity config of the subset's images (scaling to [0, 1]).
 */
export async function evaluatePlain(
  model: { predict(x: tf.Tensor): tf.Tensor | tf.Tensor[] },
  subset: Subset,
  options: {
    batchSize?: number;
    signal?: AbortSignal;
    onProgress?: (done: number, total: number, imagesPerSec: number) => void;
  } = {},
): Promise<number> {
  const it = new BatchIterator(subset, {
    batchSize: options.batchSize ?? 256,
    shuffle: false,
    preprocess: preprocessConfig(subset.imageShape),
  });
  let correct = 0;
  let done = 0;
  const total = subset.indices.length;
  const t0 = performance.now();
  for (const batch of it.epoch(0)) {
    abortIfNeeded(options.signal);
    const hits = tf.tidy(() => {
      const x = tf.tensor4d(batch.images, batch.shape);
      const logits = model.predict(x) as tf.Tensor;
      const labels = tf.tensor1d(batch.labels, 'int32');
      return tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), labels), 'int32'));
    });
    correct += (await hits.data())[0] as number;
    hits.dispose();
    done += batch.size;
    options.onProgress?.(done, total, (done * 1000) / (performance.now() - t0));
    await yieldToLoop();
  }
  return total > 0 ? correct / total : 0;
}

/**
 * Trains the plain network of `encoding` and reports its test top-1 with its MACs and
 * parameters (core's analytic counts, which the model matches). Returns the model.
 * Call `initBackend()` first: on wasm, training needs the engine's gradient kernels.
 */
export async function retrainPlain(options: RetrainOptions): Promise<RetrainOutput> {
  const { net, data } = options;
  const encoding = validateEncoding(net, options.encoding);
  const epochs = options.epochs;
  if (!Number.isInteger(epochs) || epochs < 0)
    throw new RangeError(`epochs must be a non-negative integer, got ${epochs}`);
  const batchSize = options.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  const lr = options.lr ?? 0.05 * (batchSize / 64);
  const schedule = options.schedule ?? 'cosine';
  const momentum = options.momentum ?? 0.9;
  const weightDecay = options.weightDecay ?? 4e-5;
  const labelSmoothing = options.labelSmoothing ?? 0.1;
  const seed = options.seed ?? 0;
  const numClasses = net.spec.numClasses;
  if (data.train.numClasses !== numClasses) {
    throw new RangeError(
      `the data has ${data.train.numClasses} classes, the network ${numClasses}`,
    );
  }
  const preprocess = data.preprocess ?? defaultPreprocess(net, data.train);
  if (preprocess.inputShape.join('x') !== data.train.imageShape.join('x')) {
    throw new RangeError(
      `preprocess is for ${preprocess.inputShape.join('x')} images, the data has ${data.train.imageShape.join('x')}`,
    );
  }
  const cost = countCost(net, encoding);
  const t0 = performance.now();

  const model = buildPlainModel(net, encoding, {
    init: options.init ?? 'scratch',
    inputPreprocess: preprocess,
    seed,
  });
  const optimizer = new SgdMomentum(momentum);
  const gradients = new PlainGradients(model, net, labelSmoothing, options.gradients ?? 'manual');
  // The tape path trains BN through the engine's fused kernel (same maths, ~2x faster).
  const fastBn =
    gradients.mode === 'autodiff' ? useFastBatchNorm(model) : { restore: () => undefined };
  try {
    const train = new BatchIterator(data.train, {
      batchSize,
      seed,
      shuffle: true,
      dropLast: true,
      augment: options.augment ?? true,
      preprocess: preprocessConfig(data.train.imageShape),
    });
    const stepsPerEpoch = Math.max(
      1,
      Math.floor(
        Math.min(data.train.indices.length, options.maxTrainImages ?? Infinity) / batchSize,
      ),
    );
    if (epochs > 0 && train.batchesPerEpoch < 1) {
      throw new RangeError(
        `the training set has fewer images (${data.train.indices.length}) than a batch (${batchSize})`,
      );
    }
    const steps = Math.min(stepsPerEpoch, train.batchesPerEpoch);
    const totalSteps = epochs * steps;
    const warmup = options.warmupSteps ?? Math.min(200, Math.floor(steps / 5));

    // Weight decay applies to the kernels only (not BN, not biases).
    const vars = gradients.variables;
    const decayed = new Set(
      model.trainableWeights
        .filter((w) => /kernel$/.test(w.originalName))
        .map((w) => (w.read() as tf.Variable).name),
    );
    const history: EpochSummary[] = [];
    let globalStep = 0;
    for (let epoch = 0; epoch < epochs; epoch++) {
      const te = performance.now();
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let lrNow = lr;
      for (let step = 0; step < steps; step++) {
        abortIfNeeded(options.signal);
        const batch = train.batch(epoch, step);
        lrNow = learningRateAt(globalStep, totalSteps, lr, schedule, warmup);
        const { loss: l, correct: hits } = tf.tidy(() => {
          const { loss, correct, grads } = gradients.compute(batch);
          optimizer.step(vars, grads, lrNow, (v) => (decayed.has(v.name) ? weightDecay : 0));
          return { loss, correct };
        });
        if (!Number.isFinite(l))
          throw new Error(
            `retrain diverged: loss ${l} at epoch ${epoch + 1} step ${step + 1} (lower lr?)`,
          );
        lossSum += l * batch.size;
        correct += hits;
        seen += batch.size;
        globalStep++;
        const elapsed = (performance.now() - te) / 1000;
        const ips = seen / Math.max(elapsed, 1e-9);
        options.onProgress?.({
          phase: 'train',
          epoch: epoch + 1,
          epochs,
          step: step + 1,
          steps,
          fraction: globalStep / totalSteps,
          loss: lossSum / seen,
          top1: correct / seen,
          lr: lrNow,
          imagesPerSec: ips,
          etaSeconds: ((totalSteps - globalStep) * batchSize) / Math.max(ips, 1e-9),
        });
        await yieldToLoop();
      }
      const summary: EpochSummary = {
        epoch: epoch + 1,
        loss: seen > 0 ? lossSum / seen : 0,
        top1: seen > 0 ? correct / seen : 0,
        lr: lrNow,
        seconds: (performance.now() - te) / 1000,
      };
      if (options.evalEveryEpoch && epoch < epochs - 1) {
        summary.test_top1 = await evaluate(model, data.test, options, epoch + 1, epochs);
      }
      history.push(summary);
      options.onEpoch?.(summary);
    }
    fastBn.restore();
    const test_top1 = await evaluate(model, data.test, options, epochs, epochs);
    const last = history[history.length - 1];
    if (last) last.test_top1 = test_top1;
    return {
      model,
      preprocess,
      result: {
        test_top1,
        macs: cost.macs,
        params: cost.params,
        epochs: history,
        seconds: (performance.now() - t0) / 1000,
        test_images: data.test.indices.length,
      },
    };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    fastBn.restore();
    optimizer.dispose();
  }
}

function evaluate(
  model: tf.LayersModel,
  test: Subset,
  options: RetrainOptions,
  epoch: number,
  epochs: number,
): Promise<number> {
  return evaluatePlain(model, test, {
    batchSize: options.evalBatchSize ?? 256,
    ...(options.signal ? { signal: options.signal } : {}),
    onProgress: (done, total, ips) =>
      options.onProgress?.({
        phase: 'eval',
        epoch,
        epochs,
        step: done,
        steps: total,
        fraction: done / total,
        imagesPerSec: ips,
        etaSeconds: (total - done) / Math.max(ips, 1e-9),
      }),
  });
}
