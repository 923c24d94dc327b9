import { ValidationError } from '../errors.js';
import { mobilenetV1 } from './mobilenetv1.js';
import { mobilenetV2 } from './mobilenetv2.js';
import { resnet50 } from './resnet50.js';
import type { Family, Network, NetworkSpec, Preset } from './types.js';

export const FAMILIES: readonly Family[] = ['mobilenetv1', 'mobilenetv2', 'resnet50'];
export const PRESETS: Readonly<
  Record<Preset, { inputSize: number; inputChannels: number; numClasses: number; about: string }>
> = {
  imagenet: {
    inputSize: 224,
    inputChannels: 3,
    numClasses: 1000,
    about: '224x224x3, 1000 classes, ImageNet strides',
  },
  small: {
    inputSize: 32,
    inputChannels: 3,
    numClasses: 10,
    about: '32x32 (28x28 padded), 10 classes, CIFAR-style strides',
  },
};
export const WIDTH_RANGE = { min: 0.1, max: 2 } as const;
export const INPUT_SIZE_RANGE = { min: 8, max: 1024 } as const;

const BUILDERS: Record<Family, (spec: NetworkSpec) => Network> = {
  mobilenetv1: mobilenetV1,
  mobilenetv2: mobilenetV2,
  resnet50: resnet50,
};

export type NetworkSpecInput = { family: string } & Partial<
  Omit<NetworkSpec, 'family' | 'preset'>
> & {
    preset?: string;
  };

function inRange(field: string, v: number, min: number, max: number, integer: boolean): number {
  if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new ValidationError(
      field,
      `${v} is out of range; allowed ${integer ? 'integers ' : ''}${min}..${max}`,
    );
  }
  return v;
}

/** Fills defaults from the preset and validates every field, naming the one that is wrong. */
export function resolveSpec(input: NetworkSpecInput): NetworkSpec {
  const family = input.family as Family;
  if (!FAMILIES.includes(family)) {
    throw new ValidationError(
      'network',
      `unknown network "${input.family}"; allowed ${FAMILIES.join(', ')}`,
    );
  }
  const presetName = (input.preset ?? 'imagenet') as Preset;
  const preset = PRESETS[presetName];
  if (!preset) {
    throw new ValidationError(
      'preset',
      `unknown preset "${input.preset}"; allowed ${Object.keys(PRESETS).join(', ')}`,
    );
  }
  const layout = input.layout ?? 'metapruning';
  if (layout !== 'metapruning' && layout !== 'standard') {
    throw new ValidationError(
      'layout',
      `unknown layout "${layout}"; allowed metapruning, standard`,
    );
  }
  return Object.freeze({
    family,
    preset: presetName,
    width: inRange('width', input.width ?? 1, WIDTH_RANGE.min, WIDTH_RANGE.max, false),
    inputSize: inRange(
      'inputSize',
      input.inputSize ?? preset.inputSize,
      INPUT_SIZE_RANGE.min,
      INPUT_SIZE_RANGE.max,
      true,
    ),
    inputChannels: inRange(
      'inputChannels',
      input.inputChannels ?? preset.inputChannels,
      1,
      16,
      true,
    ),
    numClasses: inRange('numClasses', input.numClasses ?? preset.numClasses, 2, 100_000, true),
    layout,
    lastStageFull: input.lastStageFull ?? true,
  });
}

/**
 * Whether two resolved specs name the same network, field by field. The one spec equality
 * of the project: services, the CLI and the latency tables all call this.
 */
export function sameSpec(a: NetworkSpec, b: NetworkSpec): boolean {
  return (
    a.family === b.family &&
    a.preset === b.preset &&
    a.width === b.width &&
    a.inputSize === b.inputSize &&
    a.inputChannels === b.inputChannels &&
    a.numClasses === b.numClasses &&
    a.layout === b.layout &&
    a.lastStageFull === b.lastStageFull
  );
}

const cache = new Map<string, Network>();

/** The layer graph and gene layout of a network (memoised: specs are immutable). */
export function buildNetwork(input: NetworkSpecInput | NetworkSpec): Network {
  const spec = resolveSpec(input);
  const key = JSON.stringify(spec);
  let net = cache.get(key);
  if (!net) {
    net = BUILDERS[spec.family](spec);
    cache.set(key, net);
  }
  return net;
}
