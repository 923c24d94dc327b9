/**
 * Request validation: every field is checked, and the first bad one is reported as
 * INVALID_ARGUMENT naming it with its proto path ("config.network.width_multiplier",
 * "encoding.genes[5]").
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildNetwork,
  type Encoding,
  type Network,
  type NetworkSpec,
  validateEncoding,
} from '@metaprune/core';
import {
  CIFAR10_TRAIN_FILES,
  DatasetError,
  IDX_FILES,
  IMAGE_FOLDER_PREFIX,
  scanImageFolderSync,
} from '@metaprune/data';
import {
  common,
  familyFromId,
  familyToId,
  presetFromId,
  presetToId,
  type weightgen,
} from '@metaprune/proto';
import { FailedPreconditionError, InvalidArgumentError, requireNumber } from '@metaprune/runtime';
import { toInvalidArgument } from './errors.js';
import { resolveInside } from './paths.js';
import type { ResolvedTrainingConfig } from './types.js';

const CORE_TO_PROTO_FIELD: Record<string, string> = {
  network: 'family',
  preset: 'preset',
  width: 'width_multiplier',
  inputSize: 'input_size',
  inputChannels: 'input_channels',
  numClasses: 'num_classes',
  layout: 'layout',
};

/** What the service knows about a dataset before loading it. */
export interface DatasetInfo {
  format: 'fashion-mnist' | 'cifar10' | 'imagefolder';
  dir: string;
  imageShape: [number, number, number];
  numClasses: number;
  trainImages: number;
}

const FORMATS: Record<'fashion-mnist' | 'cifar10', Omit<DatasetInfo, 'format' | 'dir'>> = {
  'fashion-mnist': { imageShape: [28, 28, 1], numClasses: 10, trainImages: 60_000 },
  cifar10: { imageShape: [32, 32, 3], numClasses: 10, trainImages: 50_000 },
};

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
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

/**
 * Resolves a dataset id: "fashion-mnist" and "cifar10" are read from <dataRoot>/<name>;
 * "dir:<path>" is a directory below dataRoot holding either format.
 */
export function resolveDataset(
  id: string,
  dataRoot: string,
  field = 'config.dataset',
): DatasetInfo {
  if (id === '') {
    throw new InvalidArgumentError(
      field,
      'is required ("fashion-mnist", "cifar10", "dir:<path>" or "imagefolder:<path>")',
    );
  }
  if (id === 'fashion-mnist' || id === 'cifar10') {
    const dir = join(dataRoot, id);
    const ok = id === 'fashion-mnist' ? hasIdx(dir) : hasCifar(dir);
    if (!ok) {
      throw new FailedPreconditionError(
        `dataset ${id} is not installed on the weight generator: no ${
          id === 'fashion-mnist' ? `${IDX_FILES.trainImages}.gz` : CIFAR10_TRAIN_FILES[0]
        } in ${dir}${id === 'fashion-mnist' ? ' (Debian package dataset-fashion-mnist)' : ''}`,
      );
    }
    return { format: id, dir, ...FORMATS[id] };
  }
  if (id.startsWith(IMAGE_FOLDER_PREFIX)) {
    // An image folder below the data root: classes from its folders, images decoded at
    // training time to the network's input size and channels (so any 1 or 3 fits).
    const dir = resolveInside(dataRoot, id.slice(IMAGE_FOLDER_PREFIX.length), field);
    try {
      const scan = scanImageFolderSync(dir);
      return {
        format: 'imagefolder',
        dir,
        imageShape: [0, 0, 3],
        numClasses: scan.classNames.length,
        trainImages: scan.train.length,
      };
    } catch (err) {
      if (err instanceof DatasetError) {
        throw new InvalidArgumentError(field, err.message.replace(dir, JSON.stringify(id)));
      }
      throw err;
    }
  }
  if (id.startsWith('dir:')) {
    const dir = resolveInside(dataRoot, id.slice(4), field);
    if (!isDir(dir))
      throw new InvalidArgumentError(
        field,
        `${JSON.stringify(id)}: no such directory below the data root`,
      );
    if (hasIdx(dir)) return { format: 'fashion-mnist', dir, ...FORMATS['fashion-mnist'] };
    if (hasCifar(dir)) return { format: 'cifar10', dir, ...FORMATS.cifar10 };
    throw new InvalidArgumentError(
      field,
      `${JSON.stringify(id)} holds neither IDX files (${IDX_FILES.trainImages}.gz, ...) nor CIFAR-10 binary batches (${CIFAR10_TRAIN_FILES[0]}, ...)`,
    );
  }
  throw new InvalidArgumentError(
    field,
    `unknown dataset ${JSON.stringify(id.slice(0, 100))}; allowed "fashion-mnist", "cifar10", "dir:<path below the data root>", "imagefolder:<path below the data root>"`,
  );
}

/**
 * A proto NetworkSpec as a core spec. Zero fields take defaults: width 1, the preset's input
 * size, and (when `dataset` is given) the dataset's channels and classes, else the preset's.
 */
export function specFromProto(
  spec: common.NetworkSpec | undefined,
  field: string,
  dataset?: DatasetInfo,
): NetworkSpec {
  if (!spec) throw new InvalidArgumentError(field, 'is required');
  let family: string;
  try {
    family = familyToId(spec.family);
  } catch {
    throw new InvalidArgumentError(
      `${field}.family`,
      `must be set to one of MOBILENET_V1, MOBILENET_V2, RESNET50 (got ${spec.family})`,
    );
  }
  let preset: string;
  try {
    preset = presetToId(spec.preset);
  } catch {
    throw new InvalidArgumentError(
      `${field}.preset`,
      `must be set to one of IMAGENET, SMALL (got ${spec.preset})`,
    );
  }
  requireNumber(`${field}.width_multiplier`, spec.widthMultiplier, { min: 0, max: 4 });
  const num = (name: string, v: number, max: number) =>
    requireNumber(`${field}.${name}`, v, { min: 0, max, integer: true });
  num('input_size', spec.inputSize, 1024);
  num('input_channels', spec.inputChannels, 16);
  num('num_classes', spec.numClasses, 100_000);
  try {
    const net = buildNetwork({
      family,
      preset,
      width: spec.widthMultiplier === 0 ? 1 : spec.widthMultiplier,
      ...(spec.inputSize ? { inputSize: spec.inputSize } : {}),
      ...(spec.inputChannels
        ? { inputChannels: spec.inputChannels }
        : dataset
          ? { inputChannels: dataset.imageShape[2] }
          : {}),
      ...(spec.numClasses
        ? { numClasses: spec.numClasses }
        : dataset
          ? { numClasses: dataset.numClasses }
          : {}),
      lastStageFull: spec.keepLastStageFull,
    });
    return net.spec;
  } catch (err) {
    throw toInvalidArgument(err, (f) => `${field}.${CORE_TO_PROTO_FIELD[f] ?? f}`);
  }
}

/** A core spec as a proto NetworkSpec (every field explicit). */
export function specToProto(spec: NetworkSpec): common.NetworkSpec {
  return common.NetworkSpec.fromPartial({
    family: familyFromId(spec.family),
    preset: presetFromId(spec.preset),
    widthMultiplier: spec.width,
    inputSize: spec.inputSize,
    inputChannels: spec.inputChannels,
    numClasses: spec.numClasses,
    keepLastStageFull: spec.lastStageFull,
  });
}

/** The local `metaprune train` defaults (batch 64, lr 0.4), tuned on Fashion-MNIST. */
export const DEFAULT_BATCH_SIZE = 64;
/** 0.4 at batch 64, scaled linearly with the batch size. */
export function defaultLearningRate(batchSize: number): number {
  return (0.4 * batchSize) / 64;
}
export const DEFAULT_HIDDEN_UNITS = 32;
/** The label smoothing the engine trains with (DESIGN.md 1.3). */
export const ENGINE_LABEL_SMOOTHING = 0.1;
/** Sub-val images per class when validation_images is 0 (5000 for 10 classes, DESIGN.md 3). */
export const DEFAULT_VAL_PER_CLASS = 500;

/** Validates a TrainingConfig and fills in every default. */
export function resolveTrainingConfig(
  cfg: weightgen.TrainingConfig | undefined,
  dataRoot: string,
): ResolvedTrainingConfig {
  if (!cfg) throw new InvalidArgumentError('config', 'is required');
  const dataset = resolveDataset(cfg.dataset, dataRoot);
  const network = specFromProto(cfg.network, 'config.network', dataset);
  if (network.numClasses !== dataset.numClasses) {
    throw new InvalidArgumentError(
      'config.network.num_classes',
      `${network.numClasses} does not match the ${dataset.numClasses} classes of dataset ${cfg.dataset}`,
    );
  }
  const dc = dataset.imageShape[2];
  if (
    dataset.format === 'imagefolder' &&
    network.inputChannels !== 1 &&
    network.inputChannels !== 3
  ) {
    throw new InvalidArgumentError(
      'config.network.input_channels',
      `${network.inputChannels} does not fit image folder ${cfg.dataset} (allowed: 1 grey, 3 RGB)`,
    );
  }
  if (dataset.format !== 'imagefolder' && network.inputChannels !== dc && dc !== 1) {
    throw new InvalidArgumentError(
      'config.network.input_channels',
      `${network.inputChannels} does not fit dataset ${cfg.dataset} with ${dc} channels (allowed: ${dc})`,
    );
  }
  const int = (name: string, v: number, min: number, max: number) =>
    requireNumber(`config.${name}`, v, { min, max, integer: true });
  const epochs = int('epochs', cfg.epochs, 1, 1000);
  const batchSize =
    cfg.batchSize === 0 ? DEFAULT_BATCH_SIZE : int('batch_size', cfg.batchSize, 1, 8192);
  const learningRate =
    cfg.learningRate === 0
      ? defaultLearningRate(batchSize)
      : requireNumber('config.learning_rate', cfg.learningRate, { min: 0, max: 10 });
  if (!(learningRate > 0)) {
    throw new InvalidArgumentError(
      'config.learning_rate',
      `must be in (0, 10], got ${learningRate}`,
    );
  }
  const frac = (name: string, v: number) => {
    requireNumber(`config.${name}`, v, { min: 0, max: 1 });
    if (v >= 1) throw new InvalidArgumentError(`config.${name}`, `must be in [0, 1), got ${v}`);
    return v;
  };
  const momentum = frac('momentum', cfg.momentum);
  // What the engine trains with today: label smoothing 0.1 (0 = that default), no weight
  // decay, the layer graph's generator widths. Other values are refused rather than ignored.
  frac('label_smoothing', cfg.labelSmoothing);
  const labelSmoothing = cfg.labelSmoothing === 0 ? ENGINE_LABEL_SMOOTHING : cfg.labelSmoothing;
  if (Math.abs(labelSmoothing - ENGINE_LABEL_SMOOTHING) > 1e-9) {
    throw new InvalidArgumentError(
      'config.label_smoothing',
      `${labelSmoothing} is not supported: the engine trains with ${ENGINE_LABEL_SMOOTHING} (or give 0 for that default)`,
    );
  }
  const weightDecay = frac('weight_decay', cfg.weightDecay);
  if (weightDecay !== 0) {
    throw new InvalidArgumentError(
      'config.weight_decay',
      `${weightDecay} is not supported: the engine trains without weight decay (the reference's choice for generators); give 0`,
    );
  }
  const seed = int('seed', cfg.seed, 0, 0xffff_ffff);
  const maxStepsPerEpoch = int('max_steps_per_epoch', cfg.maxStepsPerEpoch, 0, 1e9);
  int('validation_images', cfg.validationImages, 0, 1e6);
  const validationImages =
    cfg.validationImages === 0 ? DEFAULT_VAL_PER_CLASS * dataset.numClasses : cfg.validationImages;
  if (validationImages > dataset.trainImages / 2) {
    throw new InvalidArgumentError(
      'config.validation_images',
      `${validationImages} is more than half of the ${dataset.trainImages} training images of ${cfg.dataset}`,
    );
  }
  const hiddenUnits =
    cfg.hiddenUnits === 0 ? DEFAULT_HIDDEN_UNITS : int('hidden_units', cfg.hiddenUnits, 1, 4096);
  if (hiddenUnits !== DEFAULT_HIDDEN_UNITS) {
    throw new InvalidArgumentError(
      'config.hidden_units',
      `${hiddenUnits} is not supported: generator widths come from the network's layer graph (${DEFAULT_HIDDEN_UNITS} for single-input layers, 64 for MobileNetV2 blocks); give 0 or ${DEFAULT_HIDDEN_UNITS}`,
    );
  }
  return {
    network,
    dataset: cfg.dataset,
    dataFormat: dataset.format,
    dataDir: dataset.dir,
    epochs,
    batchSize,
    learningRate,
    momentum,
    labelSmoothing,
    weightDecay,
    seed,
    maxStepsPerEpoch,
    validationImages,
    hiddenUnits,
    ...(cfg.noWeightPrediction ? { noWeightPrediction: true } : {}),
  };
}

/** The proto TrainingConfig of a resolved config (every default explicit). */
export function trainingConfigToProto(c: ResolvedTrainingConfig): weightgen.TrainingConfig {
  return {
    network: specToProto(c.network),
    dataset: c.dataset,
    epochs: c.epochs,
    batchSize: c.batchSize,
    learningRate: c.learningRate,
    momentum: c.momentum,
    labelSmoothing: c.labelSmoothing,
    weightDecay: c.weightDecay,
    seed: c.seed,
    maxStepsPerEpoch: c.maxStepsPerEpoch,
    validationImages: c.validationImages,
    hiddenUnits: c.hiddenUnits,
    noWeightPrediction: c.noWeightPrediction === true,
  };
}

/** Checks a request's encoding against a network; INVALID_ARGUMENT naming the gene. */
export function encodingFor(
  net: Network,
  encoding: common.Encoding | undefined,
  field = 'encoding',
): Encoding {
  if (!encoding) throw new InvalidArgumentError(field, 'is required');
  try {
    return validateEncoding(net, encoding.genes, `${field}.genes`);
  } catch (err) {
    throw toInvalidArgument(err);
  }
}

/** Same network? (Used when continuing a PruningNet with a new job.) */
export function sameSpec(a: NetworkSpec, b: NetworkSpec): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
