/**
 * Workload `retrain`: training steps of a plain pruned network (what every retraining job
 * of `metaprune experiment` / `demo` runs), one thread, with the hand-written backward
 * pass (`manual`, the default) and with tfjs autodiff (`autodiff`, the reference) on the
 * same model, batches and seed; median images/s of each and their ratio.
 */
import { uniformEncoding } from '@metaprune/core';
import * as tf from '@tensorflow/tfjs';
import { initBackend, parseBackendName } from '../backend/select.js';
import { buildPlainModel } from '../plain/model.js';
import { type GradientMode, PlainGradients } from '../plain/step.js';
import { SgdMomentum } from '../plain/train.js';
import {
  type BenchOptions,
  type BenchRecord,
  benchNetwork,
  median,
  peakRssMb,
  syntheticSet,
} from './workloads.js';

export interface RetrainBenchOptions extends BenchOptions {
  steps?: number;
  warmup?: number;
  /** Uniform width scale of the network trained (default 1: the whole benchmark network). */
  scale?: number;
}

async function stepTimes(
  mode: GradientMode,
  o: Required<
    Pick<RetrainBenchOptions, 'batch' | 'size' | 'width' | 'seed' | 'steps' | 'warmup' | 'scale'>
  > &
    RetrainBenchOptions,
): Promise<number[]> {
  const net = benchNetwork(o.width, o.size);
  const model = buildPlainModel(net, uniformEncoding(net, o.scale), { seed: o.seed });
  const grads = new PlainGradients(model, net, 0.1, mode);
  const optimizer = new SgdMomentum(0.9);
  const data = syntheticSet(o.batch, o.size, 3, net.spec.numClasses, o.seed);
  const batch = {
    images: data.images,
    labels: data.labels,
    size: o.batch,
    shape: [o.batch, o.size, o.size, 3] as [number, number, number, number],
  };
  const times: number[] = [];
  try {
    for (let t = 0; t < o.warmup + o.steps; t++) {
      const t0 = performance.now();
      tf.tidy(() => {
        const r = grads.compute(batch);
        optimizer.step(grads.variables, r.grads, 0.01, () => 4e-5);
      });
      // The update is queued on the backend: read one value so the step is complete.
      await (grads.variables[0] as tf.Variable).data();
      const dt = (performance.now() - t0) / 1000;
      if (t >= o.warmup) times.push(dt);
      o.log?.(`retrain (${mode}) step ${t + 1}/${o.warmup + o.steps}: ${dt.toFixed(3)} s`);
    }
  } finally {
    optimizer.dispose();
    model.dispose();
  }
  return times;
}

export async function benchRetrain(o: RetrainBenchOptions = {}): Promise<BenchRecord> {
  const opts = {
    ...o,
    batch: o.batch ?? 32,
    size: o.size ?? 32,
    width: o.width ?? 0.5,
    seed: o.seed ?? 0,
    steps: o.steps ?? 10,
    warmup: o.warmup ?? 2,
    scale: o.scale ?? 1,
  };
  const info = await initBackend({ prefer: parseBackendName(o.backend) });
  const manual = median(await stepTimes('manual', opts));
  const autodiff = median(await stepTimes('autodiff', opts));
  return {
    workload: 'retrain',
    images_per_s: opts.batch / manual,
    autodiff_images_per_s: opts.batch / autodiff,
    speedup_vs_autodiff: Number((autodiff / manual).toFixed(2)),
    median_step_s: manual,
    steps: opts.steps,
    scale: opts.scale,
    backend: info.name,
    batch: opts.batch,
    size: opts.size,
    width: opts.width,
    workers: 1,
    peak_rss_mb: peakRssMb(),
  };
}
