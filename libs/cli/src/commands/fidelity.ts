import { resolve } from 'node:path';
import { num, parseFlags, str } from '../args.js';
import { Reporter } from '../pipeline/reporter.js';
import { InterruptedError } from '../pipeline/session.js';
import { studyConfig } from '../pipeline/study/config.js';
import { runStudy } from '../pipeline/study/study.js';
import { formatSeconds } from '../ui/progress.js';

export const fidelityHelp = `metaprune fidelity [--out docs/results/fidelity] [--work DIR] [--jobs 2] [--plan] [--no-retrain] [--quick]
  The fidelity study (issue 16): one PruningNet run (MobileNetV2 small, width 0.5) with
  snapshots after 0.25 / 1 / 3 epochs; one search (12.5 / 25 / 50 % MACs) with the last;
  >= 24 MACs-stratified candidates (winners, uniform baselines, random); their proxy
  scores at every snapshot x proxy size (256 img / 2 BN batches, 1024 / 8, 2048 / 16);
  every candidate retrained from scratch (one epoch of 60k images), 8 of them also with two
  epochs (rank stability of the recipe), the 25 / 50 % winners and baselines with seeds
  1, 2, 3 (the headline; 12.5 % too). Many hours on 2 cores: every finished unit is a file under --out
  and the same command skips it, so it resumes where it stopped (also in a fresh clone:
  the stages that need the PruningNet run first; its checkpoints stay in --work).
  Prints the plan (units, expected hours) first; rewrites <out>/README.md, <out>/plots,
  <out>/analysis.json and summary.json after every unit.
  --out DIR     unit files (commit them); default docs/results/fidelity
  --work DIR    PruningNet checkpoints, other models (default <out>/../../.fidelity-work)
  --jobs N      processes at once (default 2: one per core)
  --summary F   summary.json (default <out>/../summary.json, i.e. docs/results/summary.json)
  --plan        print the plan, rewrite README.md / summary.json from the units, stop
  --no-retrain  stop before retraining
  --pruningnet  once the candidates exist, stages that need the PruningNet are skipped when
                its snapshots are not in --work (a fresh clone); this trains it again
  --quick       tiny settings (a minute or two; numbers meaningless)`;

export async function fidelityCommand(argv: string[]): Promise<number> {
  const v = parseFlags(argv, {
    out: { type: 'string' },
    work: { type: 'string' },
    jobs: { type: 'string' },
    plan: { type: 'boolean' },
    summary: { type: 'string' },
    'no-retrain': { type: 'boolean' },
    pruningnet: { type: 'boolean' },
    quick: { type: 'boolean' },
  });
  const cfg = studyConfig(v['quick'] === true);
  cfg.jobs = num(v, 'jobs', { min: 1, max: 64, integer: true }, cfg.jobs) as number;
  const out = resolve(str(v, 'out') ?? 'docs/results/fidelity');
  const work = resolve(str(v, 'work') ?? resolve(out, '..', '..', '..', '.fidelity-work'));
  const ui = new Reporter();
  ui.line(`metaprune fidelity${v['quick'] ? ' (quick)' : ''}: units -> ${out}, work -> ${work}`);
  const abort = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => abort.abort(new InterruptedError(sig));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await runStudy({
      cfg,
      out,
      work,
      reporter: ui,
      signal: abort.signal,
      summaryPath: resolve(str(v, 'summary') ?? resolve(out, '..', 'summary.json')),
      command: ['metaprune fidelity', ...argv.filter((a) => a !== '--plan')].join(' '),
      planOnly: v['plan'] === true,
      skipRetrain: v['no-retrain'] === true,
      retrainPruningNet: v['pruningnet'] === true,
    });
    ui.line(`done in ${formatSeconds(ui.elapsed())}`);
    return 0;
  } catch (err) {
    if (err instanceof InterruptedError) {
      ui.line(`interrupted after ${formatSeconds(ui.elapsed())}; finished units are kept`);
      return 130;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
