/**
 * Materialising evaluation sets from batch sources (e.g. @metaprune/data's BatchIterator):
 * the recalibration images (the first N batches of a shuffled, un-augmented sub-train
 * epoch) and the validation images (all of sub-val), copied out of the iterator's reused
 * buffers, optionally into SharedArrayBuffers so evaluator threads read them in place.
 */
import type { TrainBatch } from '../train/trainer.js';

/** A batch source that answers at once (an in-memory BatchIterator). */
interface SyncBatches {
  readonly batchesPerEpoch: number;
  batch(epoch: number, step: number): TrainBatch;
}

import type { ImageSet } from './evaluate.js';

export function collectImages(
  src: SyncBatches,
  options: { maxBatches?: number; epoch?: number; shared?: boolean } = {},
): ImageSet {
  const batches = Math.min(options.maxBatches ?? src.batchesPerEpoch, src.batchesPerEpoch);
  const epoch = options.epoch ?? 0;
  const parts: { images: Float32Array; labels: Int32Array }[] = [];
  let shape: readonly [number, number, number] | null = null;
  let count = 0;
  for (let k = 0; k < batches; k++) {
    const b = src.batch(epoch, k);
    shape ??= [b.shape[1], b.shape[2], b.shape[3]];
    parts.push({
      images: b.images.slice(0, b.size * b.shape[1] * b.shape[2] * b.shape[3]),
      labels: b.labels.slice(0, b.size),
    });
    count += b.size;
  }
  if (!shape) throw new RangeError('no batches to collect');
  const per = shape[0] * shape[1] * shape[2];
  const images = options.shared
    ? new Float32Array(new SharedArrayBuffer(count * per * 4))
    : new Float32Array(count * per);
  const labels = options.shared
    ? new Int32Array(new SharedArrayBuffer(count * 4))
    : new Int32Array(count);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * per);
    labels.set(p.labels, at);
    at += p.labels.length;
  }
  return { images, labels, count, imageShape: shape };
}

/** A copy of an image set in SharedArrayBuffers. */
export function shareImageSet(set: ImageSet): ImageSet {
  const images = new Float32Array(new SharedArrayBuffer(set.images.byteLength));
  images.set(set.images);
  const labels = new Int32Array(new SharedArrayBuffer(set.labels.byteLength));
  labels.set(set.labels);
  return { images, labels, count: set.count, imageShape: set.imageShape };
}
