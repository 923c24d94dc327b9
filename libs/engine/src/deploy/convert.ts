/**
 * The inference form of an exported model: the training form's artifacts (a tfjs Layers
 * model, as `exportPlainModel` writes it) folded (fold.ts) and written as a tfjs graph
 * model (graph-model.ts). Works on a model in memory (export) and on a directory written
 * before (the converter for models exported in the training form).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { fileLoadHandler, fileSaveHandler, MODEL_JSON, writeAtomic } from '../plain/export.js';
import {
  foldTrainingForm,
  type InferenceGraph,
  type KerasLayer,
  UnsupportedModelError,
} from './fold.js';
import { toGraphModel } from './graph-model.js';
import { deployReadme } from './readme.js';

export const FORMS = ['inference', 'training'] as const;
export type ExportForm = (typeof FORMS)[number];

/** What the inference form's metadata adds to the training form's. */
export interface RuntimeInfo {
  /** The runtime a user runs the model with. */
  library: '@tensorflow/tfjs';
  /** How to load it: `tf.loadGraphModel` (inference form) or `tf.loadLayersModel`. */
  format: 'graph-model' | 'layers-model';
  /** Backend the figures were taken on (any tfjs backend runs the model). */
  backend: 'wasm';
  /** npm packages to import beside tfjs (none: every op is a stock tfjs kernel). */
  imports: string[];
}

export const INFERENCE_RUNTIME: RuntimeInfo = Object.freeze({
  library: '@tensorflow/tfjs',
  format: 'graph-model',
  backend: 'wasm',
  imports: [],
}) as RuntimeInfo;

export class NotAnExportError extends Error {
  override name = 'NotAnExportError';
}

function decodeFloatWeights(artifacts: tf.io.ModelArtifacts): Map<string, Float32Array> {
  if (!artifacts.weightSpecs || !artifacts.weightData) {
    throw new NotAnExportError('the model has no weights');
  }
  const named = tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs);
  const out = new Map<string, Float32Array>();
  for (const [name, t] of Object.entries(named)) {
    out.set(name, Float32Array.from(t.dataSync() as Float32Array));
    t.dispose();
  }
  return out;
}

/** Keras layers of a training-form topology. */
export function kerasLayers(topology: unknown): KerasLayer[] {
  const t = topology as { model_config?: unknown; config?: { layers?: unknown } } | null;
  const cfg = (t?.model_config ?? t) as { config?: { layers?: unknown } } | null;
  const layers = cfg?.config?.layers;
  if (!Array.isArray(layers)) {
    throw new NotAnExportError('model.json has no Keras layers (not a training-form export)');
  }
  return layers as KerasLayer[];
}

/** Folds training-form artifacts into the inference graph. */
export function foldArtifacts(artifacts: tf.io.ModelArtifacts): InferenceGraph {
  return foldTrainingForm(kerasLayers(artifacts.modelTopology), decodeFloatWeights(artifacts));
}

/** Metadata of the inference form: the training form's, plus form, runtime and fold stats. */
export function inferenceMetadata(
  meta: Record<string, unknown> | undefined,
  g: InferenceGraph,
): Record<string, unknown> {
  return {
    ...(meta ?? {}),
    form: 'inference',
    runtime: { ...INFERENCE_RUNTIME, imports: [...INFERENCE_RUNTIME.imports] },
    folding: { ...g.stats, inferenceOps: g.ops.length },
  };
}

/** Writes the inference form of training-form `artifacts` into `dir` (model.json + weights + README). */
export async function writeInferenceForm(
  artifacts: tf.io.ModelArtifacts,
  dir: string,
  metadata?: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const g = foldArtifacts(artifacts);
  const graph = toGraphModel(g);
  const meta = inferenceMetadata(metadata ?? artifacts.userDefinedMetadata, g);
  const handler = fileSaveHandler(dir, meta);
  await handler.save?.({
    modelTopology: graph.modelTopology as unknown as tf.io.ModelJSON['modelTopology'],
    format: 'graph-model',
    generatedBy: `metaprune (folded from ${artifacts.generatedBy ?? 'a tfjs Layers model'})`,
    convertedBy: 'metaprune deploy/convert',
    weightSpecs: graph.weightSpecs,
    weightData: graph.weightData,
  });
  await deployReadme(dir, meta);
  return meta;
}

/** Reads a training-form export (its model.json and weights) without building the model. */
export async function readTrainingForm(dir: string): Promise<tf.io.ModelArtifacts> {
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(await readFile(join(dir, MODEL_JSON), 'utf8')) as tf.io.ModelJSON;
  } catch (e) {
    throw new NotAnExportError(`${dir} is not an exported model: ${(e as Error).message}`);
  }
  if (json.format === 'graph-model') {
    throw new NotAnExportError(`${dir} is already in the inference form (a graph model)`);
  }
  const artifacts = await fileLoadHandler(dir).load?.();
  if (!artifacts) throw new NotAnExportError(`${dir}: cannot load`);
  kerasLayers(artifacts.modelTopology);
  return artifacts;
}

/** Converter: a training-form export in `from` -> its inference form in `to`. */
export async function convertToInference(
  from: string,
  to: string,
): Promise<Record<string, unknown>> {
  const artifacts = await readTrainingForm(from);
  try {
    return await writeInferenceForm(artifacts, to);
  } catch (e) {
    if (e instanceof UnsupportedModelError) {
      throw new NotAnExportError(`${from}: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

/** Saves `model` (training form) in memory and returns its artifacts. */
export async function artifactsOf(
  model: tf.LayersModel,
  metadata?: Record<string, unknown>,
): Promise<tf.io.ModelArtifacts> {
  let captured: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      captured = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!captured) throw new Error('model.save produced no artifacts');
  if (metadata)
    captured.userDefinedMetadata = metadata as NonNullable<
      tf.io.ModelArtifacts['userDefinedMetadata']
    >;
  return captured;
}

/** Merges `patch` into the `userDefinedMetadata` of the export in `dir` (and its README). */
export async function updateDeployedMetadata(
  dir: string,
  patch: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const path = join(dir, MODEL_JSON);
  const json = JSON.parse(await readFile(path, 'utf8')) as tf.io.ModelJSON;
  const meta = { ...((json.userDefinedMetadata ?? {}) as Record<string, unknown>), ...patch };
  json.userDefinedMetadata = meta as NonNullable<tf.io.ModelJSON['userDefinedMetadata']>;
  await writeAtomic(path, JSON.stringify(json));
  if (json.format === 'graph-model') await deployReadme(dir, meta);
  return meta;
}
