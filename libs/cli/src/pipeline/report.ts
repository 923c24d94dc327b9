/**
 * The experiment report: `README.md` (tables, per-layer widths, the research questions
 * answered from the measured numbers only), SVG plots and `results.json`, written to the
 * output directory. Every statement in the generated text is derived from the results;
 * differences smaller than the noise (the larger of the test-set sampling noise and, when
 * the seed study ran, the spread between retraining seeds) are called indistinguishable.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { human } from '../ui/table.js';
import type {
  ExperimentResults,
  ModelRef,
  NetworkResult,
  ResultRow,
  SeedRun,
} from './experiment.js';
import { barChart, PALETTE, xyChart } from './svg.js';

const p1 = (x: number | null | undefined, d = 1) =>
  x === null || x === undefined || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(d)}%`;
const pts = (d: number) =>
  Number.isFinite(d) ? `${d >= 0 ? '+' : ''}${(100 * d).toFixed(2)}` : '–';
const fmtS = (s: number) =>
  s >= 3600
    ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`
    : s >= 60
      ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`
      : `${s.toFixed(0)} s`;

/** Two-sigma test-set sampling noise of a difference of two top-1 figures on n images each. */
export function noise2(a: number, b: number, n: number): number {
  if (!(n > 0)) return Number.POSITIVE_INFINITY;
  return 2 * Math.sqrt((a * (1 - a)) / n + (b * (1 - b)) / n);
}

function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

const link = (m: ModelRef | SeedRun) => `[model](${m.exported}/model.json)`;

function mainTable(r: ExperimentResults): string {
  const rows = r.networks.flatMap((n) =>
    n.rows.map((row) => [
      n.tag,
      row.budget,
      `${human(row.uniform.macs)} / ${human(row.searched.macs)}`,
      `${human(row.uniform.params)} / ${human(row.searched.params)}`,
      row.kind === 'latency'
        ? `${row.uniform.latencyMs?.toFixed(3)} / ${row.searched.latencyMs?.toFixed(3)} ms`
        : '–',
      `${p1(row.uniform.proxyTop1)} / ${p1(row.searched.proxyTop1)}`,
      `${p1(row.uniform.testTop1, 2)} (${row.uniform.scale.toFixed(2)}x)`,
      p1(row.searched.testTop1, 2),
      pts(row.delta),
      `${link(row.uniform)} / ${link(row.searched)}`,
    ]),
  );
  return table(
    [
      'network',
      'budget',
      'MACs uniform / MP',
      'params uniform / MP',
      'pred. latency uniform / MP',
      'proxy top-1 uniform / MP',
      'test top-1 uniform',
      'test top-1 MetaPruning',
      'delta (pts)',
      'models',
    ],
    rows,
  );
}

function verdict(delta: number, n2: number): 'better' | 'worse' | 'tie' {
  if (!Number.isFinite(delta)) return 'tie';
  if (Math.abs(delta) < n2) return 'tie';
  return delta > 0 ? 'better' : 'worse';
}

/**
 * Two-sigma noise of the difference of two single-seed retrainings: 2 * sqrt(2) * the
 * measured seed standard deviation; 0 when the seed study did not run.
 */
export function seedNoise2(r: ExperimentResults): number {
  const sd = r.seedStudy?.sd;
  return sd !== undefined && Number.isFinite(sd) ? 2 * Math.SQRT2 * sd : 0;
}

/** The noise a difference of two retrained top-1 figures is judged against. */
function diffNoise(r: ExperimentResults, a: number, b: number): number {
  return Math.max(noise2(a, b, r.config.retrain.testImages || 10000), seedNoise2(r));
}

function rowsNoise(r: ExperimentResults, row: ResultRow): number {
  return diffNoise(r, row.uniform.testTop1, row.searched.testTop1);
}

function seedSection(r: ExperimentResults): string {
  const st = r.seedStudy;
  if (!st) {
    return '## Retraining-seed variance\n\nNot measured in this run (one seed per network): verdicts use the test-set sampling noise only.';
  }
  const rows = [
    ...st.metapruning.map((m) => ['MetaPruning', String(m.seed), p1(m.testTop1, 2), link(m)]),
    ...st.uniform.map((m) => ['uniform', String(m.seed), p1(m.testTop1, 2), link(m)]),
  ];
  const testN = r.config.retrain.testImages || 10000;
  const all = [...st.metapruning, ...st.uniform].map((m) => m.testTop1);
  const mean = all.reduce((a, b) => a + b, 0) / all.length;
  return (
    `## Retraining-seed variance\n\nThe ${st.network} row "${st.budget}" retrained with ${st.metapruning.length} seeds each (same recipe; the seed changes initialisation, shuffling and augmentation):\n\n` +
    table(['network', 'seed', 'test top-1', 'model'], rows) +
    `\n\nPooled standard deviation over seeds: **${(100 * st.sd).toFixed(2)} pts**, so the difference of two single-seed runs has a two-sigma noise of ${(100 * seedNoise2(r)).toFixed(2)} pts (test-set sampling alone: about ${(100 * noise2(mean, mean, testN)).toFixed(2)} pts at this row's mean top-1 of ${p1(mean)} on ${testN} images). Every verdict below ("better", "worse", "indistinguishable") uses the larger of the two. With ${st.metapruning.length} seeds per network this estimate is itself rough.`
  );
}

const median = (xs: number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/**
 * Retrained networks scoring below the PruningNet's own generated weights (median over
 * every row) have not been trained long enough for their test top-1 to rank architectures.
 */
export function undertrained(r: ExperimentResults): { test: number; proxy: number } | null {
  const models = r.networks.flatMap((n) => n.rows.flatMap((x) => [x.searched, x.uniform]));
  const test = median(models.map((m) => m.testTop1));
  const proxy = median(models.map((m) => m.proxyTop1 ?? Number.NaN));
  return Number.isFinite(test) && Number.isFinite(proxy) && test < proxy ? { test, proxy } : null;
}

function answers(r: ExperimentResults): string[] {
  const out: string[] = [];
  const testN = r.config.retrain.testImages || 10000;
  const fid = r.fidelity;
  const weak = undertrained(r);
  const weakNote = weak
    ? ` Caveat: the retrained networks score below the PruningNet's generated weights (median test top-1 ${p1(weak.test)} against median proxy top-1 ${p1(weak.proxy)}): the retraining is too short for these differences to rank architectures, and the spread between single short runs is larger than the test-set noise used for the verdicts, so this answer is inconclusive.`
    : '';
  // RQ1
  if (fid) {
    const proxies = fid.points.map((p) => p.proxyTop1).filter(Number.isFinite);
    const lo = Math.min(...proxies);
    const hi = Math.max(...proxies);
    const aboveChance = proxies.filter((p) => p > 0.15).length;
    const macs = fid.points.map((p) => p.macs);
    out.push(
      `**RQ1 — can one PruningNet generate usable weights across the space?** Over the ${fid.points.length} fidelity candidates of ${fid.network} (${human(Math.min(...macs))} to ${human(Math.max(...macs))} MACs), the generated weights (no finetuning, BN recalibrated) scored ${p1(lo)} to ${p1(hi)} top-1 on sub-val; ${aboveChance} of ${proxies.length} are clearly above chance (10%, threshold 15%). ` +
        (aboveChance === proxies.length
          ? 'In this run every candidate got usable weights from the one PruningNet.'
          : aboveChance === 0
            ? 'In this run the PruningNet did not produce usable weights for any candidate: it was trained too briefly.'
            : 'Usable for part of the space only in this run.') +
        ` Kendall tau between proxy top-1 and retrained test top-1: ${Number.isFinite(fid.tau) ? fid.tau.toFixed(2) : 'undefined'} (1 = the proxy ranks candidates exactly as retraining does, 0 = no relation).`,
    );
  }
  // RQ2
  const macsRows = r.networks.flatMap((n) => n.rows.filter((x) => x.kind === 'macs'));
  const within = macsRows.filter((x) => x.searched.macs <= x.bound).length;
  const budgetsTotal = r.networks.reduce(
    (s, n) => s + n.search.budgets.length - (n === r.networks[0] && r.latency.available ? 1 : 0),
    0,
  );
  const proxyWins = macsRows.filter((x) => x.searched.proxyTop1 > x.uniform.proxyTop1).length;
  const latRow = r.networks[0]?.rows.find((x) => x.kind === 'latency');
  out.push(
    `**RQ2 — does search with generated weights find good networks under MACs and latency budgets?** The searches found a candidate within ${within} of ${budgetsTotal} MACs budgets (every winner's MACs are at most its bound). By the proxy, the winner beat the uniform baseline of equal or higher MACs in ${proxyWins} of ${macsRows.length} rows. ` +
      (latRow
        ? `Under the latency budget (${latRow.bound.toFixed(3)} ms predicted on this machine's wasm table) the winner is predicted at ${latRow.searched.latencyMs?.toFixed(3)} ms, ${latRow.searched.latencyMs !== undefined && latRow.searched.latencyMs <= latRow.bound ? 'within' : 'OUTSIDE'} the bound. `
        : `No latency budget was searched: ${r.latency.reason ?? 'unavailable'}. `) +
      'Whether these winners are good after retraining is RQ3.',
  );
  // RQ3
  const all = r.networks.flatMap((n) => n.rows);
  const v = all.map((x) => verdict(x.delta, rowsNoise(r, x)));
  const better = v.filter((x) => x === 'better').length;
  const worse = v.filter((x) => x === 'worse').length;
  const ties = v.filter((x) => x === 'tie').length;
  const meanDelta = all.length ? all.reduce((s, x) => s + x.delta, 0) / all.length : Number.NaN;
  out.push(
    `**RQ3 — how does it compare with uniform pruning?** Retrained from scratch with the same recipe and seed, MetaPruning's winner was better than the uniform baseline (equal or higher MACs) beyond the noise (${r.seedStudy ? 'the larger of two standard errors on the test images and the measured seed spread' : `two standard errors on ${testN} test images`}) in ${better} of ${all.length} rows, worse in ${worse}, and indistinguishable in ${ties}; mean delta ${pts(meanDelta)} points. ` +
      (ties * 2 > all.length
        ? `In this run the two methods are mostly indistinguishable (${ties} of ${all.length} rows within noise)${better + worse > 0 ? `; where they differ, ${better > worse ? 'MetaPruning was better more often' : worse > better ? 'the uniform baseline was better more often' : 'each was better as often'}` : ''}.`
        : better > worse
          ? 'In this run MetaPruning beat uniform pruning more often than not.'
          : worse > better
            ? 'In this run MetaPruning did not beat uniform pruning; the uniform baselines did better more often.'
            : 'In this run the two methods are not distinguishable.') +
      (r.seedStudy
        ? ` The seed study (see above) puts the two-sigma noise of a single-seed difference at ${(100 * seedNoise2(r)).toFixed(2)} pts; each row is still one seed per network (retraining: ${r.config.retrain.epochs} epoch(s) over ${r.config.retrain.maxTrainImages || 'all'} images).`
        : ` Retraining-seed variance was not measured (one seed per network; retraining: ${r.config.retrain.epochs} epoch(s) over ${r.config.retrain.maxTrainImages || 'all'} images).`) +
      weakNote,
  );
  // RQ4
  const res = r.networks.find((n) => n.spec.family === 'resnet50');
  if (res) {
    const stageIdx = res.genes.map((g, i) => ({ g, i })).filter(({ g }) => g.kind === 'stage');
    const lines = res.rows.map((row) => {
      const ratios = stageIdx.map(
        ({ g, i }) =>
          `${g.name} ${(row.searched.channels[i]! / Math.max(1, row.uniform.channels[i]!)).toFixed(2)}`,
      );
      return `${row.budget}: ${ratios.join(', ')} (delta ${pts(row.delta)} pts, ${verdict(row.delta, rowsNoise(r, row)) === 'tie' ? 'within noise' : verdict(row.delta, rowsNoise(r, row))})`;
    });
    out.push(
      `**RQ4 — does it prune the widths tied by shortcuts (ResNet stages) well?** In ${res.tag} the stage output widths are single genes shared by every block of the stage (the residual additions tie them). Channels of the winner relative to the uniform baseline, per tied width: ${lines.join('; ')}. Ratios away from 1 show the search pruning the tied widths differently from the uniform scale; the retrained deltas say whether that paid off in this run${weak ? ' (inconclusive here: see the caveat of RQ3)' : ''}.`,
    );
  } else {
    out.push('**RQ4** — no ResNet in this run.');
  }
  // RQ5
  const ab = r.ablation;
  if (ab && ab.rows.length > 0) {
    const diffs = ab.rows.map((x) => x.metapruning.testTop1 - x.ablation.testTop1);
    const vs = ab.rows.map((x, i) =>
      verdict(diffs[i]!, diffNoise(r, x.metapruning.testTop1, x.ablation.testTop1)),
    );
    const mpBetter = vs.filter((x) => x === 'better').length;
    const ablBetter = vs.filter((x) => x === 'worse').length;
    const n = fid?.points.length ?? 0;
    const tauNoise =
      n > 1 ? 2 * Math.sqrt((2 * (2 * n + 5)) / (9 * n * (n - 1))) : Number.POSITIVE_INFINITY;
    const tauLine =
      fid && fid.tauAblation !== null
        ? ` On the fidelity candidates the proxy without weight prediction has Kendall tau ${Number.isFinite(fid.tauAblation) ? fid.tauAblation.toFixed(2) : 'undefined'} against ${Number.isFinite(fid.tau) ? fid.tau.toFixed(2) : 'undefined'} with it; with ${fid.points.length} candidates a tau difference below about ${tauNoise.toFixed(2)} (two standard errors under independence) is not meaningful${Number.isFinite(fid.tau) && Number.isFinite(fid.tauAblation) ? (Math.abs(fid.tau - fid.tauAblation) < tauNoise ? ', so the two proxies rank equally well within noise here' : fid.tau > fid.tauAblation ? ', and prediction ranks better here' : ', and the shared tensor ranks better here') : ''}.`
        : '';
    out.push(
      `**RQ5 — what does weight prediction contribute?** The ablation replaces every generator's input by a constant, so each layer has one shared max-width tensor that candidates crop, trained with the same recipe; the same search (budgets, seed) ran on it. Retrained, MetaPruning's winner was better than the ablation's beyond noise in ${mpBetter} of ${ab.rows.length} budgets, worse in ${ablBetter}, indistinguishable in ${ab.rows.length - mpBetter - ablBetter} (differences ${diffs.map(pts).join(', ')} pts).${tauLine} ` +
        (ab.rows.length - mpBetter - ablBetter > ab.rows.length / 2
          ? `This run does not show a contribution of weight prediction: ${ab.rows.length - mpBetter - ablBetter} of ${ab.rows.length} budgets are within noise${mpBetter + ablBetter > 0 ? `, and where they differ ${mpBetter > ablBetter ? 'the weight-predicting proxy found the network that retrained better' : ablBetter > mpBetter ? 'the shared-tensor proxy found the network that retrained better' : 'each won once'}` : ''}.`
          : mpBetter > ablBetter
            ? 'In this run weight prediction helped.'
            : ablBetter > mpBetter
              ? 'In this run weight prediction did not help: the shared-tensor proxy found networks that retrained better.'
              : 'This run does not show a contribution of weight prediction.') +
        weakNote,
    );
  }
  return out;
}

function widthChart(n: NetworkResult, row: ResultRow): string {
  const frac = (ch: readonly number[]) => ch.map((c, i) => c / Math.max(1, n.genes[i]?.max ?? 1));
  return barChart({
    title: `${n.tag}, ${row.budget}: width per gene (fraction of its maximum)`,
    categories: n.genes.map((g) => g.name),
    series: [
      {
        name: `uniform ${row.uniform.scale.toFixed(2)}x`,
        values: frac(row.uniform.channels),
        color: PALETTE[0]!,
      },
      { name: 'MetaPruning winner', values: frac(row.searched.channels), color: PALETTE[1]! },
    ],
    yLabel: 'channels / max channels',
    yMax: 1.05,
  });
}

/** Writes README.md, plots/*.svg and results.json; returns the written paths. */
export function writeReport(outDir: string, r: ExperimentResults): string[] {
  const plots = join(outDir, 'plots');
  mkdirSync(plots, { recursive: true });
  const written: string[] = [];
  const put = (name: string, text: string) => {
    const path = join(outDir, name);
    writeFileSync(path, text);
    written.push(path);
    return name;
  };
  const sections: string[] = [];
  const images: string[] = [];

  for (const n of r.networks) {
    const macsRows = n.rows.filter((x) => x.kind === 'macs');
    const acc = put(
      `plots/accuracy-vs-macs-${n.tag}.svg`,
      xyChart({
        title: `${n.tag}: retrained test top-1 vs MACs`,
        xLabel: 'MACs (millions)',
        yLabel: 'test top-1 (%)',
        series: [
          {
            name: 'uniform',
            color: PALETTE[0]!,
            points: [...macsRows]
              .sort((a, b) => a.uniform.macs - b.uniform.macs)
              .map((x) => [x.uniform.macs / 1e6, 100 * x.uniform.testTop1] as const),
          },
          {
            name: 'MetaPruning',
            color: PALETTE[1]!,
            points: [...macsRows]
              .sort((a, b) => a.searched.macs - b.searched.macs)
              .map((x) => [x.searched.macs / 1e6, 100 * x.searched.testTop1] as const),
          },
          ...(r.ablation && r.ablation.network === n.tag
            ? [
                {
                  name: 'no weight prediction (ablation)',
                  color: PALETTE[2]!,
                  points: [...r.ablation.rows]
                    .sort((a, b) => a.ablation.macs - b.ablation.macs)
                    .map((x) => [x.ablation.macs / 1e6, 100 * x.ablation.testTop1] as const),
                },
              ]
            : []),
        ],
      }),
    );
    const hist = n.search.history;
    const prog = put(
      `plots/search-progress-${n.tag}.svg`,
      xyChart({
        title: `${n.tag}: best proxy top-1 per budget by generation`,
        xLabel: 'generation',
        xInteger: true,
        yLabel: 'best proxy top-1 (%)',
        series: n.search.budgets.map((b, i) => ({
          name: b,
          color: PALETTE[i % PALETTE.length]!,
          points: hist
            .filter((h) => h.best[i] !== null && h.best[i] !== undefined)
            .map((h) => [h.generation, 100 * (h.best[i] as number)] as const),
        })),
      }),
    );
    images.push(`![accuracy vs MACs](${acc})`, `![search progress](${prog})`);
    const widthImgs = n.rows.map((row) =>
      put(
        `plots/widths-${n.tag}-${row.kind === 'latency' ? 'latency' : `${Math.round((100 * row.bound) / n.fullMacs)}pct`}.svg`,
        widthChart(n, row),
      ),
    );
    sections.push(
      `### ${n.tag}\n\nFull network: ${human(n.fullMacs)} MACs, ${human(n.fullParams)} params, ${n.genes.length} genes. PruningNet \`${n.pruningnet.id}\` v${n.pruningnet.version} (${fmtS(n.pruningnet.seconds)}, final training loss ${n.pruningnet.loss.toFixed(3)}${n.pruningnet.validationAccuracy !== null ? `, sub-val top-1 at full width ${p1(n.pruningnet.validationAccuracy)}` : ''}); search \`${n.search.id}\`: ${n.search.evaluated} candidates evaluated in ${fmtS(n.search.seconds)}.\n\n![accuracy vs MACs](${acc})\n\n![search progress](${prog})\n\nPer-layer widths (channels per gene) of the winners against their uniform baselines:\n\n${widthImgs.map((w) => `![widths](${w})`).join('\n')}\n\n` +
        table(
          ['budget', ...n.genes.map((g) => g.name)],
          n.rows.flatMap((row) => [
            [`${row.budget} uniform`, ...row.uniform.channels.map(String)],
            [`${row.budget} MetaPruning`, ...row.searched.channels.map(String)],
          ]),
        ),
    );
  }

  const fid = r.fidelity;
  let fidSection = '';
  if (fid) {
    const scatter = put(
      'plots/proxy-vs-retrained.svg',
      xyChart({
        title: `${fid.network}: PruningNet proxy vs retrained top-1`,
        xLabel: 'proxy top-1 on sub-val (%)',
        yLabel: 'retrained test top-1 (%)',
        series: [
          {
            name: `weight prediction (Kendall tau ${Number.isFinite(fid.tau) ? fid.tau.toFixed(2) : 'n/a'})`,
            color: PALETTE[1]!,
            line: false,
            points: fid.points.map((p) => [100 * p.proxyTop1, 100 * p.testTop1] as const),
          },
          ...(fid.tauAblation !== null
            ? [
                {
                  name: `no weight prediction (Kendall tau ${Number.isFinite(fid.tauAblation) ? fid.tauAblation.toFixed(2) : 'n/a'})`,
                  color: PALETTE[2]!,
                  line: false,
                  points: fid.points
                    .filter((p) => p.proxyTop1Ablation !== null)
                    .map((p) => [100 * (p.proxyTop1Ablation as number), 100 * p.testTop1] as const),
                },
              ]
            : []),
        ],
      }),
    );
    fidSection =
      `## Proxy fidelity (${fid.network})\n\n${fid.points.length} candidates: the searched winners, the uniform baselines and MACs-stratified random encodings. Kendall tau (tau-b) between proxy top-1 and retrained test top-1: **${Number.isFinite(fid.tau) ? fid.tau.toFixed(3) : 'undefined'}** with weight prediction${fid.tauAblation !== null ? `, **${Number.isFinite(fid.tauAblation) ? fid.tauAblation.toFixed(3) : 'undefined'}** without (ablation proxy)` : ''}.\n\n![proxy vs retrained](${scatter})\n\n` +
      table(
        [
          'candidate',
          'MACs',
          'params',
          'proxy top-1',
          'proxy top-1 (no prediction)',
          'test top-1',
          'model',
        ],
        fid.points.map((p) => [
          p.source,
          human(p.macs),
          human(p.params),
          p1(p.proxyTop1),
          p1(p.proxyTop1Ablation),
          p1(p.testTop1, 2),
          `[model](${p.exported}/model.json)`,
        ]),
      );
  }

  let ablSection = '';
  if (r.ablation) {
    const ab = r.ablation;
    ablSection =
      `## Ablation: no weight prediction (${ab.network})\n\nPruningNet \`${ab.pruningnet.id}\` trained with \`no_weight_prediction\` (every generator sees a constant input: one shared max-width tensor per layer, cropped per candidate), same recipe; search \`${ab.search.id}\` with the same budgets and seed (${ab.search.evaluated} candidates).\n\n` +
      table(
        [
          'budget',
          'test top-1 uniform',
          'test top-1 MetaPruning',
          'test top-1 ablation',
          'MACs MP / ablation',
          'proxy MP / ablation (own proxies)',
          'ablation model',
        ],
        ab.rows.map((x) => [
          x.budget,
          p1(x.uniform.testTop1, 2),
          p1(x.metapruning.testTop1, 2),
          p1(x.ablation.testTop1, 2),
          `${human(x.metapruning.macs)} / ${human(x.ablation.macs)}`,
          `${p1(x.metapruning.proxyTop1)} / ${p1(x.ablation.proxyTop1)}`,
          `[model](${x.ablation.exported}/model.json)`,
        ]),
      );
  }

  const lat = r.latency;
  const latSection = lat.available
    ? `## Latency budget\n\nDevice \`${lat.device}\` (this machine, tfjs wasm backend, batch 1): table measured by \`metaprune profile\` in ${fmtS(lat.profileSeconds ?? 0)} (grid ${r.config.latency.grid} points per axis, interpolated) and uploaded to the stack's latency profiler; bound ${lat.boundMs?.toFixed(3)} ms = the predicted latency of the uniform network with about half the MACs. The latency row of the main table compares the winner with the smallest uniform network whose predicted latency is at least the winner's.${lat.profile && 'median_abs_error_pct' in lat.profile ? ` Prediction error on ${String(lat.profile['encodings'])} random networks: median ${Number(lat.profile['median_abs_error_pct']).toFixed(1)}%, p95 ${Number(lat.profile['p95_abs_error_pct']).toFixed(1)}%.` : ''}`
    : `## Latency budget\n\nNot searched in this run: ${lat.reason ?? 'no latency profiler'}.`;

  const cfg = r.config;
  const md = [
    `# MetaPruning at small scale: results${r.quick ? ' (quick run: tiny settings, numbers meaningless)' : ''}`,
    '',
    `Generated by \`metaprune experiment\` from [results.json](results.json); do not edit by hand. Rerun with the command below.`,
    '',
    '## How this was run',
    '',
    `- command: \`${r.command}\``,
    `- started ${r.startedAt}, wall time ${fmtS(r.wallSeconds)} (${Object.entries(r.phases)
      .map(([k, s]) => `${k} ${fmtS(s)}`)
      .join(', ')})`,
    `- machine: ${Object.entries(r.machine)
      .map(([k, v]) => `${k} ${String(v)}`)
      .join(', ')}`,
    `- dataset: ${cfg.dataset} (PruningNets train on sub-train; candidates are scored on the held-out sub-val; the test set is used only for the retrained models)`,
    `- seeds: PruningNet training ${cfg.networks.map((n) => `${n.key} ${n.train.seed}`).join(', ')}; searches ${cfg.networks.map((n) => `${n.key} ${n.search.seed}`).join(', ')}; retraining ${cfg.retrain.seed} (every model); fidelity candidates ${cfg.seed}`,
    `- PruningNet training: ${cfg.networks.map((n) => `${n.key} ${n.train.epochs} epoch(s) x ${n.train.stepsPerEpoch || 'all'} steps of ${n.train.batchSize}`).join('; ')}`,
    `- search: ${cfg.networks.map((n) => `${n.key} ${n.search.generations} generations x population ${n.search.population}, BN recalibration ${n.search.recalibrationBatches} batches of ${n.search.batchSize}, ${n.search.validationImages || 'all'} sub-val images`).join('; ')}; MACs budgets are bands [0.85, 1] x bound`,
    `- retraining (every row, same recipe): from scratch, ${cfg.retrain.epochs} epoch(s) x ${cfg.retrain.maxTrainImages || 'all 60,000'} training images, batch ${cfg.retrain.batchSize}, SGD momentum 0.9, cosine learning rate, label smoothing 0.1, weight decay 4e-5, augmentation; test top-1 on the first ${cfg.retrain.testImages || 10000} test images${cfg.seedStudy?.length ? `; seed study: seeds ${cfg.seedStudy.join(', ')} besides ${cfg.retrain.seed} for one row` : ''}`,
    '',
    '## Uniform pruning vs MetaPruning',
    '',
    'Each MetaPruning winner is compared with the smallest uniform network (every gene at one scale) with at least its MACs (latency row: at least its predicted latency). delta = MetaPruning − uniform, in points of test top-1.',
    '',
    mainTable(r),
    '',
    seedSection(r),
    '',
    '## Research questions (answered from the numbers above)',
    '',
    ...answers(r).flatMap((a) => [a, '']),
    '## Per network',
    '',
    ...sections.flatMap((s) => [s, '']),
    latSection,
    '',
    ablSection,
    '',
    fidSection,
    '',
    '## Files',
    '',
    '- `results.json`: every number above (and the encodings).',
    '- `plots/*.svg`: the charts.',
    '- `models/<network>/<name>/model.json`: every retrained model (tfjs layers model; `userDefinedMetadata` records encoding, channels, MACs, params and the measured `test_top1`). Load with `tf.loadLayersModel` (see `metaprune retrain --help`).',

    '- `fidelity/`: the long, resumable fidelity study (`metaprune fidelity`, issue 16) — proxy fidelity by PruningNet length and proxy size, rank stability of the retraining recipe, racing, MetaPruning vs uniform over seeds; `summary.json` beside this file is its machine-readable headline.',
    '',
  ].join('\n');
  put('README.md', md);
  put(
    'results.json',
    `${JSON.stringify(r, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1)}\n`,
  );
  return written;
}
