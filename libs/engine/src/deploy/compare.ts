/**
 * Do two models predict the same? Max |difference| of their outputs and top-1 agreement
 * over the same images (native [0, 1] NHWC), batch by batch.
 */
import * as tf from '@tensorflow/tfjs';

export interface PredictionAgreement {
  readonly images: number;
  /** max over images and classes of |a - b|. */
  readonly maxAbsDiff: number;
  /** Images whose argmax differs. */
  readonly top1Mismatches: number;
}

type Predicts = { predict(x: tf.Tensor): tf.Tensor };

/**
 * `images`: `n * h * w * c` values in [0, 1] (or bytes with `scale` 1/255), compared in
 * batches of `batchSize`.
 */
export function comparePredictions(
  a: Predicts,
  b: Predicts,
  images: Float32Array | Uint8Array,
  shape: readonly [number, number, number],
  options: { batchSize?: number; scale?: number } = {},
): PredictionAgreement {
  const per = shape[0] * shape[1] * shape[2];
  const n = Math.floor(images.length / per);
  const batch = options.batchSize ?? 500;
  const scale = options.scale ?? 1;
  let maxAbsDiff = 0;
  let top1Mismatches = 0;
  for (let s = 0; s < n; s += batch) {
    const m = Math.min(batch, n - s);
    const [diff, mism] = tf.tidy(() => {
      const raw = tf.tensor4d(images.subarray(s * per, (s + m) * per), [m, ...shape], 'float32');
      const x = scale === 1 ? raw : tf.mul(raw, scale);
      const pa = a.predict(x);
      const pb = b.predict(x);
      return [
        tf.max(tf.abs(tf.sub(pa, pb))),
        tf.sum(tf.cast(tf.notEqual(tf.argMax(pa, -1), tf.argMax(pb, -1)), 'int32')),
      ];
    });
    maxAbsDiff = Math.max(maxAbsDiff, diff.dataSync()[0] as number);
    top1Mismatches += mism.dataSync()[0] as number;
    tf.dispose([diff, mism]);
  }
  return { images: n, maxAbsDiff, top1Mismatches };
}
