/**
 * Export of plain models as standard tfjs Layers models (`model.json` + one weights file),
 * written and read with our own file IOHandlers, so neither tfjs-node nor a custom layer is
 * needed: plain `@tensorflow/tfjs` loads the result with `tf.loadLayersModel`.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Encoding, Network, NetworkSpec } from '@metaprune/core';
import { countCost, geneChannels } from '@metaprune/core';
import * as tf from '@tensorflow/tfjs';
import type { InputPreprocess } from './model.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_FILE = 'group1-shard1of1.bin';
export const METADATA_FORMAT = 'metaprune-plain/1';

/** What an exported model's `userDefinedMetadata` records. */
export interface PlainModelMetadata {
  format: typeof METADATA_FORMAT;
  /** Network family, preset and width multiplier (as on the command line). */
  network: NetworkSpec['family'];
  preset: NetworkSpec['preset'];
  width: number;
  /** The full network spec (input size / channels, classes, layout ...). */
  spec: NetworkSpec;
  /** Scale id per gene, and the channels it gives per gene. */
  encoding: number[];
  channels: number[];
  macs: number;
  params: number;
  /** Model input: `[null, h, w, c]`, NHWC, pixels scaled to [0, 1]. */
  inputShape: [null, number, number, number];
  /** The preprocessing the model contains (padding / resizing, normalisation). */
  preprocess: InputPreprocess | null;
  classNames: string[];
  /** What the model outputs per class. */
  output: 'probabilities' | 'logits';
  dataset?: string;
  /** Test-set top-1 of the retrained model, when known. */
  test_top1?: number;
  [key: string]: unknown;
}

export interface MetadataInput {
  preprocess?: InputPreprocess | null;
  classNames: readonly string[];
  output?: 'probabilities' | 'logits';
  dataset?: string;
  test_top1?: number;
  /** Anything else to record (JSON values). */
  extra?: Record<string, unknown>;
}

/** Builds the metadata of a plain model of `net` at `encoding`. */
export function plainModelMetadata(
  net: Network,
  encoding: Encoding,
  input: MetadataInput,
): PlainModelMetadata {
  const spec = net.spec;
  const cost = countCost(net, encoding);
  const pre = input.preprocess ?? null;
  const shape = pre ? pre.inputShape : [spec.inputSize, spec.inputSize, spec.inputChannels];
  if (input.classNames.length !== spec.numClasses) {
    throw new Error(
      `classNames has ${input.classNames.length} names, the network has ${spec.numClasses} classes`,
    );
  }
  const meta: PlainModelMetadata = {
    ...(input.extra ?? {}),
    format: METADATA_FORMAT,
    network: spec.family,
    preset: spec.preset,
    width: spec.width,
    spec: { ...spec },
    encoding: [...encoding],
    channels: geneChannels(net, encoding),
    macs: cost.macs,
    params: cost.params,
    inputShape: [null, shape[0] as number, shape[1] as number, shape[2] as number],
    preprocess: pre
      ? {
          inputShape: [...pre.inputShape] as [number, number, number],
          outputShape: [...pre.outputShape] as [number, number, number],
          mean: [...pre.mean],
          std: [...pre.std],
          resize: pre.resize,
          pad: [...pre.pad] as [number, number, number, number],
        }
      : null,
    classNames: [...input.classNames],
    output: input.output ?? 'probabilities',
  };
  if (input.dataset !== undefined) meta.dataset = input.dataset;
  if (input.test_top1 !== undefined) meta.test_top1 = input.test_top1;
  return meta;
}

/** Writes `data` to `path` through a temporary file in the same directory and a rename. */
export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * A tfjs SaveHandler writing `model.json` and `group1-shard1of1.bin` into `dir` (created
 * if needed). The weights file is written first and `model.json` last, each atomically
 * (temporary file + rename), so a reader never sees a `model.json` without its weights.
 */
export function fileSaveHandler(dir: string, metadata?: Record<string, unknown>): tf.io.IOHandler {
  return tf.io.withSaveHandler(async (artifacts) => {
    if (!(artifacts.modelTopology && artifacts.weightSpecs && artifacts.weightData)) {
      throw new Error('fileSaveHandler: the model artifacts lack a topology or weights');
    }
    await mkdir(dir, { recursive: true });
    const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
    await writeAtomic(join(dir, WEIGHTS_FILE), weights);
    const userDefinedMetadata = metadata ?? artifacts.userDefinedMetadata;
    const json: tf.io.ModelJSON = {
      modelTopology: artifacts.modelTopology,
      format: artifacts.format ?? 'layers-model',
      generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
      convertedBy: artifacts.convertedBy ?? null,
      weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs }],
      ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
      ...(userDefinedMetadata
        ? {
            userDefinedMetadata: userDefinedMetadata as NonNullable<
              tf.io.ModelJSON['userDefinedMetadata']
            >,
          }
        : {}),
    };
    await writeAtomic(join(dir, MODEL_JSON), JSON.stringify(json));
    return {
      modelArtifactsInfo: {
        dateSaved: new Date(),
        modelTopologyType: 'JSON',
        modelTopologyBytes: JSON.stringify(artifacts.modelTopology).length,
        weightSpecsBytes: JSON.stringify(artifacts.weightSpecs).length,
        weightDataBytes: weights.byteLength,
      },
    };
  });
}

const DTYPE_BYTES: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  complex64: 8,
  uint8: 1,
  uint16: 2,
  float16: 2,
};

/** Bytes the weight specs need (null when a spec's size cannot be known, e.g. strings). */
function expectedBytes(specs: readonly tf.io.WeightsManifestEntry[]): number | null {
  let total = 0;
  for (const s of specs) {
    const size = s.shape.reduce((a, b) => a * b, 1);
    const per = DTYPE_BYTES[s.quantization?.dtype ?? s.dtype];
    if (per === undefined) return null;
    total += size * per;
  }
  return total;
}

/**
 * A tfjs LoadHandler reading a `model.json` (path or its directory) and the weight files
 * its manifest names (relative to it). Refuses paths that leave the model's directory.
 */
export function fileLoadHandler(path: string): tf.io.IOHandler {
  const jsonPath = path.endsWith('.json') ? path : join(path, MODEL_JSON);
  const base = dirname(resolve(jsonPath));
  return {
    load: async () => {
      let text: string;
      try {
        text = await readFile(jsonPath, 'utf8');
      } catch (e) {
        throw new Error(`cannot read ${jsonPath}: ${(e as Error).message}`);
      }
      let json: tf.io.ModelJSON;
      try {
        json = JSON.parse(text) as tf.io.ModelJSON;
      } catch (e) {
        throw new Error(`${jsonPath} is not valid JSON: ${(e as Error).message}`);
      }
      if (json.modelTopology == null || !Array.isArray(json.weightsManifest)) {
        throw new Error(
          `${jsonPath} is not a tfjs model.json (no modelTopology / weightsManifest)`,
        );
      }
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const parts: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const p of group.paths) {
            const file = resolve(base, p);
            if (!file.startsWith(base + sep))
              throw new Error(`${jsonPath}: weight path ${p} leaves ${base}`);
            const buf = await readFile(file);
            parts.push(
              buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer,
            );
          }
        }
        const need = expectedBytes(specs);
        const have = parts.reduce((n, b) => n + b.byteLength, 0);
        // Checked here, before tfjs builds the model (a failed load would leak its variables).
        if (need !== null && need !== have) {
          throw new Error(
            `${jsonPath}: the weight files hold ${have} bytes, the manifest needs ${need} (truncated or mismatched ${manifest.flatMap((g) => g.paths).join(', ')})`,
          );
        }
        return [specs, tf.io.CompositeArrayBuffer.join(parts)];
      });
    },
  };
}

export interface ExportOptions {
  /** Append a softmax so the exported model outputs probabilities (default true). */
  softmax?: boolean;
}

/**
 * Writes `model` (a plain model with logits output) to `dir` as a standard tfjs Layers
 * model with `metadata` as `userDefinedMetadata`. By default a `softmax` activation layer
 * is appended (the in-memory model is not changed) and `metadata.output` is set to match.
 */
export async function exportPlainModel(
  model: tf.LayersModel,
  dir: string,
  metadata: PlainModelMetadata | Record<string, unknown>,
  options: ExportOptions = {},
): Promise<tf.io.SaveResult> {
  const softmax = options.softmax ?? true;
  const meta = { ...metadata, output: softmax ? 'probabilities' : 'logits' };
  const target = softmax ? withSoftmaxOutput(model) : model;
  return target.save(fileSaveHandler(dir, meta));
}

/**
 * `model` with a `softmax` activation layer appended (named `probabilities`). Shares the
 * model's layers: never dispose the result, that would dispose the shared weights.
 */
export function withSoftmaxOutput(model: tf.LayersModel): tf.LayersModel {
  const out = model.outputs[0] as tf.SymbolicTensor;
  const probs = tf.layers
    .activation({ activation: 'softmax', name: 'probabilities' })
    .apply(out) as tf.SymbolicTensor;
  return tf.model({ inputs: model.inputs, outputs: probs, name: model.name });
}

export interface LoadedModel {
  model: tf.LayersModel;
  /** The model's `userDefinedMetadata` (null when it has none). */
  metadata: PlainModelMetadata | null;
}

/** Loads an exported model with plain `tf.loadLayersModel`. */
export async function loadExportedModel(dir: string): Promise<LoadedModel> {
  const model = await tf.loadLayersModel(fileLoadHandler(dir));
  const meta = model.getUserDefinedMetadata() as PlainModelMetadata | undefined;
  return { model, metadata: meta ?? null };
}
