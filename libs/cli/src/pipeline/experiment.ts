import {
  buildNetwork,
  type Encoding,
  encodingKey,
  type Network,
  uniformEncoding,
} from '@metaprune/core';
import { budgetProto, fullCost, macsBudgets, uniformAtLeast } from './budgets.js';
import { networkTag, slug } from './compare-jobs.js';
import { assembleResults, type Planned, type Searched } from './experiment-assemble.js';
import type { ExperimentConfig, ExperimentNetwork } from './experiment-config.js';
import type { ExperimentResults, LatencyResult } from './experiment-types.js';
import { stratifiedRandom } from './fidelity.js';
import {
  type LatencyDevice,
  latencyBudgetProto,
  profileLatency,
  uniformAtLeastLatency,
} from './latency.js';
import { proxyTop1 } from './proxy-eval.js';
import type { Reporter } from './reporter.js';
import { runRetrains } from './retrain.js';
import { RetrainBook } from './retrain-book.js';
import { runSearchPhase } from './search.js';
import { withStack } from './session.js';
import { type TrainedPruningNet, trainPruningNet } from './train-pruningnet.js';

export type * from './experiment-types.js';

export interface ExperimentOptions {
  config: ExperimentConfig;
  quick: boolean;
  /** Report, plots, models and results.json go here. */
  outDir: string;
  /** Stack home (checkpoints, logs, latency device tokens). */
  home: string;
  reporter: Reporter;
  command: string;
  machine: Record<string, unknown>;
  logLevel?: string;
}

const PHASES = 6;

export async function runExperiment(o: ExperimentOptions): Promise<ExperimentResults> {
  const { config: cfg, reporter: ui } = o;
  const started = new Date();
  const t0 = Date.now();
  const phases: Record<string, number> = {};
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const s = Date.now();
    try {
      return await fn();
    } finally {
      phases[name] = (phases[name] ?? 0) + (Date.now() - s) / 1000;
    }
  };
  const [primaryCfg] = cfg.networks;
  if (!primaryCfg) throw new Error('the experiment needs at least one network');
  ui.phase(1, PHASES, `starting the stack (${cfg.evaluators} evaluators, latency profiler)`);
  return withStack(
    {
      evaluators: cfg.evaluators,
      home: o.home,
      logLevel: o.logLevel ?? 'warn',
      log: (l) => ui.line(l),
    },
    async ({ stack, signal }) => {
      phases['stack'] = (Date.now() - t0) / 1000;

      // 2. PruningNets
      ui.phase(2, PHASES, 'training PruningNets through the weight generator');
      const trained: { cfg: ExperimentNetwork; net: Network; pn: TrainedPruningNet }[] = [];
      for (const n of cfg.networks) {
        const requested = buildNetwork(n.spec);
        ui.line(`PruningNet for ${networkTag(requested)}:`);
        const pn = await timed('train', () =>
          trainPruningNet({
            address: stack.weightGenerator.address,
            network: requested,
            dataset: cfg.dataset,
            recipe: n.train,
            displayName: `experiment ${networkTag(requested)}`,
            reporter: ui,
            signal,
          }),
        );
        ui.line(
          `  ${pn.pruningnetId} v${pn.version}: ${pn.seconds.toFixed(0)} s, loss ${pn.loss.toFixed(3)}${pn.validationAccuracy !== undefined ? `, sub-val ${(100 * pn.validationAccuracy).toFixed(1)}% (full width)` : ''}`,
        );
        trained.push({ cfg: n, net: pn.network, pn });
      }
      const primary = trained[0]!;
      ui.line(`ablation proxy (no weight prediction) for ${networkTag(primary.net)}:`);
      const ablPn = await timed('train', () =>
        trainPruningNet({
          address: stack.weightGenerator.address,
          network: primary.net,
          dataset: cfg.dataset,
          recipe: primary.cfg.train,
          displayName: `experiment ${networkTag(primary.net)} no weight prediction`,
          reporter: ui,
          signal,
          noWeightPrediction: true,
        }),
      );
      ui.line(
        `  ${ablPn.pruningnetId} v${ablPn.version}: ${ablPn.seconds.toFixed(0)} s, loss ${ablPn.loss.toFixed(3)}`,
      );

      // 3. latency table
      ui.phase(3, PHASES, 'latency table of this machine (for the latency budget)');
      const latency: LatencyResult = { available: false };
      let device: LatencyDevice | undefined;
      const profiler = stack.latencyProfiler?.address;
      if (!profiler) {
        latency.reason = 'the stack runs no latency profiler';
      } else {
        try {
          device = await timed('latency', () =>
            profileLatency({
              profilerAddress: profiler,
              net: primary.net,
              device: `experiment-${process.pid}`,
              ...cfg.latency,
              home: o.home,
              reporter: ui,
              signal,
            }),
          );
          const half = uniformAtLeast(primary.net, 0.5 * fullCost(primary.net).macs);
          latency.available = true;
          latency.device = device.device;
          latency.deviceId = device.deviceId;
          latency.boundMs = device.predict(half.encoding);
          latency.profileSeconds = device.seconds;
          latency.profile = device.profile;
          ui.line(
            `  table measured in ${device.seconds.toFixed(0)} s; bound ${latency.boundMs.toFixed(3)} ms = predicted latency of the uniform ${half.scale.toFixed(2)}x network (about half the MACs)`,
          );
        } catch (err) {
          if (signal.aborted) throw err;
          latency.reason = `profiling failed: ${(err as Error).message}`;
          ui.line(`  no latency budget: ${latency.reason}`);
        }
      }

      // 4. searches
      ui.phase(4, PHASES, 'searches through the controller');
      const searched: Searched[] = [];
      for (const t of trained) {
        const budgets = macsBudgets(t.net, t.cfg.budgetFractions);
        const protos = budgets.map(budgetProto);
        const withLatency = t === primary && device !== undefined && latency.boundMs !== undefined;
        if (withLatency) protos.push(latencyBudgetProto(device!, latency.boundMs!));
        const s = await timed('search', () =>
          runSearchPhase({
            controllerAddress: stack.controller.address,
            pruningnetId: t.pn.pruningnetId,
            pruningnetVersion: t.pn.version,
            budgets: protos,
            recipe: t.cfg.search,
            displayName: `experiment ${networkTag(t.net)}`,
            reporter: ui,
            signal,
          }),
        );
        searched.push({
          net: t.net,
          cfg: t.cfg,
          pn: t.pn,
          budgets,
          winners: s.best.slice(0, budgets.length),
          latencyWinner: withLatency ? (s.best[budgets.length] ?? null) : null,
          search: {
            id: s.searchId,
            budgets: protos.map((b) => b.name),
            evaluated: s.evaluated,
            seconds: s.seconds,
            history: s.history,
          },
        });
      }
      const prim = searched[0]!;
      ui.line(`ablation search (same budgets, same seed) with the no-weight-prediction proxy:`);
      const ablSearch = await timed('search', () =>
        runSearchPhase({
          controllerAddress: stack.controller.address,
          pruningnetId: ablPn.pruningnetId,
          pruningnetVersion: ablPn.version,
          budgets: prim.budgets.map(budgetProto),
          recipe: prim.cfg.search,
          displayName: `experiment ${networkTag(prim.net)} ablation`,
          reporter: ui,
          signal,
        }),
      );

      // 5. proxy scores of baselines and fidelity candidates
      ui.phase(5, PHASES, 'proxy scores of the uniform baselines and the fidelity candidates');
      const book = new RetrainBook({
        recipe: cfg.retrain,
        dataset: cfg.dataset,
        outDir: `${o.outDir}/models`,
        metadata: { experiment: o.command, seed: cfg.retrain.seed },
      });
      const proxyOf = new Map<string, number>(); // `${tag}|${encKey}` under the MetaPruning proxy
      const ablProxyOf = new Map<string, number>();
      const score = async (
        s: Searched,
        pn: TrainedPruningNet,
        encs: Encoding[],
        into: Map<string, number>,
        label: string,
      ) => {
        const todo = [...new Map(encs.map((e) => [encodingKey(e), e])).values()].filter(
          (e) => !into.has(book.key(s.net, e)),
        );
        const r = await timed('proxy', () =>
          proxyTop1(todo, {
            natsUrl: stack.natsUrl,
            weightGeneratorAddress: stack.weightGenerator.address,
            pruningnetId: pn.pruningnetId,
            pruningnetVersion: pn.version,
            network: s.net,
            recipe: s.cfg.search,
            reporter: ui,
            label,
            signal,
          }),
        );
        todo.forEach((e, i) => {
          into.set(book.key(s.net, e), r[i] as number);
        });
      };

      const planned = new Map<Searched, Planned[]>();
      for (const s of searched) {
        const rows: Planned[] = [];
        s.budgets.forEach((b, i) => {
          const w = s.winners[i];
          if (!w) return;
          const u = uniformAtLeast(s.net, w.macs);
          const pct = slug(`${Math.round(b.fraction * 100)}pct`);
          rows.push({
            budget: b.name,
            kind: 'macs',
            bound: b.maxMacs,
            w,
            u,
            sKey: book.want(
              s.net,
              w.encoding,
              `metapruning-${pct}`,
              `MP ${networkTag(s.net)} ${pct}`,
              {
                role: `metapruning ${b.name}`,
                budget: b.name,
                max_macs: b.maxMacs,
                proxy_top1: w.top1,
                pruningnet: s.pn.pruningnetId,
                search: s.search.id,
              },
            ),
            uKey: book.want(
              s.net,
              u.encoding,
              `uniform-${u.scale.toFixed(2)}`,
              `uniform ${networkTag(s.net)} ${u.scale.toFixed(2)}`,
              {
                role: `uniform ${u.scale.toFixed(2)}x`,
                uniform_scale: u.scale,
              },
            ),
          });
        });
        if (s.latencyWinner && device && latency.boundMs !== undefined) {
          const w = s.latencyWinner;
          const wl = w.latencyMs ?? device.predict(w.encoding);
          const u = uniformAtLeastLatency(s.net, device, wl);
          rows.push({
            budget: `latency <= ${latency.boundMs.toFixed(3)} ms`,
            kind: 'latency',
            bound: latency.boundMs,
            w: { ...w, latencyMs: wl },
            u,
            sKey: book.want(
              s.net,
              w.encoding,
              'metapruning-latency',
              `MP ${networkTag(s.net)} latency`,
              {
                role: 'metapruning latency',
                max_latency_ms: latency.boundMs,
                predicted_latency_ms: wl,
                latency_device: device.device,
                proxy_top1: w.top1,
              },
            ),
            uKey: book.want(
              s.net,
              u.encoding,
              `uniform-${u.scale.toFixed(2)}`,
              `uniform ${networkTag(s.net)} ${u.scale.toFixed(2)}`,
              {
                role: `uniform ${u.scale.toFixed(2)}x`,
                uniform_scale: u.scale,
              },
            ),
          });
        }
        planned.set(s, rows);
        await score(
          s,
          s.pn,
          rows.map((r) => r.u.encoding),
          proxyOf,
          `proxy ${networkTag(s.net)}`,
        );
      }
      // ablation winners, retrained with the same recipe
      const ablBest = ablSearch.best.slice(0, prim.budgets.length);
      const ablKeys = ablBest.map((w, i) => {
        const b = prim.budgets[i]!;
        if (!w) return null;
        const pct = slug(`${Math.round(b.fraction * 100)}pct`);
        return book.want(prim.net, w.encoding, `ablation-${pct}`, `ablation ${pct}`, {
          role: `ablation ${b.name}`,
          budget: b.name,
          max_macs: b.maxMacs,
          proxy_top1_ablation: w.top1,
          pruningnet: ablPn.pruningnetId,
          search: ablSearch.searchId,
        });
      });
      const primRows = planned.get(prim) ?? [];
      // seed study: the middle MACs row of the first network, retrained with more seeds
      const macsRows = primRows.filter((r) => r.kind === 'macs');
      const studied = cfg.seedStudy.length > 0 ? macsRows[macsRows.length >> 1] : undefined;
      const seedRuns = studied
        ? cfg.seedStudy
            .filter((seed) => seed !== cfg.retrain.seed)
            .map((seed) => ({
              seed,
              mpKey: book.want(
                prim.net,
                studied.w.encoding,
                `seeds/metapruning-seed${seed}`,
                `MP seed ${seed}`,
                { role: `seed study ${studied.budget} metapruning` },
                seed,
              ),
              uniformKey: book.want(
                prim.net,
                studied.u.encoding,
                `seeds/uniform-${studied.u.scale.toFixed(2)}-seed${seed}`,
                `uniform seed ${seed}`,
                { role: `seed study ${studied.budget} uniform` },
                seed,
              ),
            }))
        : [];
      // fidelity set: winners, baselines, then MACs-stratified random candidates
      const fidelity: { source: string; enc: Encoding }[] = [];
      const seen = new Set<string>();
      const add = (source: string, enc: Encoding) => {
        const k = encodingKey(enc);
        if (seen.has(k)) return;
        seen.add(k);
        fidelity.push({ source, enc });
      };
      for (const r of primRows) add(`MetaPruning ${r.budget}`, r.w.encoding);
      ablBest.forEach((w, i) => {
        if (w) add(`ablation winner ${prim.budgets[i]!.name}`, w.encoding);
      });
      for (const r of primRows) add(`uniform ${r.u.scale.toFixed(2)}x`, r.u.encoding);
      const randomCount = Math.max(cfg.fidelityRandom, cfg.fidelityMin - fidelity.length);
      stratifiedRandom(
        prim.net,
        randomCount,
        cfg.seed,
        fidelity.map((x) => x.enc),
      ).forEach((e, i) => {
        add(`random ${i + 1}`, e);
      });
      for (let id = 3; fidelity.length < cfg.fidelityMin && id <= 30; id += 4) {
        const u = uniformEncoding(prim.net, 0.1 + 0.03 * id);
        add(`uniform ${(0.1 + 0.03 * id).toFixed(2)}x`, u);
      }
      const fidKeys = fidelity.map((c, i) =>
        book.want(prim.net, c.enc, `fidelity-${i + 1}`, `fidelity ${i + 1}`, {
          role: `fidelity ${c.source}`,
        }),
      );
      await score(
        prim,
        prim.pn,
        fidelity.map((c) => c.enc),
        proxyOf,
        'proxy fidelity',
      );
      await score(
        prim,
        ablPn,
        fidelity.map((c) => c.enc),
        ablProxyOf,
        'ablation proxy fidelity',
      );

      // 6. retraining
      const jobs = book.pending();
      ui.phase(
        6,
        PHASES,
        `retraining ${jobs.length} networks from scratch (${cfg.retrain.epochs} epoch(s) x ${cfg.retrain.maxTrainImages || 'all'} images, batch ${cfg.retrain.batchSize}, seed ${cfg.retrain.seed}; test top-1 on ${cfg.retrain.testImages || 'all'} test images), ${cfg.retrainConcurrency} at a time`,
      );
      await timed('retrain', () =>
        runRetrains(jobs, {
          concurrency: cfg.retrainConcurrency,
          reporter: ui,
          signal,
          onDone: (job, r) => {
            book.record(job, r);
            ui.line(
              `  ${job.label}: test top-1 ${(100 * r.test_top1).toFixed(2)}% (${r.seconds.toFixed(0)} s)`,
            );
          },
        }),
      );

      const {
        networks,
        ablation,
        fidelity: fid,
        seedStudy,
      } = assembleResults({
        searched,
        planned,
        book,
        proxyOf,
        ablProxyOf,
        ablation: { pn: ablPn, search: ablSearch, best: ablBest, keys: ablKeys },
        fidelity,
        fidelityKeys: fidKeys,
        seedStudy: studied ? { row: studied, baseSeed: cfg.retrain.seed, runs: seedRuns } : null,
        outDir: o.outDir,
      });
      const finished = new Date();
      return {
        format: 'metaprune-experiment/1',
        command: o.command,
        quick: o.quick,
        startedAt: started.toISOString(),
        finishedAt: finished.toISOString(),
        wallSeconds: (Date.now() - t0) / 1000,
        phases,
        machine: o.machine,
        config: cfg,
        networks,
        latency,
        ablation,
        fidelity: fid,
        seedStudy,
      };
    },
  );
}
