/**
 * `metaprune convert`: a training-form export (tfjs Layers model, e.g. the models of
 * docs/results) -> its inference form (folded tfjs graph model), checked to predict the
 * same on the test set and timed as delivered.
 */
import { resolve } from 'node:path';
import type { Encoding, NetworkSpec } from '@metaprune/core';
import { loadDataset } from '@metaprune/data';
import { num, parseFlags, requireStr, str } from '../args.js';
import { UsageError } from '../errors.js';
import {
  latencyRecord,
  MODEL_LATENCY_OPTIONS,
  predictForModel,
  startRuntime,
} from './latency-model.js';

export const convertHelp = `metaprune convert --model DIR --out DIR [--check-images 10000] [--latency-runs 50]
                  [--device NAME | --table FILE] [--runtime tfjs-wasm] [--data-dir DIR] [--json]
  Writes the inference form of a training-form export (batch norm folded into the
  convolutions, ReLU/ReLU6 fused, input normalisation folded into the stem; a tfjs graph
  model with a README) without retraining. Then checks that both forms predict the same on
  the first --check-images Fashion-MNIST test images (max |difference of probabilities|
  <= 1e-4 and identical top-1, else exit 1; 0 skips) and records in the metadata the
  predicted latency (from --device / --table when given) and the delivered latency timed
  here (median of --latency-runs after a 2 s warm-up; 0 skips).`;

export async function convertCommand(argv: string[]): Promise<number> {
  const v = parseFlags(argv, {
    ...MODEL_LATENCY_OPTIONS,
    model: { type: 'string' },
    out: { type: 'string' },
    'check-images': { type: 'string' },
    'latency-runs': { type: 'string' },
    'data-dir': { type: 'string' },
    json: { type: 'boolean' },
  });
  const from = resolve(requireStr(v, 'model'));
  const to = resolve(requireStr(v, 'out'));
  if (from === to) throw new UsageError('--out must differ from --model');
  const check = num(v, 'check-images', { min: 0, max: 10_000, integer: true }, 10_000) as number;
  const runs = num(v, 'latency-runs', { min: 0, max: 10_000, integer: true }, 50) as number;
  const runtime = await startRuntime(v);
  const engine = await import('@metaprune/engine');
  let meta: Record<string, unknown>;
  try {
    meta = await engine.convertToInference(from, to);
  } catch (e) {
    if (e instanceof engine.NotAnExportError) throw new UsageError(`--model: ${e.message}`);
    throw e;
  }
  const out: Record<string, unknown> = {
    model: from,
    out: to,
    folding: meta['folding'],
  };
  const training = await engine.loadDeployedModel(from);
  const inference = await engine.loadDeployedModel(to);
  let ok = true;
  try {
    if (check > 0) {
      const ds = await loadDataset({ name: 'fashion-mnist', dir: str(v, 'data-dir') });
      const [, h, w, c] = inference.inputShape as number[];
      if (h !== ds.imageShape[0] || w !== ds.imageShape[1] || c !== ds.imageShape[2]) {
        throw new UsageError(`--model takes ${h}x${w}x${c} images, not Fashion-MNIST's`);
      }
      const agree = engine.comparePredictions(
        training,
        inference,
        ds.test.images.subarray(0, check * h * w * c),
        [h, w, c] as [number, number, number],
        { scale: 1 / 255 },
      );
      out['check'] = agree;
      ok = agree.maxAbsDiff <= 1e-4 && agree.top1Mismatches === 0;
    }
    const spec = meta['spec'] as NetworkSpec;
    const prediction = await predictForModel(v, spec, meta['encoding'] as Encoding);
    const timing = runs > 0 ? engine.measureDelivered(inference, { repeats: runs }) : null;
    const latency = latencyRecord(runtime, timing, prediction, meta['latency']);
    if (Object.keys(latency).length > 0) {
      meta = await engine.updateDeployedMetadata(to, { latency });
    }
    out['latency'] = latency;
  } finally {
    training.dispose();
    inference.dispose();
  }
  out['ok'] = ok;
  if (v['json']) console.log(JSON.stringify(out));
  else {
    const chk = out['check'] as
      | { images: number; maxAbsDiff: number; top1Mismatches: number }
      | undefined;
    const lat = out['latency'] as Record<string, number | undefined>;
    console.log(
      `${to}: inference form${chk ? `; ${chk.images} test images: max |Δp| ${chk.maxAbsDiff.toExponential(2)}, top-1 mismatches ${chk.top1Mismatches}` : ''}${lat['delivered_ms'] !== undefined ? `; delivered ${lat['delivered_ms'].toFixed(3)} ms (engine ${lat['engine_ms']?.toFixed(3)} ms)` : ''}${lat['predicted_ms'] !== undefined ? `, predicted ${lat['predicted_ms'].toFixed(3)} ms` : ''}`,
    );
  }
  return ok ? 0 : 1;
}
