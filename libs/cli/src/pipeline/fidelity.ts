/**
 * Candidates for the proxy-fidelity study, spread over the search space: random encodings
 * stratified by MACs (one per equal-width MACs bin between the smallest and the full
 * network), deterministic for a seed. The study adds them to the searched winners and the
 * uniform baselines, which are retrained anyway.
 */
import {
  costModel,
  type Encoding,
  encodingKey,
  MAX_SCALE_ID,
  type Network,
  Rng,
} from '@metaprune/core';

/** `count` random encodings, one per MACs bin, avoiding `exclude`. */
export function stratifiedRandom(
  net: Network,
  count: number,
  seed: number,
  exclude: readonly Encoding[] = [],
): Encoding[] {
  if (count <= 0) return [];
  const model = costModel(net);
  const lo = model.cost(net.genes.map(() => 0)).macs;
  const hi = model.cost(net.genes.map(() => MAX_SCALE_ID)).macs;
  const rng = new Rng(seed);
  const taken = new Set(exclude.map(encodingKey));
  const bins: (Encoding | null)[] = new Array(count).fill(null);
  // A random encoding's MACs concentrate around the middle; draw with a per-draw width bias
  // (every gene within a band around a random level) so every bin gets candidates.
  for (let attempt = 0; attempt < 20_000 && bins.some((b) => b === null); attempt++) {
    const center = rng.int(MAX_SCALE_ID + 1);
    const spread = 1 + rng.int(8);
    const enc = net.genes.map(() => {
      const v = center + rng.int(2 * spread + 1) - spread;
      return Math.max(0, Math.min(MAX_SCALE_ID, v));
    });
    const key = encodingKey(enc);
    if (taken.has(key)) continue;
    const macs = model.cost(enc).macs;
    const bin = Math.min(count - 1, Math.floor(((macs - lo) / Math.max(1, hi - lo)) * count));
    if (bins[bin] !== null) continue;
    bins[bin] = enc;
    taken.add(key);
  }
  return bins.filter((b): b is Encoding => b !== null);
}
