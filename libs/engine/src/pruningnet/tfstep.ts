/**
 * The tensor side of a PruningNet step: the forward + backward of one data shard through
 * the candidate's cropped weights (read from an arena), writing the gradient of every crop
 * into a gradient arena. The generators' own backward happens outside, on plain arrays.
 */
import type { Layer, Network } from '@metaprune/core';
import * as tf from '@tensorflow/tfjs';
import { trainPass } from './backprop.js';
import { forwardTrain } from './forward.js';
import type { PruningNetLayout } from './layout.js';
import type { LayerPlan } from './step.js';

export const LABEL_SMOOTHING = 0.1;

export interface ShardBatch {
  /** n * h * w * c floats, NHWC. */
  images: Float32Array;
  labels: Int32Array;
  n: number;
  /** [h, w, c]. */
  imageShape: readonly [number, number, number];
}

export interface ShardResult {
  /** Mean label-smoothed cross-entropy over the shard. */
  loss: number;
  /** Images whose argmax logit is the label (batch-statistics BN). */
  correct: number;
}

/** Tensors of every layer's crop (generators from `arena`, classifiers from `small`). */
export function cropTensors(
  layout: PruningNetLayout,
  plan: readonly LayerPlan[],
  arena: Float32Array,
  small: Float32Array,
): { ws: tf.Tensor[]; biases: (tf.Tensor | undefined)[] } {
  const ws: tf.Tensor[] = [];
  const biases: (tf.Tensor | undefined)[] = [];
  plan.forEach((p, i) => {
    const g = layout.gens[i];
    if (g) {
      ws.push(tf.tensor(arena.subarray(g.rowOff, g.rowOff + p.size), p.shape));
      biases.push(undefined);
      return;
    }
    const f = layout.fcs.find((x) => x.index === i);
    if (!f) throw new Error(`layer ${i} has neither a generator nor a classifier layout`);
    ws.push(tf.tensor(small.subarray(f.wOff, f.wOff + p.size), p.shape));
    biases.push(tf.tensor1d(small.subarray(f.bOff, f.bOff + f.cout)));
  });
  return { ws, biases };
}

export function inputTensor(b: ShardBatch): tf.Tensor4D {
  const [h, w, c] = b.imageShape;
  return tf.tensor4d(b.images.subarray(0, b.n * h * w * c), [b.n, h, w, c]);
}

function writeGrads(
  layout: PruningNetLayout,
  plan: readonly LayerPlan[],
  gradW: readonly tf.Tensor[],
  gradB: readonly (tf.Tensor | undefined)[],
  gradArena: Float32Array,
): void {
  plan.forEach((p, i) => {
    const g = layout.gens[i];
    const data = (gradW[i] as tf.Tensor).dataSync() as Float32Array;
    if (g) {
      gradArena.set(data, g.rowOff);
      return;
    }
    const fc = layout.fcs.find((x) => x.index === i);
    if (!fc) return;
    gradArena.set(data.subarray(0, p.size), fc.gradOff);
    const b = gradB[i];
    if (b) gradArena.set(b.dataSync() as Float32Array, fc.gradOff + fc.cinMax * fc.cout);
  });
}

/**
 * Forward + backward of one shard; writes d(mean loss)/d(crop) of every layer into
 * `gradArena` (generators at their row offset, classifiers at `gradOff`). `autodiff`
 * differentiates forwardTrain with tfjs' tape (the reference the hand-written backward
 * pass is tested against); the default is the hand-written pass.
 */
export function trainShard(
  layout: PruningNetLayout,
  index: Map<Layer, number>,
  plan: readonly LayerPlan[],
  arena: Float32Array,
  small: Float32Array,
  batch: ShardBatch,
  gradArena: Float32Array,
  mode: 'manual' | 'autodiff' = 'manual',
): ShardResult {
  if (mode === 'manual') {
    return tf.tidy(() => {
      const { ws, biases } = cropTensors(layout, plan, arena, small);
      const x = inputTensor(batch);
      const r = trainPass(layout.net, index, x, ws, biases, batch.labels, LABEL_SMOOTHING);
      writeGrads(layout, plan, r.gradW, r.gradB, gradArena);
      return { loss: r.loss, correct: r.correct };
    });
  }
  const net: Network = layout.net;
  const classes = net.spec.numClasses;
  return tf.tidy(() => {
    const { ws, biases } = cropTensors(layout, plan, arena, small);
    const x = inputTensor(batch);
    const onehot = tf.oneHot(tf.tensor1d(batch.labels.subarray(0, batch.n), 'int32'), classes);
    const L = ws.length;
    const biasIdx: number[] = [];
    biases.forEach((b, i) => {
      if (b) biasIdx.push(i);
    });
    let logits: tf.Tensor | null = null;
    const f = (...args: tf.Tensor[]): tf.Scalar => {
      const wArgs = args.slice(0, L);
      const bArgs: (tf.Tensor | undefined)[] = new Array(L).fill(undefined);
      biasIdx.forEach((i, k) => {
        bArgs[i] = args[L + k];
      });
      const out = forwardTrain(net, index, x, wArgs, bArgs);
      logits = tf.keep(out);
      return tf.losses.softmaxCrossEntropy(onehot, out, undefined, LABEL_SMOOTHING) as tf.Scalar;
    };
    const inputs = [...ws, ...biasIdx.map((i) => biases[i] as tf.Tensor)];
    const { value, grads } = tf.valueAndGrads(f)(inputs);
    const gradB: (tf.Tensor | undefined)[] = new Array(L).fill(undefined);
    biasIdx.forEach((i, k) => {
      gradB[i] = grads[L + k];
    });
    writeGrads(layout, plan, grads.slice(0, L), gradB, gradArena);
    const loss = value.dataSync()[0] as number;
    const kept = logits as unknown as tf.Tensor;
    const pred = tf.argMax(kept, 1).dataSync();
    kept.dispose();
    let correct = 0;
    for (let k = 0; k < batch.n; k++) if (pred[k] === batch.labels[k]) correct++;
    return { loss, correct };
  });
}
