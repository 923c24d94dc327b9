import { readFileSync, rmSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { num, parseFlags, str } from '../args.js';
import { UsageError } from '../errors.js';
import { type ExperimentResults, runExperiment } from '../pipeline/experiment.js';
import { experimentConfig } from '../pipeline/experiment-config.js';
import { writeReport } from '../pipeline/report.js';
import { Reporter } from '../pipeline/reporter.js';
import { InterruptedError } from '../pipeline/session.js';
import { metapruneHome } from '../stack.js';
import { formatSeconds } from '../ui/progress.js';

export const experimentHelp = `metaprune experiment [--quick] [--out docs/results] [--home DIR]
  Reproduces the MetaPruning paper's claims at small scale on Fashion-MNIST, through the
  services (a local stack: nats-server, weight generator, controller, evaluators, latency
  profiler): PruningNets for MobileNetV2 (small, width 0.5) and ResNet-50 (small, width
  0.25) trained through the weight generator; searches at 25/50/75% of the full MACs and
  one latency budget (this machine's measured table); the ablation without weight
  prediction; every winner, its uniform baseline (equal or higher MACs) and >= 12
  fidelity candidates retrained from scratch with one recipe and seed and measured on the
  test set. Writes <out>/README.md (tables, research questions answered from the
  numbers), <out>/plots/*.svg, <out>/models/**/model.json and <out>/results.json.
  About 75 minutes on 2 cores; --quick: tiny settings, a few minutes (numbers meaningless).
  --out DIR    default docs/results (its models/ and plots/ are replaced)
  --home DIR   checkpoints, logs (default $METAPRUNE_HOME or ~/.metaprune)
  --report-only  rewrite README.md and plots/ from <out>/results.json (no run)
  Scale (defaults: the 75-minute run; larger values take longer and measure better):
  --train-steps N, --train-epochs N   PruningNet training per network (0 steps = whole split)
  --generations N, --population N     every search
  --retrain-epochs N, --retrain-images N (per epoch, 0 = all 60k), --retrain-lr X (0 = engine
  default 0.05 x batch/64), --test-images N (0 = all 10k)
  --seed-study S1,S2   extra retraining seeds for one row's winner and baseline, to measure
                       seed variance (default 2,3; "none" turns it off)`;

/** `--seed-study`: "none", or 1..5 distinct comma-separated seeds in [0, 2^31). */
function parseSeeds(text: string): number[] {
  if (text.trim() === 'none') return [];
  const parts = text.split(',').map((x) => x.trim());
  const seeds = parts.map(Number);
  if (
    parts.length > 5 ||
    seeds.some((x, i) => parts[i] === '' || !Number.isInteger(x) || x < 0 || x >= 2 ** 31) ||
    new Set(seeds).size !== seeds.length
  ) {
    throw new UsageError(
      `--seed-study: "${text}" is not 1 to 5 distinct integer seeds in [0, 2147483647], comma-separated, or "none"`,
    );
  }
  return seeds;
}

export async function experimentCommand(argv: string[]): Promise<number> {
  const v = parseFlags(argv, {
    quick: { type: 'boolean' },
    out: { type: 'string' },
    home: { type: 'string' },
    'log-level': { type: 'string' },
    'report-only': { type: 'boolean' },
    'train-steps': { type: 'string' },
    'train-epochs': { type: 'string' },
    generations: { type: 'string' },
    population: { type: 'string' },
    'retrain-epochs': { type: 'string' },
    'retrain-images': { type: 'string' },
    'retrain-lr': { type: 'string' },
    'test-images': { type: 'string' },
    'seed-study': { type: 'string' },
  });
  const quick = v['quick'] === true;
  const cfg = experimentConfig(quick);
  const int = (name: string, min: number, max: number) => num(v, name, { min, max, integer: true });
  for (const n of cfg.networks) {
    n.train.stepsPerEpoch = int('train-steps', 0, 1e6) ?? n.train.stepsPerEpoch;
    n.train.epochs = int('train-epochs', 1, 1000) ?? n.train.epochs;
    n.search.generations = int('generations', 1, 1000) ?? n.search.generations;
    n.search.population = int('population', 2, 1000) ?? n.search.population;
  }
  cfg.retrain.epochs = int('retrain-epochs', 1, 1000) ?? cfg.retrain.epochs;
  cfg.retrain.maxTrainImages = int('retrain-images', 0, 60000) ?? cfg.retrain.maxTrainImages;
  cfg.retrain.lr = num(v, 'retrain-lr', { min: 0, max: 10 }) ?? cfg.retrain.lr;
  cfg.retrain.testImages = int('test-images', 0, 10000) ?? cfg.retrain.testImages;
  const seeds = str(v, 'seed-study');
  if (seeds !== undefined) cfg.seedStudy = parseSeeds(seeds);
  const outDir = resolve(str(v, 'out') ?? 'docs/results');
  const home = resolve(str(v, 'home') ?? metapruneHome());
  if (v['report-only'] === true) {
    const saved = JSON.parse(
      readFileSync(join(outDir, 'results.json'), 'utf8'),
    ) as ExperimentResults;
    rmSync(join(outDir, 'plots'), { recursive: true, force: true });
    const files = writeReport(outDir, saved);
    console.log(`report: ${join(outDir, 'README.md')} (${files.length} files rewritten)`);
    return 0;
  }
  rmSync(join(outDir, 'models'), { recursive: true, force: true });
  rmSync(join(outDir, 'plots'), { recursive: true, force: true });
  const cpu = cpus();
  const machine = {
    cpus: cpu.length,
    cpu: cpu[0]?.model ?? 'unknown',
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    backend: 'tfjs wasm',
  };
  const command = ['metaprune experiment', ...argv].join(' ');
  const ui = new Reporter();
  ui.line(`metaprune experiment${quick ? ' (quick)' : ''}: report -> ${outDir}`);
  try {
    const results = await runExperiment({
      config: cfg,
      quick,
      outDir,
      home,
      reporter: ui,
      command,
      machine,
      ...(str(v, 'log-level') ? { logLevel: str(v, 'log-level')! } : {}),
    });
    const files = writeReport(outDir, results);
    console.log(
      `report: ${join(outDir, 'README.md')} (${files.length} files, models under ${join(outDir, 'models')})`,
    );
    console.log(`wall time ${formatSeconds(results.wallSeconds)}`);
    return 0;
  } catch (err) {
    if (err instanceof InterruptedError) {
      ui.line(`experiment interrupted after ${formatSeconds(ui.elapsed())}; the stack is down`);
      return 130;
    }
    throw err;
  }
}
