import type { Dataset, ImageSet, ImageShape } from './dataset.js';
import { DatasetError } from './errors.js';
import { hashSeed, Rng } from './random.js';

/**
 * A selection of images of one loaded split, by index: nothing is copied. The batch
 * iterator and the statistics read `images` / `labels` through `indices`.
 */
export interface Subset {
  /** "train", "val", "test", or "sub-train" etc. */
  name: string;
  source: ImageSet;
  imageShape: ImageShape;
  numClasses: number;
  /** Indices into `source`, ascending. */
  indices: Uint32Array;
}

export interface SplitOptions {
  /** Images of each class held out for the sub-val split. Default 500 (5k of Fashion-MNIST's 60k). */
  valPerClass?: number;
  /** Seed of the split; the same seed always gives the same split. Default 0. */
  seed?: number;
}

export interface TrainValTestSplit {
  /** Training images minus the held-out ones (the PruningNet trains and BN recalibrates here). */
  train: Subset;
  /** `valPerClass` images of every class from the training set (candidates are ranked here). */
  val: Subset;
  /** The whole test set, untouched (only for final retrained models). */
  test: Subset;
  seed: number;
  valPerClass: number;
}

export const DEFAULT_VAL_PER_CLASS = 500;
export const DEFAULT_SPLIT_SEED = 0;
const SPLIT_STREAM = 0x5b117;

/** All images of a loaded split, as a {@link Subset}. */
export function wholeSubset(ds: Dataset, split: 'train' | 'test'): Subset {
  const source = ds[split];
  const indices = new Uint32Array(source.count);
  for (let i = 0; i < indices.length; i++) indices[i] = i;
  return {
    name: split,
    source,
    imageShape: ds.imageShape,
    numClasses: ds.classNames.length,
    indices,
  };
}

/** Number of images per class in a subset. */
export function classCounts(subset: Subset): Uint32Array {
  const counts = new Uint32Array(subset.numClasses);
  const labels = subset.source.labels;
  for (const i of subset.indices) counts[labels[i]!]!++;
  return counts;
}

/**
 * Splits the training set into sub-train and sub-val, stratified: for every class, its
 * images are shuffled with a generator seeded by `(seed, class)` and the first
 * `valPerClass` go to sub-val, the rest to sub-train. The two are disjoint and cover the
 * training set; every class has exactly `valPerClass` images in sub-val. The split only
 * depends on the seed and the labels. Throws a {@link DatasetError} when a class has no
 * more than `valPerClass` images (sub-train would lose it).
 */
export function splitTrainVal(ds: Dataset, options: SplitOptions = {}): TrainValTestSplit {
  const valPerClass = options.valPerClass ?? DEFAULT_VAL_PER_CLASS;
  const seed = options.seed ?? DEFAULT_SPLIT_SEED;
  if (!Number.isInteger(valPerClass) || valPerClass < 0) {
    throw new RangeError(`valPerClass must be a non-negative integer, got ${valPerClass}`);
  }
  const all = wholeSubset(ds, 'train');
  const numClasses = ds.classNames.length;
  const counts = classCounts(all);
  for (let k = 0; k < numClasses; k++) {
    if (counts[k]! <= valPerClass) {
      throw new DatasetError(
        `${ds.name} train`,
        `more than ${valPerClass} images of class ${k} (${ds.classNames[k]}) to hold out ${valPerClass} for validation`,
        { kind: 'invalid', actual: `${counts[k]}` },
      );
    }
  }
  // Indices of each class, ascending (a counting sort of the training set by label).
  const starts = new Uint32Array(numClasses + 1);
  for (let k = 0; k < numClasses; k++) starts[k + 1] = starts[k]! + counts[k]!;
  const byClass = new Uint32Array(ds.train.count);
  const fill = starts.slice(0, numClasses);
  const labels = ds.train.labels;
  for (let i = 0; i < ds.train.count; i++) byClass[fill[labels[i]!]!++] = i;

  const val = new Uint32Array(valPerClass * numClasses);
  const train = new Uint32Array(ds.train.count - val.length);
  let v = 0;
  let t = 0;
  for (let k = 0; k < numClasses; k++) {
    const members = byClass.subarray(starts[k]!, starts[k + 1]!);
    new Rng(hashSeed(SPLIT_STREAM, seed, k)).shuffle(members);
    val.set(members.subarray(0, valPerClass), v);
    v += valPerClass;
    train.set(members.subarray(valPerClass), t);
    t += members.length - valPerClass;
  }
  val.sort();
  train.sort();
  const base = { source: ds.train, imageShape: ds.imageShape, numClasses };
  return {
    train: { ...base, name: 'sub-train', indices: train },
    val: { ...base, name: 'sub-val', indices: val },
    test: wholeSubset(ds, 'test'),
    seed,
    valPerClass,
  };
}
