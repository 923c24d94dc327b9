import {
  type AugmentOptions,
  type AugmentParams,
  ImagePreprocessor,
  type PreprocessConfig,
  type PreprocessOptions,
  preprocessConfig,
  resolveAugment,
  sampleAugment,
} from './preprocess.js';
import { hashSeed, Rng } from './random.js';
import type { Subset } from './split.js';

export interface BatchOptions {
  batchSize: number;
  /** Visit the subset in a new random order every epoch. Default true. */
  shuffle?: boolean;
  /** Seed of the shuffles and augmentations. Default 0. */
  seed?: number;
  /** Random crop with padding and horizontal flip (training only). Default false. */
  augment?: boolean | AugmentOptions;
  /** Skip the last, smaller batch of an epoch. Default false. */
  dropLast?: boolean;
  /** Normalisation, padding / resizing, channel replication. Default: pixels / 255 only. */
  preprocess?: PreprocessConfig | PreprocessOptions;
}

/**
 * One batch. `images`, `labels` and `indices` are views of buffers the iterator reuses:
 * they are overwritten by the next batch, so copy (or turn into a tensor) before asking
 * for it.
 */
export interface Batch {
  /** `size * h * w * c` floats, NHWC. */
  images: Float32Array;
  /** `size` class ids. */
  labels: Int32Array;
  /** `size` indices into the subset's source set (which images these are). */
  indices: Uint32Array;
  size: number;
  /** `[size, h, w, c]`. */
  shape: [number, number, number, number];
  epoch: number;
  step: number;
}

/** Batches in an epoch of `count` images. */
export function countBatches(count: number, batchSize: number, dropLast = false): number {
  return dropLast ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
}

// Stream tags keep the shuffle and the augmentation generators independent.
const SHUFFLE_STREAM = 0x05f1e;
const AUGMENT_STREAM = 0x0a06e;

/**
 * Writes epoch `epoch`'s visiting order of `indices` into `out` (Fisher-Yates seeded by
 * `(seed, epoch)`): the order every batch source of this library uses, in memory or streamed.
 */
export function shuffledOrder(
  indices: ArrayLike<number>,
  seed: number,
  epoch: number,
  out: Uint32Array,
): Uint32Array {
  out.set(indices);
  new Rng(hashSeed(SHUFFLE_STREAM, seed, epoch)).shuffle(out);
  return out;
}

/** The augmentation of the image at `position` of epoch `epoch` (a pure function of them). */
export function augmentAt(
  augment: Required<AugmentOptions>,
  seed: number,
  epoch: number,
  position: number,
): AugmentParams {
  return sampleAugment(augment, new Rng(hashSeed(AUGMENT_STREAM, seed, epoch, position)));
}

/**
 * Batches over a {@link Subset} without copying it: each epoch has its own permutation
 * of the subset's indices (a Uint32Array, Fisher-Yates with a generator seeded by
 * `(seed, epoch)`), and a batch is written into one reusable Float32Array / Int32Array.
 * Every image's augmentation comes from a generator seeded by `(seed, epoch, position in
 * the epoch)`. So batch `(epoch, step)` is a pure function of the subset, the options and
 * `(epoch, step)`: it can be asked for in any order, and training resumes exactly.
 */
export class BatchIterator {
  readonly subset: Subset;
  readonly batchSize: number;
  readonly batchesPerEpoch: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly config: PreprocessConfig;
  readonly augment: Required<AugmentOptions> | undefined;
  private readonly pre: ImagePreprocessor;
  private readonly images: Float32Array;
  private readonly labels: Int32Array;
  private readonly picked: Uint32Array;
  private permEpoch = -1;
  private readonly perm: Uint32Array;

  constructor(subset: Subset, options: BatchOptions) {
    const { batchSize } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    }
    this.subset = subset;
    this.batchSize = batchSize;
    this.shuffle = options.shuffle ?? true;
    this.seed = options.seed ?? 0;
    this.dropLast = options.dropLast ?? false;
    hashSeed(this.seed); // validates the seed
    const p = options.preprocess;
    this.config =
      p !== undefined && 'outputShape' in p ? p : preprocessConfig(subset.imageShape, p ?? {});
    const [h, w, c] = subset.imageShape;
    const [ih, iw, ic] = this.config.inputShape;
    if (h !== ih || w !== iw || c !== ic) {
      throw new RangeError(
        `preprocess config is for ${ih}x${iw}x${ic} images, the subset has ${h}x${w}x${c}`,
      );
    }
    const aug = options.augment ?? false;
    this.augment =
      aug === false ? undefined : resolveAugment(subset.imageShape, aug === true ? {} : aug);
    this.pre = new ImagePreprocessor(this.config);
    this.batchesPerEpoch = countBatches(subset.indices.length, batchSize, this.dropLast);
    this.images = new Float32Array(batchSize * this.pre.outputSize);
    this.labels = new Int32Array(batchSize);
    this.picked = new Uint32Array(batchSize);
    this.perm = this.shuffle ? new Uint32Array(subset.indices.length) : subset.indices;
  }

  /** Output image shape `[h, w, c]`. */
  get imageShape(): [number, number, number] {
    return this.config.outputShape;
  }

  /**
   * The order in which epoch `epoch` visits the source images (indices into the source
   * set). The returned array is reused for the next epoch asked for; do not modify it.
   */
  order(epoch: number): Uint32Array {
    if (!Number.isSafeInteger(epoch) || epoch < 0) {
      throw new RangeError(`epoch must be a non-negative integer, got ${epoch}`);
    }
    if (this.shuffle && this.permEpoch !== epoch) {
      shuffledOrder(this.subset.indices, this.seed, epoch, this.perm);
      this.permEpoch = epoch;
    }
    return this.perm;
  }

  /** Size of batch `step` of an epoch (the last one may be smaller). */
  batchSizeAt(step: number): number {
    return Math.min(this.batchSize, this.subset.indices.length - step * this.batchSize);
  }

  /**
   * Fills and returns batch `step` of epoch `epoch`. With `out`, writes into those arrays
   * instead of the iterator's own (each must hold a full batch).
   */
  batch(epoch: number, step: number, out?: { images: Float32Array; labels: Int32Array }): Batch {
    if (!Number.isInteger(step) || step < 0 || step >= this.batchesPerEpoch) {
      throw new RangeError(`step must be in 0..${this.batchesPerEpoch - 1}, got ${step}`);
    }
    const order = this.order(epoch);
    const size = this.batchSizeAt(step);
    const per = this.pre.outputSize;
    const images = out?.images ?? this.images;
    const labels = out?.labels ?? this.labels;
    if (images.length < size * per || labels.length < size) {
      throw new RangeError(`output buffers hold fewer than ${size} images`);
    }
    const { images: src, labels: srcLabels } = this.subset.source;
    const [h, w, c] = this.config.inputShape;
    const inSize = h * w * c;
    const first = step * this.batchSize;
    for (let i = 0; i < size; i++) {
      const idx = order[first + i]!;
      this.picked[i] = idx;
      labels[i] = srcLabels[idx]!;
      const aug = this.augment ? augmentAt(this.augment, this.seed, epoch, first + i) : undefined;
      this.pre.fill(src, idx * inSize, images, i * per, aug);
    }
    const [oh, ow, oc] = this.config.outputShape;
    return {
      images: images.subarray(0, size * per),
      labels: labels.subarray(0, size),
      indices: this.picked.subarray(0, size),
      size,
      shape: [size, oh, ow, oc],
      epoch,
      step,
    };
  }

  /** The batches of epoch `epoch`, from `fromStep` on (resuming mid-epoch). */
  *epoch(epoch: number, fromStep = 0): Generator<Batch, void, undefined> {
    for (let step = fromStep; step < this.batchesPerEpoch; step++) yield this.batch(epoch, step);
  }
}

/**
 * The batches of one epoch (default 0) of `subset`, from `step` (default 0) on. See
 * {@link BatchIterator}; create one iterator and call `epoch(e)` per epoch to reuse its
 * buffers across epochs.
 */
export function batches(
  subset: Subset,
  options: BatchOptions & { epoch?: number; step?: number },
): Generator<Batch, void, undefined> {
  return new BatchIterator(subset, options).epoch(options.epoch ?? 0, options.step ?? 0);
}
