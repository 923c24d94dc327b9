/**
 * Export in either form: `inference` (default for users: folded graph model, see
 * convert.ts) or `training` (the tfjs Layers model `exportPlainModel` writes, which can be
 * trained further and which the converter turns into the inference form later).
 */
import type * as tf from '@tensorflow/tfjs';
import { type ExportOptions, exportPlainModel, withSoftmaxOutput } from '../plain/export.js';
import { artifactsOf, type ExportForm, writeInferenceForm } from './convert.js';

export interface ExportFormOptions extends ExportOptions {
  /** Default `inference`. */
  form?: ExportForm;
}

/** Writes `model` (a plain model with logits output) into `dir`; returns the written metadata. */
export async function exportModel(
  model: tf.LayersModel,
  dir: string,
  metadata: Record<string, unknown>,
  options: ExportFormOptions = {},
): Promise<Record<string, unknown>> {
  const softmax = options.softmax ?? true;
  if ((options.form ?? 'inference') === 'training') {
    await exportPlainModel(model, dir, { ...metadata, form: 'training' }, { softmax });
    return { ...metadata, form: 'training', output: softmax ? 'probabilities' : 'logits' };
  }
  const meta = { ...metadata, output: softmax ? 'probabilities' : 'logits' };
  const artifacts = await artifactsOf(softmax ? withSoftmaxOutput(model) : model, meta);
  return writeInferenceForm(artifacts, dir, meta);
}
