/**
 * The run plan: every unit of the study, done or to do, with its expected duration on this
 * machine (both cores; from `cfg.speeds`), printed before the run starts.
 */
import type { CandidatesUnit } from './candidates.js';
import type { StudyConfig } from './config.js';
import { snapshotUnit } from './pruningnet.js';
import { plannedRetrains } from './retrain-units.js';
import type { UnitStore } from './units.js';

export interface PlanRow {
  stage: string;
  units: number;
  done: number;
  /** Expected seconds of the units still to do. */
  seconds: number;
  /** Needs the PruningNet (must finish in the session that trained it). */
  needsPruningNet: boolean;
}

export const proxyUnit = (snapshot: number, size: string) => `proxy/c${snapshot}-${size}`;

export function studyPlan(
  cfg: StudyConfig,
  units: UnitStore,
  cands: CandidatesUnit | undefined,
  /** PruningNet steps already trained (its resumable checkpoint), if known. */
  trainedSteps = 0,
): PlanRow[] {
  const sp = cfg.speeds;
  const p = cfg.pruningnet;
  const b = cfg.proxyBatch;
  const proxyCost = (name: string) => {
    const s = cfg.proxies.find((x) => x.name === name);
    return s ? (s.valImages + s.recalBatches * b) / sp.proxyImgPerSec : 0;
  };
  const nCand = cands?.candidates.length ?? cfg.candidates;
  const rows: PlanRow[] = [];
  const snapDone = p.snapshots.filter((c) => units.has(snapshotUnit(c))).length;
  const lastDone = units.has(snapshotUnit(p.chunks));
  rows.push({
    stage: `PruningNet (${p.chunks} x ${p.stepsPerChunk} steps; snapshots ${p.snapshots.join('/')})`,
    units: p.snapshots.length,
    done: snapDone,
    seconds: lastDone
      ? 0
      : (Math.max(0, p.chunks * p.stepsPerChunk - trainedSteps) * p.batchSize) / sp.trainImgPerSec,
    needsPruningNet: true,
  });
  const s = cfg.search;
  rows.push({
    stage: `search (${cfg.budgetFractions.length} budgets x ${s.generations} gen x ${s.population}, proxy ${s.proxy})`,
    units: 1,
    done: units.has('search') ? 1 : 0,
    seconds: units.has('search')
      ? 0
      : (cfg.budgetFractions.length * s.generations * s.population * proxyCost(s.proxy)) / cfg.jobs,
    needsPruningNet: true,
  });
  const race = cfg.race.proxies.reduce((a, p) => a + proxyCost(p), 0);
  rows.push({
    stage: `racing search (same search, racing ${cfg.race.proxies.join('>')}, k ${cfg.race.k})`,
    units: 1,
    done: units.has('search-race') ? 1 : 0,
    // at most every candidate on every rung; racing spends less
    seconds: units.has('search-race')
      ? 0
      : (cfg.budgetFractions.length * s.generations * s.population * race) / cfg.jobs / 2,
    needsPruningNet: true,
  });
  rows.push({
    stage: `candidates (>= ${cfg.candidates})`,
    units: 1,
    done: cands ? 1 : 0,
    seconds: 0,
    needsPruningNet: true,
  });
  let proxyDone = 0;
  let proxySec = 0;
  for (const c of p.snapshots) {
    for (const x of cfg.proxies) {
      if (units.has(proxyUnit(c, x.name))) proxyDone++;
      else proxySec += nCand * proxyCost(x.name);
    }
  }
  rows.push({
    stage: `proxy scores (${p.snapshots.length} snapshots x ${cfg.proxies.map((x) => `${x.name} ${x.valImages} img/${x.recalBatches} BN`).join(', ')})`,
    units: p.snapshots.length * cfg.proxies.length,
    done: proxyDone,
    seconds: proxySec / cfg.jobs,
    needsPruningNet: true,
  });
  const images = cfg.retrain.images > 0 ? cfg.retrain.images : 60000;
  const retrains = cands ? plannedRetrains(cfg, cands) : undefined;
  const n =
    retrains?.length ??
    cfg.candidates +
      cfg.retrain.stabilityCount +
      (cfg.retrain.seeds.length - 1) * 2 * cfg.headlineFractions.length;
  const todo = retrains?.filter((r) => !units.has(r.name)) ?? [];
  const epochsTodo = retrains
    ? todo.reduce((a, r) => a + r.epochs, 0)
    : (n + cfg.retrain.stabilityCount) * cfg.retrain.epochs;
  rows.push({
    stage: `retraining (${cfg.retrain.epochs} epoch(s) x ${images} images; stability x2; seeds ${cfg.retrain.seeds.join(',')})`,
    units: n,
    done: retrains ? retrains.length - todo.length : 0,
    seconds: (epochsTodo * images) / sp.retrainImgPerSec / cfg.jobs,
    needsPruningNet: false,
  });
  return rows;
}

export function formatPlan(rows: PlanRow[]): string {
  const h = (s: number) => `${(s / 3600).toFixed(2)} h`;
  const lines = rows.map(
    (r) =>
      `  ${r.needsPruningNet ? '*' : ' '} ${r.stage.padEnd(92)} ${`${r.done}/${r.units}`.padStart(7)} done  ${h(r.seconds).padStart(8)} to go`,
  );
  const pn = rows.filter((r) => r.needsPruningNet).reduce((a, r) => a + r.seconds, 0);
  const all = rows.reduce((a, r) => a + r.seconds, 0);
  lines.push(
    `  expected: ${h(all)} in all on 2 free cores (${h(pn)} for the * stages, which need the PruningNet and must finish in the session that trains it)`,
  );
  return lines.join('\n');
}
