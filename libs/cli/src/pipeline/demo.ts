/**
 * The whole pipeline of `npm run demo` on one network: the stack up, a PruningNet trained
 * through the weight generator, one search over several MACs budgets through the
 * controller, the uniform baselines scored by the same evaluators, the winners and the
 * baselines retrained from scratch and exported, the comparison table, the stack down.
 */
import { buildNetwork, encodingKey } from '@metaprune/core';
import { budgetProto, macsBudgets } from './budgets.js';
import type { ComparisonRow } from './compare.js';
import { comparisonRows, networkTag, planComparison } from './compare-jobs.js';
import type { PipelineConfig } from './config.js';
import { proxyTop1 } from './proxy-eval.js';
import type { Reporter } from './reporter.js';
import { runRetrains } from './retrain.js';
import type { RetrainOutcome } from './retrain-job.js';
import { runSearchPhase, type SearchOutcome } from './search.js';
import { withStack } from './session.js';
import { type TrainedPruningNet, trainPruningNet } from './train-pruningnet.js';

export interface DemoOptions {
  config: PipelineConfig;
  /** Stack home: checkpoints, logs (default metapruneHome()). */
  home?: string;
  /** Exported models go below here. */
  outDir: string;
  reporter: Reporter;
  logLevel?: string;
}

export interface DemoResult {
  network: string;
  pruningnet: TrainedPruningNet;
  search: SearchOutcome;
  rows: ComparisonRow[];
  /** Every retrained model, by job id. */
  retrained: RetrainOutcome[];
  outDir: string;
  seconds: number;
  phases: Record<string, number>;
}

const PHASES = 5;

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const { config: cfg, reporter: ui } = o;
  const t0 = Date.now();
  const phases: Record<string, number> = {};
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const s = Date.now();
    try {
      return await fn();
    } finally {
      phases[name] = (Date.now() - s) / 1000;
    }
  };
  ui.phase(
    1,
    PHASES,
    `starting the stack (nats-server, weight generator, controller, ${cfg.evaluators} evaluators)`,
  );
  return withStack(
    {
      evaluators: cfg.evaluators,
      ...(o.home ? { home: o.home } : {}),
      logLevel: o.logLevel ?? 'warn',
      log: (l) => ui.line(l),
    },
    async ({ stack, signal }) => {
      phases['stack'] = (Date.now() - t0) / 1000;
      // the network as the weight generator will resolve it (channels fitted to the dataset)
      const requested = buildNetwork(cfg.network);
      ui.phase(
        2,
        PHASES,
        `training a PruningNet for ${networkTag(requested)} on ${cfg.dataset} through the weight generator`,
      );
      const pn = await timed('train', () =>
        trainPruningNet({
          address: stack.weightGenerator.address,
          network: requested,
          dataset: cfg.dataset,
          recipe: cfg.train,
          displayName: `demo ${networkTag(requested)}`,
          reporter: ui,
          signal,
        }),
      );
      const net = pn.network;
      ui.line(
        `PruningNet ${pn.pruningnetId} v${pn.version} trained in ${pn.seconds.toFixed(0)} s (loss ${pn.loss.toFixed(3)}${pn.validationAccuracy !== undefined ? `, sub-val ${(100 * pn.validationAccuracy).toFixed(1)}%` : ''})`,
      );

      const budgets = macsBudgets(net, cfg.budgetFractions);
      ui.phase(
        3,
        PHASES,
        `searching ${budgets.length} MACs budgets through the controller (${budgets.map((b) => b.name).join(', ')})`,
      );
      const search = await timed('search', () =>
        runSearchPhase({
          controllerAddress: stack.controller.address,
          pruningnetId: pn.pruningnetId,
          pruningnetVersion: pn.version,
          budgets: budgets.map(budgetProto),
          recipe: cfg.search,
          displayName: 'demo',
          reporter: ui,
          signal,
        }),
      );
      ui.line(
        `search ${search.searchId}: ${search.evaluated} candidates evaluated in ${search.seconds.toFixed(0)} s; best proxy top-1 ${search.best.map((b) => (b ? `${(100 * b.top1).toFixed(1)}%` : '--')).join(' / ')}`,
      );

      const plan = planComparison({
        net,
        budgets,
        winners: search.best,
        recipe: cfg.retrain,
        dataset: cfg.dataset,
        outDir: o.outDir,
        metadata: {
          pruningnet: pn.pruningnetId,
          pruningnet_version: pn.version,
          search: search.searchId,
          seed: cfg.retrain.seed,
        },
      });
      if (plan.rows.length === 0)
        throw new Error('the search found no candidate within any budget');
      const uniforms = [
        ...new Map(
          plan.rows.map((r) => [encodingKey(r.uniform.encoding), r.uniform.encoding]),
        ).values(),
      ];
      ui.phase(
        4,
        PHASES,
        `scoring the ${uniforms.length} uniform baseline(s) with the same PruningNet proxy`,
      );
      const proxies = await timed('proxy', () =>
        proxyTop1(uniforms, {
          natsUrl: stack.natsUrl,
          weightGeneratorAddress: stack.weightGenerator.address,
          pruningnetId: pn.pruningnetId,
          pruningnetVersion: pn.version,
          network: net,
          recipe: cfg.search,
          reporter: ui,
          label: 'proxy',
          signal,
        }),
      );
      const uniformProxy = new Map(uniforms.map((e, i) => [encodingKey(e), proxies[i] as number]));

      ui.phase(
        5,
        PHASES,
        `retraining ${plan.jobs.length} networks from scratch (${cfg.retrain.epochs} epoch(s) x ${cfg.retrain.maxTrainImages || 'all'} images, seed ${cfg.retrain.seed}), ${cfg.retrainConcurrency} at a time`,
      );
      const outcomes = await timed('retrain', () =>
        runRetrains(plan.jobs, {
          concurrency: cfg.retrainConcurrency,
          reporter: ui,
          signal,
          onDone: (job, r) =>
            ui.line(
              `  ${job.label}: test top-1 ${(100 * r.test_top1).toFixed(2)}% (${r.seconds.toFixed(0)} s) -> ${r.exported}`,
            ),
        }),
      );
      const byId = new Map(plan.jobs.map((j, i) => [j.id, outcomes[i] as RetrainOutcome]));
      const rows = comparisonRows(net, plan, byId, uniformProxy);
      return {
        network: networkTag(net),
        pruningnet: pn,
        search,
        rows,
        retrained: outcomes,
        outDir: o.outDir,
        seconds: (Date.now() - t0) / 1000,
        phases,
      };
    },
  );
}
