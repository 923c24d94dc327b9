import type { Network } from '@metaprune/core';
import { BatchIterator, loadDataset, type NetworkData, networkData } from '@metaprune/data';
import { num, oneOf, str, type Values } from './args.js';

export const DATA_OPTIONS = {
  dataset: { type: 'string' },
  'data-dir': { type: 'string' },
  'val-per-class': { type: 'string' },
  'split-seed': { type: 'string' },
} as const;

export interface LocalData extends NetworkData {
  splitSeed: number;
  valPerClass: number;
}

/**
 * Dataset, stratified sub-train/sub-val split and input preprocessing for a network
 * (DESIGN 3). The split seed and size travel with checkpoints so evaluation never scores
 * images the PruningNet trained on.
 */
export async function prepareLocalData(
  v: Values,
  net: Network,
  saved?: { splitSeed: number; valPerClass: number },
): Promise<LocalData> {
  const name = oneOf(v, 'dataset', ['fashion-mnist', 'cifar10'] as const, 'fashion-mnist') as
    | 'fashion-mnist'
    | 'cifar10';
  const dataset = await loadDataset({ name, dir: str(v, 'data-dir') });
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
  return { ...data, splitSeed, valPerClass };
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
