import {
  buildNetwork,
  type Encoding,
  FAMILIES,
  fullEncoding,
  type Network,
  PRESETS,
  parseEncoding,
  uniformEncoding,
} from '@metaprune/core';
import { num, type Options, oneOf, str, type Values } from './args.js';
import { UsageError } from './errors.js';

/** Flags that name a network, shared by every command that builds one. */
export const NETWORK_OPTIONS: Options = {
  network: { type: 'string' },
  preset: { type: 'string' },
  width: { type: 'string' },
  layout: { type: 'string' },
  'input-size': { type: 'string' },
  'input-channels': { type: 'string' },
  classes: { type: 'string' },
  'prune-last-stage': { type: 'boolean' },
};

/**
 * Input channels and classes of a PruningNet trained on each dataset: what the weight
 * generator fills in (`metaprune train --remote --dataset ...`) when the network flags leave
 * them out. The input size stays the preset's (small: 32, Fashion-MNIST's 28x28 padded).
 */
export const DATASET_INPUTS = Object.freeze({
  'fashion-mnist': { inputChannels: 1, numClasses: 10 },
  cifar10: { inputChannels: 3, numClasses: 10 },
} as const);
export type DatasetName = keyof typeof DATASET_INPUTS;

export const ENCODING_OPTIONS: Options = {
  encoding: { type: 'string' },
  uniform: { type: 'string' },
};

/**
 * The network the flags name. With `datasetFlag`, `--dataset fashion-mnist|cifar10` (parsed
 * by the caller as a string flag) sets input channels and classes like the weight generator
 * does for a PruningNet trained on it; explicit `--input-channels` / `--classes` win.
 */
export function networkFromFlags(
  v: Values,
  defaults: { network?: string; preset?: string; datasetFlag?: boolean; numClasses?: number } = {},
): Network {
  const family = str(v, 'network', defaults.network);
  if (!family) throw new UsageError(`--network is required; allowed ${FAMILIES.join(', ')}`);
  const dataset =
    defaults.datasetFlag && str(v, 'dataset') !== undefined
      ? DATASET_INPUTS[
          oneOf(v, 'dataset', Object.keys(DATASET_INPUTS) as DatasetName[]) as DatasetName
        ]
      : undefined;
  return buildNetwork({
    family,
    preset: oneOf(
      v,
      'preset',
      Object.keys(PRESETS) as (keyof typeof PRESETS)[],
      (defaults.preset ?? 'imagenet') as keyof typeof PRESETS,
    ),
    width: num(v, 'width', { min: 0.1, max: 2 }),
    layout: oneOf(v, 'layout', ['metapruning', 'standard'] as const),
    inputSize: num(v, 'input-size', { min: 8, max: 1024, integer: true }),
    inputChannels: num(
      v,
      'input-channels',
      { min: 1, max: 16, integer: true },
      dataset?.inputChannels,
    ),
    numClasses: num(
      v,
      'classes',
      { min: 2, max: 100000, integer: true },
      defaults.numClasses ?? dataset?.numClasses,
    ),
    lastStageFull: v['prune-last-stage'] === true ? false : undefined,
  });
}

/** `--encoding a,b,...` or `--uniform s`; the full network when neither is given. */
export function encodingFromFlags(net: Network, v: Values): Encoding {
  const enc = str(v, 'encoding');
  const uni = str(v, 'uniform');
  if (enc !== undefined && uni !== undefined)
    throw new UsageError('give either --encoding or --uniform, not both');
  if (enc !== undefined) return parseEncoding(net, enc, '--encoding');
  if (uni !== undefined) {
    const s = num(v, 'uniform', { min: 0.1, max: 1 }) as number;
    return uniformEncoding(net, s, '--uniform');
  }
  return fullEncoding(net);
}
