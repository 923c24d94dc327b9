/**
 * PruningNet-proxy top-1 of chosen encodings (uniform baselines, fidelity candidates)
 * through the evaluator pool: the controller's own NATS JetStream job protocol
 * (`NatsEvaluation`), so the evaluator processes score them exactly as they score search
 * candidates (same settings, same held-out split, results shared with the controller's
 * memo by job id).
 */

import { type Candidate, costModel, type Encoding, type Network } from '@metaprune/core';
import { common } from '@metaprune/proto';
import { connectNats } from '@metaprune/runtime';
import {
  checkEvaluationSettings,
  GrpcPruningNets,
  MemoryMemoStore,
  NatsEvaluation,
  type PoolContext,
} from '@metaprune/wire';
import type { SearchRecipe } from './config.js';
import { bar, type Reporter } from './reporter.js';

export interface ProxyEvalOptions {
  natsUrl: string;
  weightGeneratorAddress: string;
  pruningnetId: string;
  pruningnetVersion: number;
  network: Network;
  /** Evaluation settings (the search's, so scores are comparable). */
  recipe: SearchRecipe;
  reporter?: Reporter;
  label?: string;
  signal?: AbortSignal;
}

/** Proxy top-1 per encoding (NaN where the evaluation failed), in input order. */
export async function proxyTop1(
  encodings: readonly Encoding[],
  o: ProxyEvalOptions,
): Promise<number[]> {
  if (encodings.length === 0) return [];
  const resolver = new GrpcPruningNets(o.weightGeneratorAddress);
  const nc = await connectNats({ servers: o.natsUrl, name: 'metaprune-pipeline' });
  const pool = new NatsEvaluation({ nc, memo: new MemoryMemoStore(), stallCheckMs: 2000 });
  try {
    const pn = await resolver.resolve(o.pruningnetId, o.pruningnetVersion);
    await pool.start();
    const ctx: PoolContext = {
      searchId: `pipeline-${o.label ?? 'proxy'}`,
      pruningnetId: pn.pruningnetId,
      pruningnetVersion: pn.version,
      network: o.network,
      networkProto: common.NetworkSpec.fromPartial(pn.network),
      settings: checkEvaluationSettings({
        recalibrationBatches: o.recipe.recalibrationBatches,
        batchSize: o.recipe.batchSize,
        validationImages: o.recipe.validationImages,
        seed: 0,
      }),
      data: pn.data,
    };
    const model = costModel(o.network);
    const candidates: Candidate[] = encodings.map((e) => ({
      encoding: [...e],
      cost: model.cost(e),
    }));
    const label = o.label ?? 'proxy';
    const t0 = Date.now();
    const outcomes = await pool
      .create(ctx, {
        generation: () => 0,
        onProgress: (done, total) =>
          o.reporter?.status(
            `${label} ${bar(done / total)} ${done}/${total} candidates  ${((Date.now() - t0) / 1000).toFixed(0)} s`,
            done === total,
          ),
      })
      .evaluate(candidates, o.signal);
    o.reporter?.clear();
    return outcomes.map((r) => ('top1' in r ? r.top1 : Number.NaN));
  } finally {
    pool.close();
    resolver.close();
    await nc.close();
  }
}
