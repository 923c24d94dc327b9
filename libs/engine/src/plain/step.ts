/**
 * One training step of a plain pruned network: gradients of the label-smoothed
 * cross-entropy, then SGD with momentum on the model's own variables.
 *
 * Two ways to get the gradients, same maths:
 * - `manual` (default): the PruningNet's hand-written forward + backward pass
 *   (pruningnet/backprop.ts) run on the model's variables, with affine batch norm. No tape:
 *   1x1 convolutions' input gradients run as fast forward convolutions, relu6's gradient is
 *   one masking op, nothing is copied for the tape (about 5x faster on wasm).
 * - `autodiff`: tfjs' tape through `model.apply(x, { training: true })`; the reference the
 *   manual pass is tested against, and the fallback for graphs the manual pass cannot run
 *   (a conv without batch norm, a batch-norm epsilon other than 1e-5).
 *
 * The manual pass updates the BN moving statistics exactly as the stock tfjs layer does
 * (m <- m - (m - batch) * (1 - momentum), biased batch variance).
 */
import type { Layer, Network } from '@metaprune/core';
import * as tf from '@tensorflow/tfjs';
import { type AffineBn, trainPass } from '../pruningnet/backprop.js';
import { BN_EPS } from '../pruningnet/forward.js';
import { INPUT_LAYER } from './model.js';

export type GradientMode = 'manual' | 'autodiff';

export interface StepBatch {
  /** `size * h * w * c` floats, NHWC, the model's native input. */
  images: Float32Array;
  labels: Int32Array;
  size: number;
  shape: [number, number, number, number];
}

export interface StepResult {
  /** Mean label-smoothed cross-entropy of the batch (before the update). */
  loss: number;
  /** Images whose argmax logit is the label. */
  correct: number;
}

export interface GradientsResult extends StepResult {
  /** Gradient of the mean loss per trainable variable, keyed by the variable's name. */
  grads: tf.NamedTensorMap;
}

/** The variables of one core layer in the plain model. */
interface LayerVars {
  kernel: tf.Variable;
  bias?: tf.Variable;
  gamma?: tf.Variable;
  beta?: tf.Variable;
  movingMean?: tf.LayerVariable;
  movingVariance?: tf.LayerVariable;
  momentum?: number;
}

/** The batch's images as an NHWC tensor (the buffer may hold more than one batch). */
function batchTensor(batch: StepBatch): tf.Tensor4D {
  return tf.tensor4d(
    batch.images.subarray(
      0,
      batch.shape.reduce((a, b) => a * b, 1),
    ),
    [...batch.shape],
  );
}

function variableEndingWith(ws: readonly tf.LayerVariable[], suffix: string): tf.LayerVariable {
  const w = ws.find((v) => v.originalName.endsWith(suffix));
  if (!w) throw new Error(`no weight ending with "${suffix}" among ${ws.map((v) => v.name)}`);
  return w;
}

/**
 * Computes gradients of a plain model (built by buildPlainModel for `net`) on batches,
 * without updating anything but the BN moving statistics (which a training-mode forward
 * pass updates in both modes).
 */
export class PlainGradients {
  readonly mode: GradientMode;
  private readonly index = new Map<Layer, number>();
  private readonly vars: LayerVars[] = [];
  /** The frozen input stage's layers, in order (a chain: padding or resizing, then normalisation). */
  private readonly stage: tf.layers.Layer[];
  private readonly trainable: tf.Variable[];

  constructor(
    private readonly model: tf.LayersModel,
    private readonly net: Network,
    private readonly labelSmoothing: number,
    mode: GradientMode = 'manual',
  ) {
    this.trainable = model.trainableWeights.map((w) => w.read() as tf.Variable);
    net.layers.forEach((l, i) => {
      this.index.set(l, i);
    });
    const byName = new Map(model.layers.map((l) => [l.name, l]));
    let manualOk = true;
    for (const layer of net.layers) {
      const main = byName.get(layer.name);
      if (!main) throw new Error(`the model has no layer ${layer.name}`);
      const kernel = variableEndingWith(main.trainableWeights, 'kernel').read() as tf.Variable;
      const v: LayerVars = { kernel };
      if (layer.kind === 'fc') {
        v.bias = variableEndingWith(main.trainableWeights, 'bias').read() as tf.Variable;
      } else {
        const bn = byName.get(`${layer.name}.bn`);
        const config = bn?.getConfig() as { momentum: number; epsilon: number } | undefined;
        // the hand-written pass normalises with the PruningNet's epsilon
        if (!bn || !config || config.epsilon !== BN_EPS) {
          manualOk = false;
        } else {
          v.gamma = variableEndingWith(bn.trainableWeights, 'gamma').read() as tf.Variable;
          v.beta = variableEndingWith(bn.trainableWeights, 'beta').read() as tf.Variable;
          v.movingMean = variableEndingWith(bn.nonTrainableWeights, 'moving_mean');
          v.movingVariance = variableEndingWith(bn.nonTrainableWeights, 'moving_variance');
          v.momentum = config.momentum;
        }
      }
      this.vars.push(v);
    }
    this.mode = manualOk ? mode : 'autodiff';
    // The frozen input stage runs forward only (its weights are not trained).
    this.stage = model.layers.filter((l) => l.name.startsWith(`${INPUT_LAYER}.`));
  }

  /** The variables a step updates (the model's trainable weights). */
  get variables(): readonly tf.Variable[] {
    return this.trainable;
  }

  /** Gradients of the batch's mean loss. Call inside tf.tidy (the result is tensors). */
  compute(batch: StepBatch): GradientsResult {
    return this.mode === 'manual' ? this.manual(batch) : this.autodiff(batch);
  }

  private manual(batch: StepBatch): GradientsResult {
    const x = batchTensor(batch);
    let input: tf.Tensor = x;
    for (const l of this.stage) input = l.apply(input) as tf.Tensor;
    const ws = this.vars.map((v) => v.kernel);
    const biases = this.vars.map((v) => v.bias);
    const affine: (AffineBn | undefined)[] = this.vars.map((v) =>
      v.gamma && v.beta ? { gamma: v.gamma, beta: v.beta } : undefined,
    );
    const r = trainPass(
      this.net,
      this.index,
      input as tf.Tensor4D,
      ws,
      biases,
      batch.labels,
      this.labelSmoothing,
      {
        affine,
        onBatchStats: (i, mean, variance) => {
          const v = this.vars[i] as LayerVars;
          if (!v.movingMean || !v.movingVariance) return;
          const decay = 1 - (v.momentum as number);
          for (const [m, b] of [
            [v.movingMean, mean],
            [v.movingVariance, variance],
          ] as const) {
            const old = m.read();
            m.write(tf.tidy(() => tf.sub(old, tf.mul(tf.sub(old, b), decay))));
          }
        },
      },
    );
    const grads: tf.NamedTensorMap = {};
    this.vars.forEach((v, i) => {
      grads[v.kernel.name] = r.gradW[i] as tf.Tensor;
      const gb = r.gradB[i];
      if (v.bias && gb) grads[v.bias.name] = gb;
      const gg = r.gradGamma[i];
      const gbeta = r.gradBeta[i];
      if (v.gamma && gg) grads[v.gamma.name] = gg;
      if (v.beta && gbeta) grads[v.beta.name] = gbeta;
    });
    return { loss: r.loss, correct: r.correct, grads };
  }

  private autodiff(batch: StepBatch): GradientsResult {
    const classes = this.net.spec.numClasses;
    const x = batchTensor(batch);
    const labels = tf.tensor1d(batch.labels.subarray(0, batch.size), 'int32');
    const onehot = tf.oneHot(labels, classes);
    let hitsT: tf.Tensor | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const logits = this.model.apply(x, { training: true }) as tf.Tensor;
      hitsT = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), labels), 'int32')));
      return tf.losses.softmaxCrossEntropy(
        onehot,
        logits,
        undefined,
        this.labelSmoothing,
      ) as tf.Scalar;
    }, this.trainable);
    const hits = hitsT as unknown as tf.Tensor;
    const correct = hits.dataSync()[0] as number;
    hits.dispose();
    return { loss: value.dataSync()[0] as number, correct, grads };
  }
}
