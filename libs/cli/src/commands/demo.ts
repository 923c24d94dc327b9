import { resolve } from 'node:path';
import { num, parseFlags, str } from '../args.js';
import { UsageError } from '../errors.js';
import { comparisonJson, comparisonTable } from '../pipeline/compare.js';
import { demoConfig } from '../pipeline/config.js';
import { runDemo } from '../pipeline/demo.js';
import { Reporter } from '../pipeline/reporter.js';
import { InterruptedError } from '../pipeline/session.js';
import { metapruneHome } from '../stack.js';
import { formatSeconds } from '../ui/progress.js';

export const demoHelp = `metaprune demo [--quick] [--out DIR] [--home DIR] [--budgets 0.3,0.6] [--json]
  The whole pipeline on Fashion-MNIST through the services, about ten minutes on 2 cores:
  brings the stack up (nats-server, weight generator, controller, 2 evaluators), trains a
  PruningNet for MobileNetV2 (small preset, width 0.5) through the weight generator,
  searches the MACs budgets through the controller (live progress), scores the uniform
  baselines with the same proxy, retrains every winner and its uniform baseline (equal or
  higher MACs) from scratch with the same recipe and seed, prints the comparison table
  and where the exported tfjs models are, and shuts the stack down (also on Ctrl-C).
  --budgets F,F   budgets as fractions of the full network's MACs (default 0.3,0.6)
  --out DIR       exported models (default <home>/demo/<time>)
  --home DIR      checkpoints and logs (default $METAPRUNE_HOME or ~/.metaprune)
  --quick         a tiny configuration (width 0.25, a few steps; about a minute)
  --train-steps N, --generations N, --population N, --retrain-images N: override the recipe
  --json          the result as one JSON line on stdout (progress still on stderr)`;

export async function demoCommand(argv: string[]): Promise<number> {
  const v = parseFlags(argv, {
    quick: { type: 'boolean' },
    out: { type: 'string' },
    home: { type: 'string' },
    budgets: { type: 'string' },
    evaluators: { type: 'string' },
    'train-steps': { type: 'string' },
    generations: { type: 'string' },
    population: { type: 'string' },
    'retrain-images': { type: 'string' },
    'log-level': { type: 'string' },
    json: { type: 'boolean' },
  });
  const cfg = demoConfig(v['quick'] === true);
  const list = str(v, 'budgets');
  if (list !== undefined) {
    cfg.budgetFractions = list.split(',').map((p) => {
      const x = Number(p.trim());
      if (p.trim() === '' || !(x > 0 && x <= 1)) {
        throw new UsageError(`--budgets: ${JSON.stringify(p)} is not a fraction in (0, 1]`);
      }
      return x;
    });
  }
  cfg.evaluators = num(v, 'evaluators', { min: 1, max: 64, integer: true }, cfg.evaluators)!;
  cfg.train.stepsPerEpoch = num(
    v,
    'train-steps',
    { min: 1, max: 1e6, integer: true },
    cfg.train.stepsPerEpoch,
  )!;
  cfg.search.generations = num(
    v,
    'generations',
    { min: 1, max: 1000, integer: true },
    cfg.search.generations,
  )!;
  cfg.search.population = num(
    v,
    'population',
    { min: 2, max: 1000, integer: true },
    cfg.search.population,
  )!;
  cfg.retrain.maxTrainImages = num(
    v,
    'retrain-images',
    { min: 64, max: 60000, integer: true },
    cfg.retrain.maxTrainImages,
  )!;
  const home = resolve(str(v, 'home') ?? metapruneHome());
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace(/Z$/, '');
  const outDir = resolve(str(v, 'out') ?? `${home}/demo/${stamp}`);
  const ui = new Reporter();
  ui.line(
    `metaprune demo: MetaPruning on ${cfg.dataset} through the services; models -> ${outDir}`,
  );
  let result: Awaited<ReturnType<typeof runDemo>>;
  try {
    result = await runDemo({
      config: cfg,
      home,
      outDir,
      reporter: ui,
      ...(str(v, 'log-level') ? { logLevel: str(v, 'log-level')! } : {}),
    });
  } catch (err) {
    if (err instanceof InterruptedError) {
      ui.line(`demo interrupted after ${formatSeconds(ui.elapsed())}; the stack is down`);
      return 130;
    }
    throw err;
  }
  if (v['json']) {
    console.log(
      JSON.stringify({
        network: result.network,
        pruningnet: result.pruningnet.pruningnetId,
        pruningnetVersion: result.pruningnet.version,
        search: result.search.searchId,
        rows: comparisonJson(result.rows),
        outDir: result.outDir,
        seconds: result.seconds,
        phases: result.phases,
      }),
    );
    return 0;
  }
  console.log(
    `\nMetaPruning vs uniform pruning, ${result.network} on ${cfg.dataset}: proxy top-1 = PruningNet-generated weights on ${cfg.search.validationImages || 'all'} held-out sub-val images; test top-1 = after a brief retrain from scratch (${cfg.retrain.epochs} epoch x ${cfg.retrain.maxTrainImages || 'all'} images, same recipe and seed ${cfg.retrain.seed}) on ${cfg.retrain.testImages || 'all 10,000'} test images\n`,
  );
  console.log(comparisonTable(result.rows));
  console.log('\nexported models (tfjs model.json + weights; metadata records test_top1):');
  for (const r of result.retrained) console.log(`  ${r.exported}`);
  const ph = Object.entries(result.phases)
    .map(([k, s]) => `${k} ${formatSeconds(s)}`)
    .join(', ');
  console.log(`\nwall time ${formatSeconds(result.seconds)} (${ph})`);
  return 0;
}
