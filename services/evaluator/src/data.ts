/**
 * The images an evaluation runs on (DESIGN 1.5), prepared exactly as the weight generator
 * prepares its training data: the PruningNet's dataset, its stratified sub-train / sub-val
 * split (seeded by the training seed, validation images spread evenly over the classes),
 * normalised with sub-train's channel statistics and padded / resized / replicated to the
 * network's input. Recalibration batches are drawn from sub-train in a seeded shuffled order
 * (evaluation seed); the validation subset is the first `validationImages` of sub-val in a
 * seeded shuffled order (all of it when 0). Only the images used are materialised, and the
 * sets of the last few (data, settings) pairs are kept, so a search pays for them once.
 */
import { existsSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { NetworkSpec } from '@metaprune/core';
import {
  BatchIterator,
  CIFAR10_TRAIN_FILES,
  computeChannelStats,
  type Dataset,
  DatasetError,
  FASHION_MNIST_CLASSES,
  IDX_FILES,
  IMAGE_FOLDER_PREFIX,
  loadCifar10,
  loadIdxDataset,
  loadImageFolder,
  type PreprocessConfig,
  preprocessConfig,
  splitTrainVal,
  type TrainValTestSplit,
} from '@metaprune/data';
import type { ResolvedDataSplit, ResolvedEvaluationSettings } from './protocol.js';
import { PermanentEvaluationError } from './types.js';

/** Images in memory (NHWC floats, preprocessed) with their labels. */
export interface ImageBatchSet {
  images: Float32Array;
  labels: Int32Array;
  count: number;
  imageShape: readonly [number, number, number];
}

export interface EvaluationSets {
  recal: ImageBatchSet;
  val: ImageBatchSet;
}

/** The weight generator's default held-out images per class when a job says 0. */
export const DEFAULT_VAL_PER_CLASS = 500;
const INVALID_JOB = 1; // evaluation.FailureReason.INVALID_JOB (no proto import here)

interface Prepared {
  dataset: Dataset;
  split: TrainValTestSplit;
  preprocess: PreprocessConfig;
}

function hasIdx(dir: string): boolean {
  return (
    existsSync(join(dir, `${IDX_FILES.trainImages}.gz`)) ||
    existsSync(join(dir, IDX_FILES.trainImages))
  );
}

function hasCifar(dir: string): boolean {
  return CIFAR10_TRAIN_FILES.length > 0 && existsSync(join(dir, CIFAR10_TRAIN_FILES[0]!));
}

/** Dataset id → directory and format, as the weight generator resolves it. */
export function resolveDatasetDir(
  id: string,
  dataRoot: string,
): { dir: string; format: 'fashion-mnist' | 'cifar10' | 'imagefolder' } {
  const bad = (msg: string) => new PermanentEvaluationError(INVALID_JOB, msg);
  const name = id || 'fashion-mnist';
  if (name === 'fashion-mnist' || name === 'cifar10') {
    return { dir: join(dataRoot, name), format: name };
  }
  const folder = name.startsWith(IMAGE_FOLDER_PREFIX);
  if (name.startsWith('dir:') || folder) {
    const root = resolve(dataRoot);
    const dir = resolve(root, name.slice(folder ? IMAGE_FOLDER_PREFIX.length : 4));
    const rel = relative(root, dir);
    if (rel.startsWith('..') || resolve(root, rel) !== dir) {
      throw bad(`dataset ${JSON.stringify(name)} leaves the data root`);
    }
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) throw bad(`dataset ${JSON.stringify(name)}: no such directory below the data root`);
    if (folder) return { dir, format: 'imagefolder' };
    if (hasIdx(dir)) return { dir, format: 'fashion-mnist' };
    if (hasCifar(dir)) return { dir, format: 'cifar10' };
    throw bad(`dataset ${JSON.stringify(name)} holds neither IDX files nor CIFAR-10 batches`);
  }
  throw bad(`unknown dataset ${JSON.stringify(name.slice(0, 100))}`);
}

/** Copies the first `count` images of the batches of `it` (epochs wrap) into one set. */
function collect(it: BatchIterator, count: number): ImageBatchSet {
  const [h, w, c] = it.imageShape;
  const per = h * w * c;
  const images = new Float32Array(count * per);
  const labels = new Int32Array(count);
  let at = 0;
  for (let epoch = 0; at < count; epoch++) {
    for (let step = 0; step < it.batchesPerEpoch && at < count; step++) {
      const b = it.batch(epoch, step);
      const n = Math.min(b.size, count - at);
      images.set(b.images.subarray(0, n * per), at * per);
      labels.set(b.labels.subarray(0, n), at);
      at += n;
    }
  }
  return { images, labels, count, imageShape: [h, w, c] };
}

export class EvaluationData {
  private readonly prepared = new Map<string, Promise<Prepared>>();
  private readonly sets = new Map<string, Promise<EvaluationSets>>();

  constructor(
    private readonly dataRoot: string,
    /** (data, settings) pairs whose image sets are kept. */
    private readonly keep = 2,
  ) {}

  private prepare(network: NetworkSpec, data: ResolvedDataSplit): Promise<Prepared> {
    const key = JSON.stringify([
      data.dataset,
      data.seed,
      data.validationImages,
      network.inputSize,
      network.inputChannels,
    ]);
    let p = this.prepared.get(key);
    if (!p) {
      p = (async () => {
        const { dir, format } = resolveDatasetDir(data.dataset, this.dataRoot);
        const dataset =
          format === 'cifar10'
            ? await loadCifar10(dir)
            : format === 'imagefolder'
              ? // Decoded exactly as the weight generator decodes it for training.
                await loadImageFolder(dir, {
                  size: network.inputSize,
                  channels: network.inputChannels === 1 ? 1 : 3,
                }).catch((err: unknown) => {
                  throw err instanceof DatasetError
                    ? new PermanentEvaluationError(INVALID_JOB, err.message)
                    : err;
                })
              : await loadIdxDataset(dir, {
                  name: data.dataset || 'fashion-mnist',
                  classNames: FASHION_MNIST_CLASSES,
                });
        const classes = dataset.classNames.length;
        const valImages = data.validationImages || DEFAULT_VAL_PER_CLASS * classes;
        const split = splitTrainVal(dataset, {
          valPerClass: Math.max(1, Math.round(valImages / classes)),
          seed: data.seed,
        });
        const preprocess = preprocessConfig(dataset.imageShape, {
          size: network.inputSize,
          channels: network.inputChannels,
          stats: computeChannelStats(split.train),
        });
        return { dataset, split, preprocess };
      })();
      this.prepared.set(key, p);
      p.catch(() => this.prepared.delete(key));
      while (this.prepared.size > this.keep) {
        this.prepared.delete(this.prepared.keys().next().value as string);
      }
    }
    return p;
  }

  /** Recalibration and validation images for one (network input, data, settings). */
  imageSets(
    network: NetworkSpec,
    data: ResolvedDataSplit,
    settings: ResolvedEvaluationSettings,
  ): Promise<EvaluationSets> {
    const key = JSON.stringify([
      data.dataset,
      data.seed,
      data.validationImages,
      network.inputSize,
      network.inputChannels,
      settings.recalibrationBatches,
      settings.batchSize,
      settings.validationImages,
      settings.seed,
    ]);
    let p = this.sets.get(key);
    if (!p) {
      p = (async () => {
        const { split, preprocess } = await this.prepare(network, data);
        const batchSize = settings.batchSize;
        const recalIt = new BatchIterator(split.train, {
          batchSize,
          seed: settings.seed + 1,
          preprocess,
          shuffle: true,
        });
        const recal = collect(recalIt, Math.max(1, settings.recalibrationBatches) * batchSize);
        const all = split.val.indices.length;
        const n = settings.validationImages > 0 ? Math.min(settings.validationImages, all) : all;
        const valIt = new BatchIterator(split.val, {
          batchSize,
          seed: settings.seed,
          preprocess,
          shuffle: n < all,
        });
        return { recal, val: collect(valIt, n) };
      })();
      this.sets.set(key, p);
      p.catch(() => this.sets.delete(key));
      while (this.sets.size > this.keep) {
        this.sets.delete(this.sets.keys().next().value as string);
      }
    }
    return p;
  }
}
