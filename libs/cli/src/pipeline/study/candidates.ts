/**
 * The study's candidates, fixed once the searches are done (a unit file, so later sessions
 * retrain the same networks): the search winners, their uniform baselines (the smallest
 * uniform network with at least the winner's MACs), the full network, then MACs-stratified
 * random encodings up to `count`. The first `stabilityCount` (winners and baselines of the
 * headline budgets, the full network, then random ones spread over MACs) are also
 * retrained with twice the recipe.
 */
import { costModel, type Encoding, encodingKey, fullEncoding, type Network } from '@metaprune/core';
import { uniformAtLeast } from '../budgets.js';
import { stratifiedRandom } from '../fidelity.js';
import type { SearchUnit } from './search.js';

export interface StudyCandidate {
  /** Stable id: names its retraining units. */
  id: string;
  source: string;
  encoding: number[];
  macs: number;
  params: number;
  /** MetaPruning winner or uniform baseline of a headline budget (fraction), if one. */
  headline?: { fraction: number; method: 'metapruning' | 'uniform' };
}

export interface CandidatesUnit {
  candidates: StudyCandidate[];
  /** Ids retrained also with twice the recipe. */
  stability: string[];
}

export function chooseCandidates(o: {
  net: Network;
  search: SearchUnit;
  headlineFractions: readonly number[];
  count: number;
  stabilityCount: number;
  seed: number;
}): CandidatesUnit {
  const model = costModel(o.net);
  const out: StudyCandidate[] = [];
  const seen = new Set<string>();
  const add = (
    id: string,
    source: string,
    enc: Encoding,
    headline?: StudyCandidate['headline'],
  ) => {
    const k = encodingKey(enc);
    if (seen.has(k)) {
      // a uniform baseline that is also a winner keeps one entry; the headline role is kept
      const prior = out.find((c) => encodingKey(c.encoding) === k);
      if (prior && headline && !prior.headline) prior.headline = headline;
      return;
    }
    seen.add(k);
    const c = model.cost(enc);
    out.push({
      id,
      source,
      encoding: [...enc],
      macs: c.macs,
      params: c.params,
      ...(headline ? { headline } : {}),
    });
  };
  const pct = (f: number) => `${Math.round(f * 1000) / 10}pct`.replace('.', '_');
  o.search.budgets.forEach((b, i) => {
    const w = o.search.winners[i];
    if (!w) return;
    const head = o.headlineFractions.includes(b.fraction);
    add(
      `mp-${pct(b.fraction)}`,
      `MetaPruning winner ${pct(b.fraction)}`,
      w.encoding,
      head ? { fraction: b.fraction, method: 'metapruning' } : undefined,
    );
    const u = uniformAtLeast(o.net, w.macs);
    add(
      `uniform-${pct(b.fraction)}`,
      `uniform ${u.scale.toFixed(2)}x (baseline ${pct(b.fraction)})`,
      u.encoding,
      head ? { fraction: b.fraction, method: 'uniform' } : undefined,
    );
  });
  add('full', 'full network', fullEncoding(o.net));
  const random = stratifiedRandom(
    o.net,
    Math.max(0, o.count - out.length),
    o.seed,
    out.map((c) => c.encoding),
  );
  random.forEach((e, i) => {
    add(`random-${i + 1}`, `random ${i + 1}`, e);
  });
  // stability subset: headline networks and the full network first, then random ones
  // evenly spread over the MACs-sorted remainder
  const first = out.filter((c) => c.headline || c.id === 'full').map((c) => c.id);
  const rest = out.filter((c) => !first.includes(c.id)).sort((a, b) => a.macs - b.macs);
  const need = Math.max(0, o.stabilityCount - first.length);
  const spread = Array.from(
    { length: Math.min(need, rest.length) },
    (_, k) => rest[Math.floor(((k + 0.5) * rest.length) / need)]!.id,
  );
  return {
    candidates: out,
    stability: [...first, ...spread].slice(0, Math.max(o.stabilityCount, 0)),
  };
}
