/**
 * Delivered latency: an exported model, loaded with plain tfjs as a user loads it, timed
 * at batch 1 (forward + reading the output), beside the engine's forward of the same
 * encoding (what the latency table measures). The two are timed interleaved — blocks of
 * `block` runs each in turn — so a swing of the machine's load hits both alike, and runs
 * in which the process lost the CPU are dropped and redone (`timeRuns`).
 */
import { buildNetwork, type Encoding, iqr, median, type NetworkSpec } from '@metaprune/core';
import * as tf from '@tensorflow/tfjs';
import { timeRuns } from '../latency/measure.js';
import { NetworkRunner } from '../latency/ops.js';
import type { DeployedModel } from './load.js';

export interface DeliveredTiming {
  readonly deliveredMs: number;
  readonly deliveredSpreadMs: number;
  /** null when the engine's forward was not timed. */
  readonly engineMs: number | null;
  readonly engineSpreadMs: number | null;
  readonly samples: number;
}

export interface DeliveredOptions {
  /** Untimed runs of each before timing, ms (default 2000). */
  warmupMs?: number;
  /** Timed runs of each (default 50). */
  repeats?: number;
  /** Runs per interleaved block (default 5). */
  block?: number;
  /** Also time the engine's forward of the model's encoding (default true). */
  engine?: boolean;
}

function warm(run: () => void, ms: number): void {
  const until = performance.now() + ms;
  do run();
  while (performance.now() < until);
}

/** Times `model` (and the engine's forward of its encoding); see the module comment. */
export function measureDelivered(
  model: DeployedModel,
  opts: DeliveredOptions = {},
): DeliveredTiming {
  const repeats = opts.repeats ?? 50;
  const block = Math.max(1, opts.block ?? 5);
  const warmupMs = opts.warmupMs ?? 2000;
  const shape = [1, ...model.inputShape.slice(1)] as number[];
  const x = tf.randomUniform(shape, 0, 1, 'float32');
  let runner: NetworkRunner | null = null;
  let xe: tf.Tensor | null = null;
  try {
    if (opts.engine ?? true) {
      const spec = model.metadata['spec'] as NetworkSpec | undefined;
      const encoding = model.metadata['encoding'] as Encoding | undefined;
      if (!spec || !Array.isArray(encoding)) {
        throw new Error('the model metadata has no network spec / encoding to run the engine on');
      }
      runner = new NetworkRunner(buildNetwork(spec), encoding, 1);
      xe = runner.input();
    }
    const delivered = () => {
      const y = model.predict(x);
      y.dataSync();
      y.dispose();
    };
    const engine = runner && xe ? () => (runner as NetworkRunner).run(xe as tf.Tensor) : null;
    warm(delivered, warmupMs);
    if (engine) warm(engine, warmupMs / 2);
    const d: number[] = [];
    const e: number[] = [];
    while (d.length < repeats) {
      const n = Math.min(block, repeats - d.length);
      d.push(...timeRuns(delivered, { warmup: 0, repeats: n }).samples.slice(0, n));
      if (engine) e.push(...timeRuns(engine, { warmup: 0, repeats: n }).samples.slice(0, n));
    }
    return {
      deliveredMs: median(d),
      deliveredSpreadMs: iqr(d),
      engineMs: engine ? median(e) : null,
      engineSpreadMs: engine ? iqr(e) : null,
      samples: d.length,
    };
  } finally {
    x.dispose();
    xe?.dispose();
    runner?.dispose();
  }
}
