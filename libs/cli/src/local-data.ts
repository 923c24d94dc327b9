import type { Network } from '@metaprune/core';
import {
  BatchIterator,
  type ChannelMode,
  type DatasetName,
  type ImageFolderId,
  isImageFolderId,
  loadDataset,
  type NetworkData,
  networkData,
  scanImageFolder,
} from '@metaprune/data';
import { num, str, type Values } from './args.js';
import { UsageError } from './errors.js';

export const DATA_OPTIONS = {
  dataset: { type: 'string' },
  'data-dir': { type: 'string' },
  'val-per-class': { type: 'string' },
  'split-seed': { type: 'string' },
  'max-bad-fraction': { type: 'string' },
} as const;

export interface LocalData extends NetworkData {
  splitSeed: number;
  valPerClass: number;
  /** Channels the images were stored with (an image folder's, before replication). */
  imageChannels: number;
}

/** `--dataset`: fashion-mnist (default), cifar10 or imagefolder:<dir>. */
export function datasetFlag(v: Values): DatasetName | ImageFolderId {
  const raw = str(v, 'dataset') ?? 'fashion-mnist';
  if (raw === 'fashion-mnist' || raw === 'cifar10' || isImageFolderId(raw)) return raw;
  throw new UsageError(
    `--dataset: unknown value "${raw}"; allowed fashion-mnist, cifar10, imagefolder:<dir>`,
  );
}

/**
 * Classes of the dataset `--dataset` names when it decides them (an image folder: one per
 * class folder), so the network's classifier is built to match; undefined otherwise.
 */
export async function datasetClasses(v: Values): Promise<number | undefined> {
  const id = datasetFlag(v);
  if (!isImageFolderId(id)) return undefined;
  return (await scanImageFolder(id.slice('imagefolder:'.length))).classNames.length;
}

/**
 * Dataset, stratified sub-train/sub-val split and input preprocessing for a network
 * (DESIGN 3). The split seed and size travel with checkpoints so evaluation never scores
 * images the PruningNet trained on.
 */
export async function prepareLocalData(
  v: Values,
  net: Network,
  saved?: { splitSeed: number; valPerClass: number; imageChannels?: number },
): Promise<LocalData> {
  const name = datasetFlag(v);
  const dir = str(v, 'data-dir');
  // An image folder is decoded at the network's input size. Its channels: what a run
  // recorded; 1 when the network takes grey input; 3 when --input-channels asks for it
  // (converting grey files); else the files' own (grey is replicated by preprocessing).
  const channels: ChannelMode =
    saved?.imageChannels === 1 || saved?.imageChannels === 3
      ? saved.imageChannels
      : net.spec.inputChannels === 1
        ? 1
        : str(v, 'input-channels') !== undefined
          ? 3
          : 'auto';
  if (isImageFolderId(name) && net.spec.inputChannels !== 1 && net.spec.inputChannels !== 3) {
    throw new UsageError(
      `--input-channels: an image folder gives 1 or 3 channels, got ${net.spec.inputChannels}`,
    );
  }
  const maxBadFraction = num(v, 'max-bad-fraction', { min: 0, max: 0.5 });
  const dataset = await loadDataset({
    name,
    ...(dir !== undefined ? { dir } : {}),
    image: {
      size: net.spec.inputSize,
      channels,
      ...(maxBadFraction !== undefined ? { maxBadFraction } : {}),
      onSkip: (b) => process.stderr.write(`skipped ${b.path}: ${b.reason}\n`),
    },
  });
  if (dataset.classNames.length !== net.spec.numClasses) {
    throw new UsageError(
      `--classes: ${dataset.name} has ${dataset.classNames.length} classes, the network ${net.spec.numClasses}`,
    );
  }
  const splitSeed =
    saved?.splitSeed ??
    (num(v, 'split-seed', { min: 0, max: 2 ** 31, integer: true }, 0) as number);
  const valPerClass =
    saved?.valPerClass ??
    (num(v, 'val-per-class', { min: 1, max: 100000, integer: true }, 500) as number);
  const data = networkData(dataset, {
    valPerClass,
    splitSeed,
    inputSize: net.spec.inputSize,
    inputChannels: net.spec.inputChannels,
  });
  return { ...data, splitSeed, valPerClass, imageChannels: dataset.imageShape[2] };
}

export function trainBatches(
  d: LocalData,
  batchSize: number,
  seed: number,
  augment: boolean,
): BatchIterator {
  return new BatchIterator(d.split.train, {
    batchSize,
    seed,
    augment,
    preprocess: d.preprocess,
    shuffle: true,
  });
}

export function recalBatches(d: LocalData, batchSize: number, seed: number): BatchIterator {
  return new BatchIterator(d.split.train, {
    batchSize,
    seed: seed + 1,
    preprocess: d.preprocess,
    shuffle: true,
  });
}

export function valBatches(d: LocalData, batchSize: number): BatchIterator {
  return new BatchIterator(d.split.val, { batchSize, preprocess: d.preprocess, shuffle: false });
}
