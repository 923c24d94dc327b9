/**
 * `metaprune experiment --quick` end to end through the real services (nats-server, weight
 * generator, controller, two evaluators, latency profiler as processes): the report, the
 * plots and the models exist and agree with results.json — winners within their budgets,
 * baselines at equal or higher MACs (latency), Kendall tau recomputable and in [-1, 1],
 * every SVG well-formed, every model.json recording the measured test_top1, and the
 * ablation PruningNet checkpointed without weight prediction.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ExperimentResults,
  experimentConfig,
  Reporter,
  runExperiment,
  writeReport,
} from '@metaprune/cli';
import { buildNetwork, costModel, kendallTau } from '@metaprune/core';
import { afterAll, describe, expect, it } from 'vitest';

/** Well-formedness of an XML document: one root, balanced tags, quoted attributes. */
function checkXml(text: string): { root: string; elements: number } {
  const body = text.replace(/^<\?xml[^>]*\?>\s*/, '');
  const stack: string[] = [];
  let root = '';
  let elements = 0;
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let pos = 0;
  for (let m = tag.exec(body); m; m = tag.exec(body)) {
    const between = body.slice(pos, m.index);
    if (/[<>]/.test(between))
      throw new Error(`stray markup near offset ${pos}: ${between.slice(0, 60)}`);
    pos = m.index + m[0].length;
    const [, close, name, , selfClose] = m;
    if (close) {
      if (stack.pop() !== name) throw new Error(`mismatched </${name}> at ${m.index}`);
      continue;
    }
    elements++;
    if (stack.length === 0) {
      if (root) throw new Error('more than one root element');
      root = name!;
    }
    if (!selfClose) stack.push(name!);
  }
  if (/[<>]/.test(body.slice(pos).trim())) throw new Error('stray markup at the end');
  if (stack.length > 0) throw new Error(`unclosed <${stack.join('>, <')}>`);
  return { root, elements };
}

describe('metaprune experiment --quick through the real services', () => {
  const dir = mkdtempSync(join(tmpdir(), 'metaprune-experiment-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a consistent report, plots and models', async () => {
    const out = join(dir, 'results');
    const home = join(dir, 'home');
    const cfg = experimentConfig(true);
    const lines: string[] = [];
    const results = await runExperiment({
      config: cfg,
      quick: true,
      outDir: out,
      home,
      reporter: new Reporter({ write: (t) => lines.push(t), tty: false, plainEveryMs: 0 }),
      command: 'metaprune experiment --quick (test)',
      machine: { cpus: 2 },
    });
    writeReport(out, results);
    for (let i = 1; i <= 6; i++) expect(lines.join('')).toContain(`[${i}/6]`);

    // results.json is what the run returned (NaN written as null)
    const saved = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as ExperimentResults;
    expect(saved.format).toBe('metaprune-experiment/1');
    expect(saved.networks.map((n) => n.spec.family)).toEqual(['mobilenetv2', 'resnet50']);
    expect(saved.wallSeconds).toBeGreaterThan(0);

    // the main table: winners within their budgets, baselines at equal or higher cost
    let rows = 0;
    for (const n of saved.networks) {
      const net = buildNetwork(n.spec);
      const model = costModel(net);
      expect(n.fullMacs).toBe(model.cost(net.genes.map(() => 30)).macs);
      expect(n.search.history.length).toBeGreaterThan(0);
      for (const row of n.rows) {
        rows++;
        for (const m of [row.searched, row.uniform]) {
          expect(m.macs).toBe(model.cost(m.encoding).macs);
          expect(m.params).toBe(model.cost(m.encoding).params);
          expect(m.testTop1).toBeGreaterThanOrEqual(0);
          expect(m.testTop1).toBeLessThanOrEqual(1);
        }
        expect(new Set(row.uniform.encoding).size).toBe(1);
        expect(row.delta).toBeCloseTo(row.searched.testTop1 - row.uniform.testTop1, 12);
        if (row.kind === 'macs') {
          expect(row.searched.macs).toBeLessThanOrEqual(row.bound);
          expect(row.searched.macs).toBeGreaterThanOrEqual(Math.floor(0.85 * row.bound));
          expect(row.uniform.macs).toBeGreaterThanOrEqual(row.searched.macs);
        } else {
          expect(saved.latency.available).toBe(true);
          expect(row.searched.latencyMs!).toBeLessThanOrEqual(row.bound);
          expect(row.uniform.latencyMs!).toBeGreaterThanOrEqual(row.searched.latencyMs!);
        }
      }
    }
    expect(rows).toBeGreaterThanOrEqual(4);

    // fidelity: at least 12 candidates, tau recomputes from the points and is in [-1, 1]
    const fid = saved.fidelity!;
    expect(fid.points.length).toBeGreaterThanOrEqual(12);
    expect(new Set(fid.points.map((p) => p.encoding.join(','))).size).toBe(fid.points.length);
    const scored = fid.points.filter((p) => p.proxyTop1 !== null);
    const tau = kendallTau(
      scored.map((p) => p.proxyTop1),
      scored.map((p) => p.testTop1),
    );
    if (Number.isFinite(tau)) {
      expect(fid.tau).toBeCloseTo(tau, 12);
      expect(Math.abs(fid.tau)).toBeLessThanOrEqual(1);
    } else {
      expect(fid.tau).toBeNull();
    }
    for (const p of fid.points) expect(p.proxyTop1Ablation).not.toBeUndefined();

    // the ablation: its PruningNet was checkpointed without weight prediction
    const ab = saved.ablation!;
    expect(ab.pruningnet.noWeightPrediction).toBe(true);
    const versions = join(home, 'checkpoints', 'pruningnets', ab.pruningnet.id);
    const manifest = JSON.parse(
      readFileSync(join(versions, `v${ab.pruningnet.version}`, 'manifest.json'), 'utf8'),
    );
    expect(manifest.weightPrediction).toBe(false);
    const mpManifest = JSON.parse(
      readFileSync(
        join(
          home,
          'checkpoints',
          'pruningnets',
          saved.networks[0]!.pruningnet.id,
          `v${saved.networks[0]!.pruningnet.version}`,
          'manifest.json',
        ),
        'utf8',
      ),
    );
    expect(mpManifest.weightPrediction).toBeUndefined();

    // the seed study: the middle MACs row of the first network, once per seed, the first run
    // being the row's own models; the pooled sd recomputes from the runs
    const st = saved.seedStudy!;
    const seeds = [cfg.retrain.seed, ...cfg.seedStudy];
    expect(st.metapruning.map((m) => m.seed)).toEqual(seeds);
    expect(st.uniform.map((m) => m.seed)).toEqual(seeds);
    const studiedRow = saved.networks[0]!.rows.find((r) => r.budget === st.budget)!;
    expect(st.metapruning[0]!.testTop1).toBe(studiedRow.searched.testTop1);
    expect(st.uniform[0]!.testTop1).toBe(studiedRow.uniform.testTop1);
    const sd = (xs: number[]) => {
      const m = xs.reduce((a, b) => a + b, 0) / xs.length;
      return xs.reduce((a, b) => a + (b - m) ** 2, 0);
    };
    const pooled = Math.sqrt(
      (sd(st.metapruning.map((m) => m.testTop1)) + sd(st.uniform.map((m) => m.testTop1))) /
        (st.metapruning.length - 1 + st.uniform.length - 1),
    );
    expect(st.sd).toBeCloseTo(pooled, 12);
    for (const run of [...st.metapruning.slice(1), ...st.uniform.slice(1)]) {
      const meta = JSON.parse(
        readFileSync(join(out, run.exported, 'model.json'), 'utf8'),
      ).userDefinedMetadata;
      expect(meta.test_top1).toBe(run.testTop1);
      expect(meta.seed).toBe(run.seed);
      expect(meta.retrain.seed).toBe(run.seed);
    }

    // every model of every table: model.json with the measured test_top1
    const models = [
      ...saved.networks.flatMap((n) => n.rows.flatMap((r) => [r.searched, r.uniform])),
      ...ab.rows.map((r) => r.ablation),
      ...fid.points,
    ];
    for (const m of models) {
      const meta = JSON.parse(
        readFileSync(join(out, m.exported, 'model.json'), 'utf8'),
      ).userDefinedMetadata;
      expect(meta.test_top1).toBe(m.testTop1);
      expect(meta.encoding).toEqual(m.encoding);
      expect(meta.macs).toBe(m.macs);
      expect(meta.seed).toBe(cfg.retrain.seed);
      expect(existsSync(join(out, m.exported, 'group1-shard1of1.bin'))).toBe(true);
    }

    // plots: well-formed SVG documents, the ones the issue asks for
    const svgs = readdirSync(join(out, 'plots')).filter((f) => f.endsWith('.svg'));
    for (const name of ['proxy-vs-retrained.svg']) expect(svgs).toContain(name);
    expect(svgs.some((f) => f.startsWith('accuracy-vs-macs-'))).toBe(true);
    expect(svgs.some((f) => f.startsWith('search-progress-'))).toBe(true);
    expect(svgs.some((f) => f.startsWith('widths-'))).toBe(true);
    for (const f of svgs) {
      const { root, elements } = checkXml(readFileSync(join(out, 'plots', f), 'utf8'));
      expect(root).toBe('svg');
      expect(elements).toBeGreaterThan(5);
    }

    // the report: every research question, every link resolves
    const md = readFileSync(join(out, 'README.md'), 'utf8');
    for (const rq of ['RQ1', 'RQ2', 'RQ3', 'RQ4', 'RQ5']) expect(md).toContain(`**${rq}`);
    expect(md).toContain('## Retraining-seed variance');
    expect(md).toContain(`${(100 * st.sd).toFixed(2)} pts`);
    expect(md).toContain('metaprune experiment --quick (test)');
    const links = [...md.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(10);
    for (const l of links) expect(existsSync(join(out, l)), l).toBe(true);
  }, 600_000);
});
