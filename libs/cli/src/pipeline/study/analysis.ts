/**
 * The study's numbers, from whatever units have finished: proxy fidelity (Kendall tau-b
 * and top-5 overlap of proxy score vs retrained test top-1) per PruningNet snapshot and
 * proxy size; the rank stability of the retraining recipe (recipe vs twice its length);
 * the headline (MetaPruning vs uniform per budget over seeds, mean +- SD). Pure: reads
 * units, returns the analysis; `writeStudyAnalysis` also writes analysis.json,
 * summary.json, README.md and the plot.
 */
import { kendallTauB, meanSd, raceKeep, topKOverlap } from '@metaprune/core';
import type { CandidatesUnit } from './candidates.js';
import type { StudyConfig } from './config.js';
import { proxyUnit } from './plan.js';
import type { SnapshotUnit } from './pruningnet.js';
import { type RetrainUnit, retrainUnitName } from './retrain-units.js';
import type { SearchUnit } from './search.js';
import type { UnitStore } from './units.js';

export interface ProxyUnitFile {
  snapshot: number;
  proxy: { name: string; valImages: number; recalBatches: number };
  seconds: number;
  evalSeconds: number;
  scores: Record<string, number>;
}

export interface FidelityCell {
  snapshot: number;
  epochs: number | null;
  proxy: string;
  valImages: number;
  recalBatches: number;
  /** Candidates with both a proxy score and a retrained top-1. */
  n: number;
  tau: number | null;
  top5: number | null;
  /** Evaluator-seconds per candidate of this proxy. */
  secondsPerCandidate: number;
}

export interface HeadlineRow {
  fraction: number;
  method: 'metapruning' | 'uniform';
  candidate: string;
  macs: number;
  seeds: { seed: number; test_top1: number; model: string | null }[];
  mean: number;
  sd: number;
}

export interface StudyAnalysis {
  candidates: number;
  retrained: number;
  fidelity: FidelityCell[];
  stability: {
    n: number;
    tau: number | null;
    deltas: { candidate: string; recipe: number; double: number; delta: number }[];
  };
  headline: HeadlineRow[];
  verdicts: { fraction: number; gain: number; noise2sd: number; beyondNoise: boolean }[];
  /** Racing replayed on the candidates' stored scores, per snapshot, vs the largest proxy. */
  racing: RaceReplay[];
  /** The search with the plain proxy and the same search racing. */
  searches: {
    name: string;
    proxy: string;
    evaluated: number;
    scoredPerRung: number[];
    seconds: number;
    evalSeconds: number;
    candidatesPerMinute: number;
    winners: (number | null)[];
  }[];
}

export interface RaceReplay {
  snapshot: number;
  k: number;
  z: number;
  /** Candidates finished on each rung. */
  scored: number[];
  n: number;
  tau: number | null;
  top5: number | null;
  evalSeconds: number;
  /** The same with the largest proxy alone (every candidate on the last rung). */
  fullTau: number | null;
  fullTop5: number | null;
  fullEvalSeconds: number;
}

/**
 * Replays a race on stored per-rung scores (deterministic evaluations: a rung's score of a
 * candidate is the same whether it is computed in a race or alone): who reaches which
 * rung, the order key (rung, then score) and the evaluator-seconds it would have taken.
 */
export function replayRace(
  rungScores: readonly (readonly number[])[],
  rungImages: readonly number[],
  rungSeconds: readonly number[],
  k: number,
  z: number,
): { key: number[]; scored: number[]; evalSeconds: number } {
  const n = rungScores[0]?.length ?? 0;
  const key = new Array<number>(n).fill(0);
  const scored: number[] = [];
  let alive = Array.from({ length: n }, (_, i) => i);
  let evalSeconds = 0;
  for (let r = 0; r < rungScores.length && alive.length > 0; r++) {
    const sc = rungScores[r]!;
    for (const i of alive) key[i] = 2 * r + (sc[i] as number);
    scored.push(alive.length);
    evalSeconds += alive.length * (rungSeconds[r] as number);
    if (r === rungScores.length - 1) break;
    const keep = raceKeep(
      alive.map((i) => sc[i] as number),
      rungImages[r] as number,
      { k, z },
    );
    alive = alive.filter((_, j) => keep[j]);
  }
  return { key, scored, evalSeconds };
}

const finite = (x: number) => (Number.isFinite(x) ? x : null);

export function analyseStudy(cfg: StudyConfig, units: UnitStore): StudyAnalysis | null {
  const cands = units.get<CandidatesUnit>('candidates');
  if (!cands) return null;
  const E = cfg.retrain.epochs;
  const s1 = cfg.retrain.seeds[0] ?? 1;
  const retrained = (id: string, epochs: number, seed: number) =>
    units.get<RetrainUnit>(retrainUnitName(id, epochs, seed));
  const recipe = new Map<string, number>();
  for (const c of cands.candidates) {
    const r = retrained(c.id, E, s1);
    if (r) recipe.set(c.id, r.test_top1);
  }
  const fidelity: FidelityCell[] = [];
  for (const snap of cfg.pruningnet.snapshots) {
    const info = units.get<SnapshotUnit>(`pruningnet/c${snap}`);
    for (const p of cfg.proxies) {
      const u = units.get<ProxyUnitFile>(proxyUnit(snap, p.name));
      if (!u) continue;
      const ids = cands.candidates
        .map((c) => c.id)
        .filter((id) => recipe.has(id) && Number.isFinite(u.scores[id]));
      const x = ids.map((id) => u.scores[id] as number);
      const y = ids.map((id) => recipe.get(id) as number);
      fidelity.push({
        snapshot: snap,
        epochs: info ? info.epochs : null,
        proxy: p.name,
        valImages: p.valImages,
        recalBatches: p.recalBatches,
        n: ids.length,
        tau: ids.length >= 3 ? finite(kendallTauB(x, y).tau) : null,
        top5: ids.length >= 6 ? topKOverlap(x, y, 5) : null,
        secondsPerCandidate: u.evalSeconds / Math.max(1, cands.candidates.length),
      });
    }
  }
  const deltas: StudyAnalysis['stability']['deltas'] = [];
  for (const id of cands.stability) {
    const a = retrained(id, E, s1);
    const b = retrained(id, 2 * E, s1);
    if (a && b) {
      deltas.push({
        candidate: id,
        recipe: a.test_top1,
        double: b.test_top1,
        delta: b.test_top1 - a.test_top1,
      });
    }
  }
  const headline: HeadlineRow[] = [];
  for (const c of cands.candidates) {
    if (!c.headline) continue;
    const seeds = cfg.retrain.seeds
      .map((seed) => ({ seed, r: retrained(c.id, E, seed) }))
      .filter((x) => x.r)
      .map((x) => ({ seed: x.seed, test_top1: x.r!.test_top1, model: x.r!.model }));
    const ms = meanSd(seeds.map((s) => s.test_top1));
    headline.push({
      fraction: c.headline.fraction,
      method: c.headline.method,
      candidate: c.id,
      macs: c.macs,
      seeds,
      mean: ms.mean,
      sd: ms.sd,
    });
  }
  const verdicts: StudyAnalysis['verdicts'] = [];
  for (const f of cfg.headlineFractions) {
    const mp = headline.find((h) => h.fraction === f && h.method === 'metapruning');
    const un = headline.find((h) => h.fraction === f && h.method === 'uniform');
    if (!mp || !un || mp.seeds.length < 2 || un.seeds.length < 2) continue;
    // the 2-sigma noise of a difference of two means over seeds
    const se = Math.sqrt(mp.sd ** 2 / mp.seeds.length + un.sd ** 2 / un.seeds.length);
    const gain = mp.mean - un.mean;
    verdicts.push({ fraction: f, gain, noise2sd: 2 * se, beyondNoise: gain > 2 * se });
  }
  const racing: RaceReplay[] = [];
  for (const snap of cfg.pruningnet.snapshots) {
    // every proxy size, smallest first, raced against the largest alone
    const rungs = cfg.proxies.map(({ name }) => ({
      p: cfg.proxies.find((x) => x.name === name)!,
      u: units.get<ProxyUnitFile>(proxyUnit(snap, name)),
    }));
    if (rungs.some((r) => !r.u || !r.p)) continue;
    const ids = cands.candidates
      .map((c) => c.id)
      .filter((id) => recipe.has(id) && rungs.every((r) => Number.isFinite(r.u!.scores[id])));
    if (ids.length < 6) continue;
    const perCand = rungs.map(
      (r) => r.u!.evalSeconds / Math.max(1, Object.keys(r.u!.scores).length),
    );
    const rep = replayRace(
      rungs.map((r) => ids.map((id) => r.u!.scores[id] as number)),
      rungs.map((r) => r.p.valImages),
      perCand,
      5,
      cfg.race.z,
    );
    const y = ids.map((id) => recipe.get(id) as number);
    const full = ids.map((id) => rungs[rungs.length - 1]!.u!.scores[id] as number);
    racing.push({
      snapshot: snap,
      k: 5,
      z: cfg.race.z,
      scored: rep.scored,
      n: ids.length,
      tau: finite(kendallTauB(rep.key, y).tau),
      top5: topKOverlap(rep.key, y, 5),
      evalSeconds: rep.evalSeconds,
      fullTau: finite(kendallTauB(full, y).tau),
      fullTop5: topKOverlap(full, y, 5),
      fullEvalSeconds: ids.length * perCand[perCand.length - 1]!,
    });
  }
  const searches: StudyAnalysis['searches'] = [];
  for (const name of ['search', 'search-race']) {
    const u = units.get<SearchUnit>(name);
    if (!u) continue;
    searches.push({
      name,
      proxy: u.proxy,
      evaluated: u.evaluated,
      scoredPerRung: u.scoredPerRung ?? [u.evaluated],
      seconds: u.seconds,
      evalSeconds: u.evalSeconds,
      candidatesPerMinute: u.evaluated / Math.max(1e-9, u.evalSeconds / 60),
      winners: u.winners.map((w) => w?.top1 ?? null),
    });
  }
  return {
    racing,
    searches,
    candidates: cands.candidates.length,
    retrained: recipe.size,
    fidelity,
    stability: {
      n: deltas.length,
      tau:
        deltas.length >= 3
          ? finite(
              kendallTauB(
                deltas.map((d) => d.recipe),
                deltas.map((d) => d.double),
              ).tau,
            )
          : null,
      deltas,
    },
    headline,
    verdicts,
  };
}

/** Writes analysis.json (and, later, the report) from the finished units. */
export function writeStudyAnalysis(cfg: StudyConfig, units: UnitStore): StudyAnalysis | null {
  const a = analyseStudy(cfg, units);
  if (a) units.put('analysis', a);
  return a;
}
