/**
 * A candidate's plain-network weights taken from a trained PruningNet: the generated,
 * cropped conv weights, the shared classifier, and BN statistics recomputed on sub-train
 * images (DESIGN 1.5) — what `metaprune export` and the weight generator's export write.
 */
import { type Encoding, validateEncoding } from '@metaprune/core';
import type { ImageSet } from '../evaluate/evaluate.js';
import { recalibrate } from '../evaluate/evaluate.js';
import type { PruningNet } from '../pruningnet/pruningnet.js';
import { generateCandidate } from '../pruningnet/pruningnet.js';
import type { PlainLayerWeights } from './model.js';

export interface GeneratedWeightsOptions {
  /** Recalibration batches (default: all of `recal`, rounded up). */
  recalBatches?: number;
  /** Batch size of recalibration (default 64). */
  batchSize?: number;
}

export function generatedPlainWeights(
  pnet: PruningNet,
  encoding: Encoding,
  recal: ImageSet,
  options: GeneratedWeightsOptions = {},
): Map<string, PlainLayerWeights> {
  const enc = validateEncoding(pnet.net, encoding);
  const batchSize = options.batchSize ?? 64;
  const batches = options.recalBatches ?? Math.ceil(recal.count / batchSize);
  if (!(batches >= 1)) throw new RangeError(`recalBatches must be >= 1, got ${batches}`);
  const cand = generateCandidate(pnet, enc);
  const stats = recalibrate(pnet, cand, recal, batches, batchSize);
  const { layout, net } = pnet;
  const small = pnet.state.params.small;
  const weights = new Map<string, PlainLayerWeights>();
  cand.plan.forEach((p, i) => {
    const layer = net.layers[i];
    if (!layer) throw new Error(`candidate plan has no layer ${i}`);
    const g = layout.gens[i];
    if (g) {
      const mean = stats.mean[i];
      const variance = stats.variance[i];
      if (!mean || !variance) throw new Error(`no BN statistics for layer ${layer.name}`);
      weights.set(layer.name, {
        weight: cand.arena.slice(g.rowOff, g.rowOff + p.size),
        mean,
        variance,
      });
      return;
    }
    const f = layout.fcs.find((x) => x.index === i);
    if (!f) throw new Error(`layer ${layer.name} has neither a generator nor a classifier`);
    weights.set(layer.name, {
      weight: small.slice(f.wOff, f.wOff + p.size),
      bias: small.slice(f.bOff, f.bOff + f.cout),
    });
  });
  return weights;
}
