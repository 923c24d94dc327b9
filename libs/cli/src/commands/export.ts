import { resolve } from 'node:path';
import { num, parseFlags, requireStr } from '../args.js';
import { recalBatches, valBatches } from '../local-data.js';
import { ENCODING_OPTIONS } from '../network-flags.js';
import { openCheckpointCandidate } from './checkpoint-candidate.js';

export const exportHelp = `metaprune export --checkpoint DIR (--encoding a,b,... | --uniform S) --out DIR
                 [--recal-batches 100] [--verify-images 512] [--backend B] [--data-dir DIR] [--json]
  Writes a candidate as a standard tfjs LayersModel (model.json + weights.bin) with the
  weights a trained PruningNet generates for it and BN statistics recomputed on sub-train
  batches. The model takes the dataset's native images (NHWC, pixels in [0, 1]); its
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
  });
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
    await engine.exportPlainModel(model, outDir, meta);
  } finally {
    model.dispose();
  }
  const out: Record<string, unknown> = {
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
    const loaded = await engine.loadExportedModel(outDir);
    try {
      const images = Math.min(n, own.valImages);
      const subset = { ...data.split.val, indices: data.split.val.indices.slice(0, images) };
      out['verify_images'] = images;
      out['exported_top1'] = await engine.evaluatePlain(loaded.model, subset);
      out['pruningnet_top1'] = own.top1;
    } finally {
      loaded.model.dispose();
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
