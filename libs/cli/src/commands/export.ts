import { resolve } from 'node:path';
import { num, oneOf, parseFlags, requireStr } from '../args.js';
import { UsageError } from '../errors.js';
import { recalBatches, valBatches } from '../local-data.js';
import { ENCODING_OPTIONS } from '../network-flags.js';
import { openCheckpointCandidate } from './checkpoint-candidate.js';
import {
  latencyRecord,
  MODEL_LATENCY_OPTIONS,
  predictForModel,
  RUNTIMES,
} from './latency-model.js';

export const exportHelp = `metaprune export --checkpoint DIR (--encoding a,b,... | --uniform S) --out DIR
                 [--form inference|training] [--device NAME | --table FILE] [--latency-runs 50]
                 [--recal-batches 100] [--verify-images 512] [--backend B] [--data-dir DIR] [--json]
  Writes a candidate with the weights a trained PruningNet generates for it and BN
  statistics recomputed on sub-train batches. --form inference (default): batch norm
  folded, ReLU/ReLU6 fused, input normalisation folded into the stem, as a tfjs graph model
  (tf.loadGraphModel) with a README of the three lines a user writes; --form training: a
  tfjs LayersModel (tf.loadLayersModel) that can be trained further and converted later
  (\`metaprune convert\`). The metadata records the predicted latency (table of --device /
  --table, the one the search used) and the delivered latency timed here at export
  (tfjs wasm, batch 1, median of --latency-runs after 2 s; 0 skips). The model takes the dataset's native images (NHWC, pixels in [0, 1]); its
  userDefinedMetadata records network, preset, width, encoding, MACs, params, input shape
  and class names. Unless --verify-images 0, the written model is loaded back with
  tf.loadLayersModel and scored on sub-val next to the PruningNet's own score of the same
  candidate (they must agree).`;

export async function exportCommand(argv: string[]): Promise<number> {
  const v = parseFlags(argv, {
    ...ENCODING_OPTIONS,
    checkpoint: { type: 'string' },
    out: { type: 'string' },
    'recal-batches': { type: 'string' },
    'verify-images': { type: 'string' },
    'data-dir': { type: 'string' },
    backend: { type: 'string' },
    json: { type: 'boolean' },
    form: { type: 'string' },
    'latency-runs': { type: 'string' },
    ...MODEL_LATENCY_OPTIONS,
  });
  const form = oneOf(v, 'form', ['inference', 'training'] as const) ?? 'inference';
  const runs = num(v, 'latency-runs', { min: 0, max: 10_000, integer: true }, 50) as number;
  if (oneOf(v, 'runtime', RUNTIMES) && oneOf(v, 'runtime', RUNTIMES) !== 'tfjs-wasm') {
    throw new UsageError('--runtime: export times the model on tfjs-wasm only');
  }
  const outDir = resolve(requireStr(v, 'out'));
  const recal = num(v, 'recal-batches', { min: 1, max: 10000, integer: true }, 100) as number;
  const verify = num(v, 'verify-images', { min: 0, max: 1e7, integer: true }, 512) as number;
  const {
    dir,
    info,
    net,
    encoding: enc,
    engine,
    backend,
    data,
    pnet,
  } = await openCheckpointCandidate(v);
  let outLatency: Record<string, unknown> | undefined;
  const batch = 64;
  const recalSet = engine.collectImages(recalBatches(data, batch, info.seed), {
    maxBatches: recal,
  });
  const model = engine.buildPlainModel(net, enc, {
    init: engine.generatedPlainWeights(pnet, enc, recalSet, {
      recalBatches: recal,
      batchSize: batch,
    }),
    inputPreprocess: data.preprocess,
  });
  const meta = engine.plainModelMetadata(net, enc, {
    preprocess: data.preprocess,
    classNames: data.dataset.classNames,
    dataset: info.dataset,
    extra: { recal_batches: recal, source: 'pruningnet', checkpoint: dir },
  });
  try {
    await engine.exportModel(model, outDir, meta, { form });
  } finally {
    model.dispose();
  }
  if (form === 'inference') {
    // Predicted latency from the search's table, delivered latency timed here (wasm).
    const prediction = await predictForModel(v, net.spec, enc);
    let timing: { deliveredMs: number; engineMs: number | null } | null = null;
    if (runs > 0) {
      const prev = backend;
      await engine.initBackend({ prefer: 'wasm' });
      const deployed = await engine.loadDeployedModel(outDir);
      try {
        timing = engine.measureDelivered(deployed, { repeats: runs });
      } finally {
        deployed.dispose();
        await engine.initBackend({ prefer: prev as 'wasm' });
      }
    }
    const latency = latencyRecord('tfjs-wasm', timing, prediction);
    if (Object.keys(latency).length > 0) {
      await engine.updateDeployedMetadata(outDir, { latency });
    }
    outLatency = latency;
  }
  const out: Record<string, unknown> = {
    form,
    ...(outLatency ? { latency: outLatency } : {}),
    out: outDir,
    macs: meta.macs,
    params: meta.params,
    backend,
  };
  if (verify > 0) {
    // Two independent paths over the same images: the PruningNet's generate + recalibrate +
    // validate, and the exported file loaded by plain tfjs on native pixels.
    const n = Math.min(verify, data.split.val.indices.length);
    const own = engine.evaluateCandidate(pnet, enc, {
      recal: recalSet,
      val: engine.collectImages(valBatches(data, batch), { maxBatches: Math.ceil(n / batch) }),
      recalBatches: recal,
      batchSize: batch,
      valBatches: Math.ceil(n / batch),
    });
    const loaded = await engine.loadDeployedModel(outDir);
    try {
      const images = Math.min(n, own.valImages);
      const subset = { ...data.split.val, indices: data.split.val.indices.slice(0, images) };
      out['verify_images'] = images;
      out['exported_top1'] = await engine.evaluatePlain(loaded, subset);
      out['pruningnet_top1'] = own.top1;
    } finally {
      loaded.dispose();
    }
  }
  console.log(
    v['json']
      ? JSON.stringify(out)
      : `exported to ${outDir}: ${(meta.macs / 1e6).toFixed(2)}M MACs, ${(meta.params / 1e6).toFixed(3)}M params${
          verify > 0
            ? `; sub-val top-1 ${(100 * (out['exported_top1'] as number)).toFixed(2)}% (PruningNet ${(100 * (out['pruningnet_top1'] as number)).toFixed(2)}%) on ${out['verify_images']} images`
            : ''
        }`,
  );
  return 0;
}
