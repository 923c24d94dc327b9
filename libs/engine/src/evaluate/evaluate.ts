/**
 * Candidate evaluation (DESIGN 1.5): generate + crop the candidate's weights once, reset
 * the BN statistics and recompute them by training-mode forward passes over `recalBatches`
 * batches of sub-train (the mean of the batch means and of the unbiased batch variances,
 * as PyTorch's BN with momentum=None), then top-1 on the held-out sub-val split in
 * inference mode with every BN folded into its conv (fused conv + bias + activation).
 */
import { countCost, type Encoding, validateEncoding } from '@metaprune/core';
import * as tf from '@tensorflow/tfjs';
import { forwardFolded } from '../pruningnet/forward.js';
import {
  type GeneratedCandidate,
  generateCandidate,
  type PruningNet,
} from '../pruningnet/pruningnet.js';
import { cropTensors } from '../pruningnet/tfstep.js';
import { type BnStats, BnStatsAccumulator, foldBatchNorm } from './bn-stats.js';

export type { BnStats } from './bn-stats.js';

/** Images held in memory (NHWC floats, already preprocessed) with their labels. */
export interface ImageSet {
  images: Float32Array;
  labels: Int32Array;
  count: number;
  imageShape: readonly [number, number, number];
}

export interface EvaluateOptions {
  /** Images for BN recalibration (sub-train); batch k is images [kB, (k+1)B) mod count. */
  recal: ImageSet;
  /** Held-out images (sub-val) for top-1. */
  val: ImageSet;
  /** Recalibration batches (default 100, the reference's). */
  recalBatches?: number;
  /** Batch size of recalibration and validation (default 64). */
  batchSize?: number;
  /** Validate on at most this many batches (default: all of `val`). */
  valBatches?: number;
}

export interface EvaluationResult {
  top1: number;
  macs: number;
  params: number;
  recalBatches: number;
  valImages: number;
  /** Wall time of the evaluation. */
  seconds: number;
}

/** Copies batch k (wrapping around) of a set into `out`; returns its size. */
export function fillBatch(
  set: ImageSet,
  k: number,
  batchSize: number,
  out: { images: Float32Array; labels: Int32Array },
  wrap: boolean,
): number {
  const per = set.imageShape[0] * set.imageShape[1] * set.imageShape[2];
  let n = 0;
  for (let j = 0; j < batchSize; j++) {
    let idx = k * batchSize + j;
    if (idx >= set.count) {
      if (!wrap) break;
      idx %= set.count;
    }
    out.images.set(set.images.subarray(idx * per, (idx + 1) * per), n * per);
    out.labels[n] = set.labels[idx] as number;
    n++;
  }
  return n;
}

/**
 * Recomputes a candidate's BN statistics from scratch over `batches` training-mode forward
 * passes. Returns per layer the mean of batch means and the mean of unbiased batch variances.
 */
export function recalibrate(
  pnet: PruningNet,
  cand: GeneratedCandidate,
  set: ImageSet,
  batches: number,
  batchSize: number,
): BnStats {
  const { layout, net, index } = pnet;
  const acc = new BnStatsAccumulator(net, index);
  const per = set.imageShape[0] * set.imageShape[1] * set.imageShape[2];
  const buf = { images: new Float32Array(batchSize * per), labels: new Int32Array(batchSize) };
  const [h, w, c] = set.imageShape;
  const { ws, biases } = cropTensors(layout, cand.plan, cand.arena, pnet.state.params.small);
  try {
    for (let k = 0; k < batches; k++) {
      const n = fillBatch(set, k, batchSize, buf, true);
      const x = tf.tensor4d(buf.images.subarray(0, n * per), [n, h, w, c]);
      try {
        acc.addBatch(x, ws, biases);
      } finally {
        x.dispose();
      }
    }
  } finally {
    tf.dispose(ws);
    tf.dispose(biases.filter((b): b is tf.Tensor => b != null));
  }
  return acc.result();
}

/**
 * Folds BN statistics into the candidate's crops (see bn-stats.ts). Returns tensors
 * (caller disposes).
 */
export function foldedTensors(
  pnet: PruningNet,
  cand: GeneratedCandidate,
  stats: BnStats,
): { ws: tf.Tensor[]; biases: (tf.Tensor | undefined)[] } {
  const { layout } = pnet;
  const small = pnet.state.params.small;
  const ws: tf.Tensor[] = [];
  const biases: (tf.Tensor | undefined)[] = [];
  cand.plan.forEach((p, i) => {
    const g = layout.gens[i];
    if (!g) {
      const f = layout.fcs.find((x) => x.index === i);
      if (!f) throw new Error(`layer ${i} has no layout`);
      ws.push(tf.tensor(small.subarray(f.wOff, f.wOff + p.size), p.shape));
      biases.push(tf.tensor1d(small.subarray(f.bOff, f.bOff + f.cout)));
      return;
    }
    const mean = stats.mean[i];
    const variance = stats.variance[i];
    if (!mean || !variance)
      throw new Error(`no BN statistics for layer ${layout.net.layers[i]?.name}`);
    const folded = foldBatchNorm(cand.arena.subarray(g.rowOff, g.rowOff + p.size), mean, variance);
    ws.push(tf.tensor(folded.w, p.shape));
    biases.push(tf.tensor1d(folded.bias));
  });
  return { ws, biases };
}

/** Top-1 of the folded candidate on (at most `maxBatches` batches of) a set. */
export function validate(
  pnet: PruningNet,
  cand: GeneratedCandidate,
  stats: BnStats,
  set: ImageSet,
  batchSize: number,
  maxBatches = Number.POSITIVE_INFINITY,
): { correct: number; images: number } {
  const { ws, biases } = foldedTensors(pnet, cand, stats);
  const per = set.imageShape[0] * set.imageShape[1] * set.imageShape[2];
  const [h, w, c] = set.imageShape;
  const buf = { images: new Float32Array(batchSize * per), labels: new Int32Array(batchSize) };
  let correct = 0;
  let images = 0;
  try {
    const batches = Math.min(maxBatches, Math.ceil(set.count / batchSize));
    for (let k = 0; k < batches; k++) {
      const n = fillBatch(set, k, batchSize, buf, false);
      if (n === 0) break;
      const pred = tf.tidy(() => {
        const x = tf.tensor4d(buf.images.subarray(0, n * per), [n, h, w, c]);
        return tf.argMax(forwardFolded(pnet.net, pnet.index, x, ws, biases), 1).dataSync();
      });
      for (let q = 0; q < n; q++) if (pred[q] === buf.labels[q]) correct++;
      images += n;
    }
  } finally {
    tf.dispose(ws);
    tf.dispose(biases.filter((b): b is tf.Tensor => b != null));
  }
  return { correct, images };
}

/** Evaluates one candidate encoding (DESIGN 1.5). */
export function evaluateCandidate(
  pnet: PruningNet,
  encoding: Encoding,
  options: EvaluateOptions,
): EvaluationResult {
  const t0 = performance.now();
  const enc = validateEncoding(pnet.net, encoding);
  const recalBatches = options.recalBatches ?? 100;
  const batchSize = options.batchSize ?? 64;
  if (!(recalBatches >= 1)) throw new RangeError(`recalBatches must be >= 1, got ${recalBatches}`);
  const cand = generateCandidate(pnet, enc);
  const stats = recalibrate(pnet, cand, options.recal, recalBatches, batchSize);
  const { correct, images } = validate(
    pnet,
    cand,
    stats,
    options.val,
    batchSize,
    options.valBatches,
  );
  const cost = countCost(pnet.net, enc);
  return {
    top1: images > 0 ? correct / images : 0,
    macs: cost.macs,
    params: cost.params,
    recalBatches,
    valImages: images,
    seconds: (performance.now() - t0) / 1000,
  };
}
