/**
 * Loads an exported model of either form with plain tfjs, the way a user does:
 * `tf.loadGraphModel` for the inference form, `tf.loadLayersModel` for the training form.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { fileLoadHandler, MODEL_JSON } from '../plain/export.js';
import { NotAnExportError } from './convert.js';

export interface DeployedModel {
  readonly form: 'inference' | 'training';
  /** `userDefinedMetadata` (empty object when none). */
  readonly metadata: Record<string, unknown>;
  /** Input `[null, h, w, c]`. */
  readonly inputShape: (number | null)[];
  /** The model's output for `x` (the caller disposes it). */
  predict(x: tf.Tensor): tf.Tensor;
  dispose(): void;
}

/** Reads `dir/model.json` and loads it; NotAnExportError with one line when it is not an export. */
export async function loadDeployedModel(dir: string): Promise<DeployedModel> {
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(await readFile(join(dir, MODEL_JSON), 'utf8')) as tf.io.ModelJSON;
  } catch (e) {
    throw new NotAnExportError(`${dir} is not an exported model (${(e as Error).message})`);
  }
  const meta = (json.userDefinedMetadata ?? {}) as Record<string, unknown>;
  if (
    typeof meta['format'] !== 'string' ||
    !String(meta['format']).startsWith('metaprune-plain/')
  ) {
    throw new NotAnExportError(
      `${dir}/model.json was not exported by metaprune (no metadata format)`,
    );
  }
  const shape = meta['inputShape'] as (number | null)[] | undefined;
  if (!Array.isArray(shape) || shape.length !== 4) {
    throw new NotAnExportError(`${dir}/model.json: metadata.inputShape is missing`);
  }
  const graph = json.format === 'graph-model';
  const model = graph
    ? await tf.loadGraphModel(fileLoadHandler(dir))
    : await tf.loadLayersModel(fileLoadHandler(dir));
  return {
    form: graph ? 'inference' : 'training',
    metadata: meta,
    inputShape: shape,
    predict: (x) => model.predict(x) as tf.Tensor,
    dispose: () => model.dispose(),
  };
}
