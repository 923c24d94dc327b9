/**
 * The study's report, rewritten from the finished units after every unit: <out>/README.md
 * (fidelity vs PruningNet length and proxy size, rank stability of the retraining recipe,
 * racing, the headline with a verdict), <out>/plots/*.svg, and the machine-readable
 * summary.json (issue 16 item 6) whose rows name the exported headline models. Every
 * number comes from unit files; sections say what is still missing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { PALETTE, xyChart } from '../svg.js';
import type { ProxyUnitFile, StudyAnalysis } from './analysis.js';
import type { CandidatesUnit } from './candidates.js';
import type { StudyConfig } from './config.js';
import { formatPlan, proxyUnit, studyPlan } from './plan.js';
import { type RetrainUnit, retrainUnitName } from './retrain-units.js';
import type { SearchUnit } from './search.js';
import type { UnitStore } from './units.js';

export interface SummaryJson {
  fidelity: {
    kendall_tau: number | null;
    candidates: number;
    snapshot_epochs: number | null;
    proxy: { val_images: number; recal_batches: number } | null;
  };
  rows: {
    network: string;
    budget_macs: number;
    method: 'metapruning' | 'uniform';
    seed: number;
    macs: number;
    test_top1: number;
    model: string;
  }[];
}

const pct = (x: number | null | undefined, d = 2) =>
  x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : `${(100 * x).toFixed(d)}%`;
const num = (x: number | null | undefined, d = 2) =>
  x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(d);

export function networkName(cfg: StudyConfig): string {
  return `${cfg.network.family}-w${cfg.network.width ?? 1}`;
}

/** summary.json: the fidelity of the search's proxy at the longest PruningNet, the headline rows. */
export function studySummary(
  cfg: StudyConfig,
  a: StudyAnalysis,
  units: UnitStore,
  summaryPath: string,
): SummaryJson {
  const last = cfg.pruningnet.snapshots[cfg.pruningnet.snapshots.length - 1];
  const cell = a.fidelity.find((f) => f.snapshot === last && f.proxy === cfg.search.proxy);
  const search = units.get<SearchUnit>('search');
  const rows: SummaryJson['rows'] = [];
  for (const h of a.headline) {
    const budget = search?.budgets.find((b) => b.fraction === h.fraction);
    for (const s of h.seeds) {
      if (!s.model) continue;
      rows.push({
        network: networkName(cfg),
        budget_macs: budget?.maxMacs ?? Number.NaN,
        method: h.method,
        seed: s.seed,
        macs: h.macs,
        test_top1: s.test_top1,
        model: relative(dirname(summaryPath), join(units.dir, s.model, 'model.json')),
      });
    }
  }
  const proxy = cfg.proxies.find((p) => p.name === cfg.search.proxy);
  return {
    fidelity: {
      kendall_tau: cell?.tau ?? null,
      candidates: cell?.n ?? 0,
      snapshot_epochs: cell?.epochs ?? null,
      proxy: proxy ? { val_images: proxy.valImages, recal_batches: proxy.recalBatches } : null,
    },
    rows,
  };
}

function tauPlot(cfg: StudyConfig, a: StudyAnalysis): string | null {
  const series = cfg.proxies
    .map((p, i) => ({
      name: `proxy ${p.name}: ${p.valImages} images, ${p.recalBatches} BN batches`,
      color: PALETTE[i % PALETTE.length]!,
      points: a.fidelity
        .filter((f) => f.proxy === p.name && f.tau !== null && f.epochs !== null)
        .sort((x, y) => x.epochs! - y.epochs!)
        .map((f) => [f.epochs!, f.tau!] as const),
    }))
    .filter((s) => s.points.length > 0);
  if (series.length === 0) return null;
  return xyChart({
    title: 'Proxy fidelity: Kendall tau (proxy vs retrained top-1) by PruningNet length',
    xLabel: 'PruningNet training (epochs of sub-train)',
    yLabel: 'Kendall tau-b',
    series,
    yFormat: (v) => v.toFixed(2),
  });
}

interface Timed {
  seconds?: number;
  recorded?: { at: string; loadavg: number[] };
}

/** Wall time per stage from the unit files, and the 1-minute load average when each finished. */
function durations(units: UnitStore): string[] {
  const stages: [string, string[]][] = [
    ['PruningNet snapshots', units.list('pruningnet')],
    ['searches', ['search', 'search-race'].filter((n) => units.has(n))],
    ['proxy scores', units.list('proxy')],
    ['retraining', units.list('retrain')],
  ];
  const rows = stages
    .map(([name, list]) => {
      const u = list.map((n) => units.get<Timed>(n)!).filter(Boolean);
      if (u.length === 0) return null;
      const secs = u.reduce((a, x) => a + (x.seconds ?? 0), 0);
      const loads = u
        .map((x) => x.recorded?.loadavg[0])
        .filter((x): x is number => x !== undefined);
      const load = loads.length
        ? `${Math.min(...loads).toFixed(1)} - ${Math.max(...loads).toFixed(1)}`
        : 'n/a';
      return `| ${name} | ${u.length} | ${(secs / 3600).toFixed(2)} h | ${load} |`;
    })
    .filter((r): r is string => r !== null);
  if (rows.length === 0) return [];
  return [
    '## Durations and machine load',
    '',
    'Wall time the units took (PruningNet: the run up to the last snapshot, this process; retraining: per network, two at a time) on the shared 2-core machine, niced; the load average (1 min) when each unit finished shows how shared it was.',
    '',
    '| stage | units | wall time | load average at finish |',
    '|---|---|---|---|',
    ...rows,
  ];
}

/** Proxy score vs retrained top-1 of every candidate, for the search's proxy at the last snapshot. */
function scatterPlot(cfg: StudyConfig, units: UnitStore): string | null {
  const last = cfg.pruningnet.snapshots[cfg.pruningnet.snapshots.length - 1]!;
  const u = units.get<ProxyUnitFile>(proxyUnit(last, cfg.search.proxy));
  const cands = units.get<CandidatesUnit>('candidates');
  if (!u || !cands) return null;
  const pts = cands.candidates
    .map((c) => ({
      c,
      r: units.get<RetrainUnit>(
        retrainUnitName(c.id, cfg.retrain.epochs, cfg.retrain.seeds[0] ?? 1),
      ),
    }))
    .filter((x) => x.r && Number.isFinite(u.scores[x.c.id]));
  if (pts.length < 2) return null;
  return xyChart({
    title: `Proxy (c${last}, ${cfg.search.proxy}) vs retrained test top-1`,
    xLabel: 'proxy top-1 on sub-val (%)',
    yLabel: 'retrained test top-1 (%)',
    series: [
      {
        name: `${pts.length} candidates`,
        color: PALETTE[0]!,
        line: false,
        points: pts.map((x) => [100 * (u.scores[x.c.id] as number), 100 * x.r!.test_top1] as const),
        labels: pts.map((x) => x.c.id),
      },
    ],
  });
}

/** Headline means over seeds by MACs budget, MetaPruning and uniform. */
function headlinePlot(a: StudyAnalysis): string | null {
  const series = (['metapruning', 'uniform'] as const)
    .map((m, i) => {
      const rows = a.headline
        .filter((h) => h.method === m && h.seeds.length > 0)
        .sort((x, y) => x.fraction - y.fraction);
      return {
        name: m === 'metapruning' ? 'MetaPruning (mean over seeds)' : 'uniform (mean over seeds)',
        color: PALETTE[i]!,
        points: rows.map((h) => [100 * h.fraction, 100 * h.mean] as const),
        labels: rows.map((h) =>
          Number.isFinite(h.sd)
            ? `±${(100 * h.sd).toFixed(2)} (n=${h.seeds.length})`
            : `n=${h.seeds.length}`,
        ),
      };
    })
    .filter((s) => s.points.length > 0);
  if (series.length === 0) return null;
  return xyChart({
    title: 'MetaPruning vs uniform: retrained test top-1 by MACs budget',
    xLabel: 'MACs budget (% of the full network)',
    yLabel: 'test top-1 (%)',
    series,
  });
}

export function writeStudyReport(o: {
  cfg: StudyConfig;
  a: StudyAnalysis | null;
  units: UnitStore;
  summaryPath: string;
  command: string;
}): void {
  const { cfg, a, units } = o;
  const out = units.dir;
  const cands = units.get<CandidatesUnit>('candidates');
  const L: string[] = [];
  L.push('# Fidelity study (issue 16)', '');
  L.push(
    `Written by \`${o.command}\` from the unit files in this folder (every finished unit is one file; rerunning the command skips them and continues). Network: ${networkName(cfg)} (${cfg.network.preset} preset), Fashion-MNIST. Numbers below are only those of finished units.`,
    '',
    '## Plan and progress',
    '',
    '```',
    formatPlan(studyPlan(cfg, units, cands)),
    '```',
    '',
  );
  if (!a) {
    L.push('No candidates yet (the PruningNet stages have not finished).', '');
  } else {
    L.push(
      '## Proxy fidelity by PruningNet length and proxy size',
      '',
      `Kendall tau-b and top-5 overlap between the proxy score (sub-val) and the retrained test top-1 (recipe ${cfg.retrain.epochs} epoch(s), seed ${cfg.retrain.seeds[0]}), over the candidates retrained so far (${a.retrained} of ${a.candidates}).`,
      '',
      '| snapshot | PruningNet epochs | proxy | images / BN batches | n | tau | top-5 overlap | evaluator-s per candidate |',
      '|---|---|---|---|---|---|---|---|',
      ...a.fidelity.map(
        (f) =>
          `| c${f.snapshot} | ${num(f.epochs)} | ${f.proxy} | ${f.valImages} / ${f.recalBatches} | ${f.n} | ${num(f.tau)} | ${f.top5 ?? 'n/a'} | ${num(f.secondsPerCandidate)} |`,
      ),
      '',
    );
    mkdirSync(join(out, 'plots'), { recursive: true });
    const plot = tauPlot(cfg, a);
    if (plot) {
      writeFileSync(join(out, 'plots', 'fidelity-tau.svg'), plot);
      L.push('![tau by PruningNet length](plots/fidelity-tau.svg)', '');
    }
    const scatter = scatterPlot(cfg, units);
    if (scatter) {
      writeFileSync(join(out, 'plots', 'proxy-vs-retrained.svg'), scatter);
      L.push('![proxy vs retrained](plots/proxy-vs-retrained.svg)', '');
    }
    const st = a.stability;
    L.push(
      '## Rank stability of the retraining recipe',
      '',
      `The recipe (${cfg.retrain.epochs} epoch(s)) against twice its length on ${st.n} of the ${cands?.stability.length ?? cfg.retrain.stabilityCount} chosen candidates: Kendall tau ${num(st.tau)} (target >= 0.8).`,
      '',
      '| candidate | recipe | 2x recipe | change (pts) |',
      '|---|---|---|---|',
      ...st.deltas.map(
        (d) =>
          `| ${d.candidate} | ${pct(d.recipe)} | ${pct(d.double)} | ${(100 * d.delta).toFixed(2)} |`,
      ),
      '',
    );
    if (a.racing.length > 0 || a.searches.length > 0) {
      L.push(
        '## Racing proxy',
        '',
        `Racing (binomial bounds, z = ${cfg.race.z}): every candidate on the smallest proxy, only those that can still enter the top k on the next. Replayed on the candidates' stored scores, ${cfg.proxies.map((p) => p.name).join(' > ')} with k = 5, against the largest proxy alone:`,
        '',
        '| snapshot | n | scored per rung | tau race / full | top-5 race / full | evaluator-s race / full | tau per evaluator-min race / full |',
        '|---|---|---|---|---|---|---|',
        ...a.racing.map(
          (r) =>
            `| c${r.snapshot} | ${r.n} | ${r.scored.join(' / ')} | ${num(r.tau)} / ${num(r.fullTau)} | ${r.top5 ?? 'n/a'} / ${r.fullTop5 ?? 'n/a'} | ${r.evalSeconds.toFixed(0)} / ${r.fullEvalSeconds.toFixed(0)} | ${num(r.tau === null ? null : (60 * r.tau) / r.evalSeconds, 3)} / ${num(r.fullTau === null ? null : (60 * r.fullTau) / r.fullEvalSeconds, 3)} |`,
        ),
        '',
        `The searches (same budgets, seed, generations and population): the plain search scores every candidate with proxy ${cfg.search.proxy}; the racing one races ${cfg.race.proxies.join(' > ')} (k ${cfg.race.k} per budget and generation), so its finished candidates get exactly the plain search's scores:`,
        '',
        '| search | proxy | candidates | scored per rung | wall s | evaluator-s | candidates per evaluator-min | winners (proxy top-1) |',
        '|---|---|---|---|---|---|---|---|',
        ...a.searches.map(
          (s) =>
            `| ${s.name} | ${s.proxy} | ${s.evaluated} | ${s.scoredPerRung.join(' / ')} | ${s.seconds.toFixed(0)} | ${s.evalSeconds.toFixed(0)} | ${s.candidatesPerMinute.toFixed(1)} | ${s.winners.map((w) => pct(w, 1)).join(', ')} |`,
        ),
        '',
      );
    }
    L.push(
      '## Headline: MetaPruning vs uniform',
      '',
      `Each network retrained from scratch with the recipe and seeds ${cfg.retrain.seeds.join(', ')}; test top-1 on ${cfg.retrain.testImages || 10000} test images, mean +- sample SD over the seeds finished.`,
      '',
      '| budget | method | MACs | seeds | test top-1 mean +- SD |',
      '|---|---|---|---|---|',
      ...a.headline.map(
        (h) =>
          `| ${Math.round(100 * h.fraction)}% | ${h.method} | ${(h.macs / 1e6).toFixed(2)}M | ${h.seeds.map((s) => s.seed).join(',') || '-'} | ${pct(h.mean)} +- ${num(100 * h.sd)} |`,
      ),
      '',
    );
    const head = headlinePlot(a);
    if (head) {
      mkdirSync(join(out, 'plots'), { recursive: true });
      writeFileSync(join(out, 'plots', 'headline.svg'), head);
      L.push('![headline](plots/headline.svg)', '');
    }
    for (const v of a.verdicts) {
      L.push(
        `- ${Math.round(100 * v.fraction)}% MACs: MetaPruning - uniform = ${(100 * v.gain).toFixed(2)} pts; 2 sigma of the difference ${(100 * v.noise2sd).toFixed(2)} pts: ${v.beyondNoise ? (v.gain >= 0.005 ? 'a gain beyond noise' : 'beyond noise but under the 0.5-pt target') : v.gain < -v.noise2sd ? 'uniform is better beyond noise' : 'within noise'}.`,
      );
    }
    if (a.verdicts.length === 0)
      L.push('- No verdict yet: needs >= 2 seeds of both methods at a budget.');
    const v25 = a.verdicts.find((v) => v.fraction === 0.25);
    const v50 = a.verdicts.find((v) => v.fraction === 0.5);
    if (v25 && v50) {
      const met = v25.beyondNoise && v25.gain >= 0.005 && v25.gain >= v50.gain;
      L.push(
        `- Target (MetaPruning >= uniform + 0.5 pt at 25 % MACs beyond 2 sigma, and the gain at 25 % at least the gain at 50 %): **${met ? 'met' : 'not met'}** (${(100 * v25.gain).toFixed(2)} vs ${(100 * v50.gain).toFixed(2)} pts).`,
      );
    }
    L.push('');
  }
  L.push(...durations(units), '');
  L.push(
    '## Resuming',
    '',
    'From the repository root (any clone with these unit files), then commit `docs/results/fidelity/` and `docs/results/summary.json`:',
    '',
    '```',
    'nice -n 15 npx metaprune fidelity          # skips finished units, continues with the next ones',
    'nice -n 15 npx metaprune fidelity --plan   # the plan and this report from the units, no compute',
    '```',
    '',
    'Once `candidates.json` exists, stages that need the PruningNet (proxy scores, racing search) are skipped on a machine without its snapshots; `--pruningnet` trains it again (deterministic for the seed) to finish them.',
    '',
  );
  writeFileSync(join(out, 'README.md'), `${L.join('\n')}\n`);
  if (a) {
    mkdirSync(dirname(o.summaryPath), { recursive: true });
    writeFileSync(
      o.summaryPath,
      `${JSON.stringify(studySummary(cfg, a, units, o.summaryPath), null, 2)}\n`,
    );
  }
}
