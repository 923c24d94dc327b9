/**
 * Faster training-mode batch normalisation for the plain models' stock
 * `BatchNormalization` layers.
 *
 * tfjs-layers normalises in training mode with `tf.moments` and a dozen small ops whose
 * autodiff (Tile, Sum and Mean over the leading axes) dominates a training step on the wasm
 * backend (measured: ~75% of a MobileNetV1 step). {@link useFastBatchNorm} swaps, on the
 * given model's BN layer instances only, the training-mode branch of `call` for:
 *
 *   y = batchNormTrain(x)            (the engine's one-kernel normalisation + gradient)
 *   z = gamma * y + beta             (custom gradient: dgamma, dbeta as [1,R]x[R,C] matmuls)
 *   moving stats updated exactly as tfjs does: m <- m - (m - batch) * (1 - momentum)
 *
 * Same maths as the stock layer (biased batch variance, same epsilon), so the trained
 * model is unchanged; inference keeps the stock code path, and serialisation never sees
 * the swap. `restore()` puts the original `call` back.
 */
import * as tf from '@tensorflow/tfjs';
import { batchNormTrain } from '../kernels/batchnorm.js';
import { rowSum } from '../pruningnet/ops.js';

type Call = (
  inputs: tf.Tensor | tf.Tensor[],
  kwargs: Record<string, unknown>,
) => tf.Tensor | tf.Tensor[];
interface Patchable {
  call: Call;
}

/** `gamma * y + beta` (broadcast over the last axis) with a gradient built from matmuls. */
const scaleShift = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [y, gamma, beta, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([y, gamma]);
  return {
    value: tf.add(tf.mul(y, gamma), beta),
    gradFunc: (dz: tf.Tensor, saved: tf.Tensor[]) => {
      const [ys, g] = saved as [tf.Tensor, tf.Tensor];
      return [tf.mul(dz, g), rowSum(tf.mul(dz, ys)), rowSum(dz)];
    },
  };
}) as (y: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor;

/** The stock layer's fields this module reads (tfjs-layers' BatchNormalization). */
interface BatchNormFields {
  gamma: tf.LayerVariable;
  beta: tf.LayerVariable;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
  momentum: number;
  epsilon: number;
  axis: number;
  center: boolean;
  scale: boolean;
}

function fastCall(layer: BatchNormFields, original: Call): Call {
  return (inputs, kwargs) => {
    const x = Array.isArray(inputs) ? (inputs[0] as tf.Tensor) : inputs;
    const lastAxis = layer.axis === -1 || layer.axis === x.rank - 1;
    if (!kwargs['training'] || !lastAxis || !layer.center || !layer.scale) {
      return original(inputs, kwargs);
    }
    return tf.tidy(() => {
      const { y, mean, variance } = batchNormTrain(x, layer.epsilon);
      const z = scaleShift(y, layer.gamma.read(), layer.beta.read());
      const decay = 1 - layer.momentum;
      for (const [v, batch] of [
        [layer.movingMean, mean],
        [layer.movingVariance, variance],
      ] as const) {
        const old = v.read();
        v.write(tf.sub(old, tf.mul(tf.sub(old, batch), decay)));
      }
      return z;
    });
  };
}

/**
 * Makes `model`'s BatchNormalization layers train through the fast path until `restore()`
 * is called. Layers of other kinds, or BN over another axis, are left alone.
 */
export function useFastBatchNorm(model: tf.LayersModel): { restore: () => void } {
  const undo: (() => void)[] = [];
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const target = layer as unknown as Patchable;
    const own = Object.hasOwn(target, 'call');
    const previous = target.call;
    target.call = fastCall(layer as unknown as BatchNormFields, previous.bind(layer));
    undo.push(() => {
      if (own) target.call = previous;
      else delete (target as Partial<Patchable>).call;
    });
  }
  return {
    restore: () => {
      for (const f of undo.splice(0)) f();
    },
  };
}
