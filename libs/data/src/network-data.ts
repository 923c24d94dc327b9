/**
 * The data a network trains and is scored on (DESIGN 3): the stratified sub-train /
 * sub-val split of a dataset and the input preprocessing fitted to the network —
 * normalisation by sub-train's per-channel statistics, padding or resizing to the
 * network's input size, channel replication. One definition for the CLI (local training,
 * evaluation, export) and the weight generator, so both see the same images the same way.
 */
import type { Dataset } from './dataset.js';
import { computeChannelStats, type PreprocessConfig, preprocessConfig } from './preprocess.js';
import { splitTrainVal, type TrainValTestSplit } from './split.js';

export interface NetworkDataOptions {
  /** Sub-val images per class. */
  valPerClass: number;
  /** Seed of the split. */
  splitSeed: number;
  /** The network's input size (square) and channels. */
  inputSize: number;
  inputChannels: number;
}

export interface NetworkData {
  dataset: Dataset;
  split: TrainValTestSplit;
  preprocess: PreprocessConfig;
}

export function networkData(dataset: Dataset, o: NetworkDataOptions): NetworkData {
  const split = splitTrainVal(dataset, { valPerClass: o.valPerClass, seed: o.splitSeed });
  const preprocess = preprocessConfig(dataset.imageShape, {
    size: o.inputSize,
    channels: o.inputChannels,
    stats: computeChannelStats(split.train),
  });
  return { dataset, split, preprocess };
}
