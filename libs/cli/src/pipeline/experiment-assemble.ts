/**
 * The experiment's results from what its stages produced: per network the comparison rows
 * (searched winner against its uniform baseline, both retrained), the weight-prediction
 * ablation rows and the proxy-fidelity points with their Kendall tau. Pure: no services.
 */
import { relative } from 'node:path';
import { costModel, type Encoding, geneChannels, kendallTau, type Network } from '@metaprune/core';
import { fullCost, type MacsBudget, type UniformBaseline } from './budgets.js';
import { networkTag } from './compare-jobs.js';
import type { ExperimentNetwork } from './experiment-config.js';
import type {
  AblationResult,
  FidelityPoint,
  FidelityResult,
  ModelRef,
  NetworkResult,
  PruningNetInfo,
  ResultRow,
  SearchInfo,
  SeedRun,
  SeedStudyResult,
} from './experiment-types.js';
import type { RetrainBook } from './retrain-book.js';
import type { FoundCandidate, SearchOutcome } from './search.js';
import type { TrainedPruningNet } from './train-pruningnet.js';

/** One network after its search. */
export interface Searched {
  net: Network;
  cfg: ExperimentNetwork;
  pn: TrainedPruningNet;
  budgets: MacsBudget[];
  winners: (FoundCandidate | null)[];
  latencyWinner: FoundCandidate | null;
  search: SearchInfo;
}

/** A comparison row before retraining: the winner, its uniform baseline, their book keys. */
export interface Planned {
  budget: string;
  kind: 'macs' | 'latency';
  bound: number;
  w: FoundCandidate;
  u: UniformBaseline & { latencyMs?: number };
  sKey: string;
  uKey: string;
}

export interface AssembleInput {
  searched: Searched[];
  planned: Map<Searched, Planned[]>;
  /** Every retrained network's outcome, by key. */
  book: RetrainBook;
  /** Proxy top-1 by book key, under the MetaPruning proxy and the ablation's. */
  proxyOf: Map<string, number>;
  ablProxyOf: Map<string, number>;
  ablation: {
    pn: TrainedPruningNet;
    search: SearchOutcome;
    best: (FoundCandidate | null | undefined)[];
    keys: (string | null)[];
  };
  fidelity: { source: string; enc: Encoding }[];
  fidelityKeys: string[];
  /** The row retrained with more seeds, and the book keys of those runs. */
  seedStudy: {
    row: Planned;
    /** The seed of every other retraining (the row's own runs). */
    baseSeed: number;
    runs: { seed: number; mpKey: string; uniformKey: string }[];
  } | null;
  /** Exported model paths are made relative to it. */
  outDir: string;
}

export interface Assembled {
  networks: NetworkResult[];
  ablation: AblationResult;
  fidelity: FidelityResult;
  seedStudy: SeedStudyResult | null;
}

/** Pooled sample standard deviation of several groups (each with at least two values). */
export function pooledSd(groups: readonly (readonly number[])[]): number {
  let ss = 0;
  let df = 0;
  for (const g of groups) {
    if (g.length < 2) continue;
    const mean = g.reduce((a, b) => a + b, 0) / g.length;
    ss += g.reduce((a, b) => a + (b - mean) ** 2, 0);
    df += g.length - 1;
  }
  return df > 0 ? Math.sqrt(ss / df) : Number.NaN;
}

const info = (pn: TrainedPruningNet, noWp: boolean): PruningNetInfo => ({
  id: pn.pruningnetId,
  version: pn.version,
  seconds: pn.seconds,
  loss: pn.loss,
  validationAccuracy: pn.validationAccuracy ?? null,
  noWeightPrediction: noWp,
});

const models = new WeakMap<Network, ReturnType<typeof costModel>>();
function fullCostOf(net: Network, enc: Encoding) {
  let m = models.get(net);
  if (!m) {
    m = costModel(net);
    models.set(net, m);
  }
  return m.cost(enc);
}

export function assembleResults(x: AssembleInput): Assembled {
  const { searched, planned, book, proxyOf, ablProxyOf, fidelity } = x;
  const ablPn = x.ablation.pn;
  const ablSearch = x.ablation.search;
  const ablBest = x.ablation.best;
  const ablKeys = x.ablation.keys;
  const fidKeys = x.fidelityKeys;
  const prim = searched[0]!;
  const ref = (
    net: Network,
    enc: Encoding,
    key: string,
    proxy: number,
    latencyMs?: number,
  ): ModelRef => {
    const r = book.outcome(key);
    const cost = fullCostOf(net, enc);
    return {
      encoding: [...enc],
      channels: geneChannels(net, enc),
      macs: cost.macs,
      params: cost.params,
      proxyTop1: proxy,
      testTop1: r.test_top1,
      exported: relative(x.outDir, r.exported),
      ...(latencyMs !== undefined ? { latencyMs } : {}),
    };
  };
  const networks: NetworkResult[] = searched.map((s) => {
    const full = fullCost(s.net);
    const rows = (planned.get(s) ?? []).map((p): ResultRow => {
      const searchedRef = ref(s.net, p.w.encoding, p.sKey, p.w.top1, p.w.latencyMs);
      const uniformRef = ref(
        s.net,
        p.u.encoding,
        p.uKey,
        proxyOf.get(book.key(s.net, p.u.encoding)) ?? Number.NaN,
        p.u.latencyMs,
      );
      return {
        network: networkTag(s.net),
        budget: p.budget,
        kind: p.kind,
        bound: p.bound,
        searched: searchedRef,
        uniform: { ...uniformRef, scale: p.u.scale },
        delta: searchedRef.testTop1 - uniformRef.testTop1,
      };
    });
    return {
      key: s.cfg.key,
      tag: networkTag(s.net),
      spec: s.net.spec,
      genes: s.net.genes.map((g) => ({ name: g.name, kind: g.kind, max: g.max })),
      fullMacs: full.macs,
      fullParams: full.params,
      pruningnet: info(s.pn, false),
      search: s.search,
      rows,
    };
  });
  const primResult = networks[0]!;
  const ablation: AblationResult = {
    network: networkTag(prim.net),
    pruningnet: info(ablPn, true),
    search: {
      id: ablSearch.searchId,
      budgets: prim.budgets.map((b) => b.name),
      evaluated: ablSearch.evaluated,
      seconds: ablSearch.seconds,
      history: ablSearch.history,
    },
    rows: prim.budgets.flatMap((b, i) => {
      const mpRow = primResult.rows.find((r) => r.kind === 'macs' && r.budget === b.name);
      const w = ablBest[i];
      const key = ablKeys[i];
      if (!mpRow || !w || !key) return [];
      return [
        {
          budget: b.name,
          bound: b.maxMacs,
          metapruning: mpRow.searched,
          ablation: ref(prim.net, w.encoding, key, w.top1),
          uniform: mpRow.uniform,
        },
      ];
    }),
  };
  const points: FidelityPoint[] = fidelity.map((c, i) => {
    const r = book.outcome(fidKeys[i]!);
    const cost = fullCostOf(prim.net, c.enc);
    const k = book.key(prim.net, c.enc);
    return {
      source: c.source,
      encoding: [...c.enc],
      macs: cost.macs,
      params: cost.params,
      proxyTop1: proxyOf.get(k) ?? Number.NaN,
      proxyTop1Ablation: ablProxyOf.get(k) ?? null,
      testTop1: r.test_top1,
      exported: relative(x.outDir, r.exported),
    };
  });
  const ok = points.filter((p) => Number.isFinite(p.proxyTop1));
  const okAbl = points.filter(
    (p) => p.proxyTop1Ablation !== null && Number.isFinite(p.proxyTop1Ablation),
  );
  const fid: FidelityResult = {
    network: networkTag(prim.net),
    points,
    tau: kendallTau(
      ok.map((p) => p.proxyTop1),
      ok.map((p) => p.testTop1),
    ),
    tauAblation:
      okAbl.length >= 2
        ? kendallTau(
            okAbl.map((p) => p.proxyTop1Ablation as number),
            okAbl.map((p) => p.testTop1),
          )
        : null,
  };
  let seedStudy: SeedStudyResult | null = null;
  if (x.seedStudy) {
    const { row, runs, baseSeed } = x.seedStudy;
    const run = (seed: number, key: string): SeedRun => {
      const r = book.outcome(key);
      return { seed, testTop1: r.test_top1, exported: relative(x.outDir, r.exported) };
    };
    const metapruning = [run(baseSeed, row.sKey), ...runs.map((r) => run(r.seed, r.mpKey))];
    const uniform = [run(baseSeed, row.uKey), ...runs.map((r) => run(r.seed, r.uniformKey))];
    seedStudy = {
      network: networkTag(prim.net),
      budget: row.budget,
      metapruning,
      uniform,
      sd: pooledSd([metapruning.map((m) => m.testTop1), uniform.map((m) => m.testTop1)]),
    };
  }
  return { networks, ablation, fidelity: fid, seedStudy };
}
