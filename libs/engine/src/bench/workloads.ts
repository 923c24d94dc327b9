/**
 * Benchmark workloads W1 (train) and W2 (eval) of docs/benchmarks.md on the benchmark
 * network (MobileNetV2 small, width 0.5, 32x32x3, 10 classes), with synthetic seeded inputs.
 * Each returns one flat record the bench command prints as a JSON line.
 */
import { buildNetwork, type Network } from '@metaprune/core';
import { hashSeed, Rng } from '@metaprune/data';
import { type BackendInfo, initBackend, parseBackendName } from '../backend/select.js';
import type { ImageSet } from '../evaluate/evaluate.js';
import { evaluateCandidate } from '../evaluate/evaluate.js';
import { EvaluationWorkers } from '../evaluate/pool.js';
import { createPruningNet, sampleEncoding } from '../pruningnet/pruningnet.js';
import { LocalStepper, type Stepper } from '../train/local.js';
import { ParallelStepper } from '../train/parallel.js';
import { linearOptim } from '../train/schedule.js';

export interface BenchOptions {
  /** Worker threads (default 2; 0 runs in the calling thread). */
  workers?: number;
  batch?: number;
  size?: number;
  width?: number;
  seed?: number;
  /** tfjs backend (default: initBackend's choice). */
  backend?: string;
  /** Progress lines (e.g. to stderr). */
  log?: (line: string) => void;
}

export interface TrainBenchOptions extends BenchOptions {
  steps?: number;
  warmup?: number;
}

export interface EvalBenchOptions extends BenchOptions {
  /** Candidates measured after the warm-up (default 8). */
  candidates?: number;
  recalBatches?: number;
  valBatches?: number;
}

export interface BenchRecord {
  workload: string;
  backend: string;
  batch: number;
  size: number;
  width: number;
  workers: number;
  peak_rss_mb: number;
  [k: string]: unknown;
}

export function benchNetwork(width = 0.5, size = 32): Network {
  return buildNetwork({
    family: 'mobilenetv2',
    preset: 'small',
    width,
    inputSize: size,
    inputChannels: 3,
  });
}

/** Seeded N(0, 1)-ish images (sum of uniforms) and uniform labels. */
export function syntheticSet(
  count: number,
  size: number,
  channels: number,
  classes: number,
  seed: number,
): ImageSet {
  const rng = new Rng(hashSeed(0xbe7c, seed));
  const images = new Float32Array(count * size * size * channels);
  for (let i = 0; i < images.length; i++)
    images[i] = (rng.next() + rng.next() + rng.next() - 1.5) * 2;
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) labels[i] = rng.int(classes);
  return { images, labels, count, imageShape: [size, size, channels] };
}

export function peakRssMb(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] as number;
}

async function backendOf(o: BenchOptions): Promise<BackendInfo> {
  return initBackend({ prefer: parseBackendName(o.backend) });
}

/** W1: PruningNet training steps (fresh random encoding each step); median images/s. */
export async function benchTrain(o: TrainBenchOptions = {}): Promise<BenchRecord> {
  const batch = o.batch ?? 64;
  const size = o.size ?? 32;
  const width = o.width ?? 0.5;
  const workers = o.workers ?? 2;
  const steps = o.steps ?? 10;
  const warmup = o.warmup ?? 2;
  const seed = o.seed ?? 0;
  const info = await backendOf(o);
  const net = benchNetwork(width, size);
  const pnet = createPruningNet(net, { seed, shared: workers > 0 });
  const optim = linearOptim({
    lr: 0.1,
    totalSteps: 1_000_000,
    momentum: 0.9,
    classifierLrScale: 0.05,
  });
  const stepper: Stepper =
    workers > 0
      ? await ParallelStepper.create(pnet, { workers, backend: o.backend })
      : new LocalStepper(pnet, optim);
  stepper.setOptim?.(optim);
  const data = syntheticSet(batch, size, 3, net.spec.numClasses, seed);
  const times: number[] = [];
  try {
    for (let t = 0; t < warmup + steps; t++) {
      const enc = sampleEncoding(net, seed, t);
      const t0 = performance.now();
      await stepper.step(t, enc, {
        images: data.images,
        labels: data.labels,
        n: batch,
        imageShape: [size, size, 3],
      });
      const dt = (performance.now() - t0) / 1000;
      if (t >= warmup) times.push(dt);
      o.log?.(
        `train step ${t + 1}/${warmup + steps}: ${dt.toFixed(3)} s${t < warmup ? ' (warm-up)' : ''}`,
      );
    }
  } finally {
    await stepper.close();
  }
  const med = median(times);
  return {
    workload: 'train',
    images_per_s: batch / med,
    median_step_s: med,
    steps,
    backend: info.name,
    batch,
    size,
    width,
    workers,
    peak_rss_mb: peakRssMb(),
  };
}

/**
 * W2: candidate evaluations (generate + crop, reset BN, `recalBatches` training-mode
 * batches, `valBatches` inference batches with argmax); throughput over `candidates`
 * random encodings evaluated by `workers` threads (after one warm-up candidate each).
 */
export async function benchEval(o: EvalBenchOptions = {}): Promise<BenchRecord> {
  const batch = o.batch ?? 64;
  const size = o.size ?? 32;
  const width = o.width ?? 0.5;
  const workers = o.workers ?? 2;
  const candidates = o.candidates ?? 8;
  const recalBatches = o.recalBatches ?? 20;
  const valBatches = o.valBatches ?? 40;
  const seed = o.seed ?? 0;
  const info = await backendOf(o);
  const net = benchNetwork(width, size);
  const pnet = createPruningNet(net, { seed, shared: workers > 0 });
  const recal = syntheticSet(recalBatches * batch, size, 3, net.spec.numClasses, seed + 1);
  const val = syntheticSet(valBatches * batch, size, 3, net.spec.numClasses, seed + 2);
  const warm = Math.max(1, workers);
  const encs = Array.from({ length: warm + candidates }, (_, i) =>
    sampleEncoding(net, seed + 1000, i),
  );
  const per: number[] = [];
  let wall: number;
  if (workers > 0) {
    const pool = await EvaluationWorkers.create(
      pnet,
      { recal, val },
      { workers, backend: o.backend, recalBatches, batchSize: batch, valBatches },
    );
    try {
      await pool.evaluateMany(encs.slice(0, warm));
      o.log?.(`eval: warm-up done (${warm} candidates)`);
      const t0 = performance.now();
      const rs = await Promise.all(
        encs.slice(warm).map((e, i) =>
          pool.evaluate(e).then((r) => {
            o.log?.(`eval candidate ${i + 1}/${candidates}: ${r.seconds.toFixed(2)} s`);
            return r;
          }),
        ),
      );
      wall = (performance.now() - t0) / 1000;
      for (const r of rs) per.push(r.seconds);
    } finally {
      await pool.close();
    }
  } else {
    const opts = { recal, val, recalBatches, batchSize: batch, valBatches };
    evaluateCandidate(pnet, encs[0] as number[], opts);
    const t0 = performance.now();
    for (const [i, e] of encs.slice(warm).entries()) {
      const r = evaluateCandidate(pnet, e, opts);
      per.push(r.seconds);
      o.log?.(`eval candidate ${i + 1}/${candidates}: ${r.seconds.toFixed(2)} s`);
    }
    wall = (performance.now() - t0) / 1000;
  }
  return {
    workload: 'eval',
    candidates_per_min: (60 * candidates) / wall,
    median_candidate_s: median(per),
    candidates,
    recal_batches: recalBatches,
    val_batches: valBatches,
    backend: info.name,
    batch,
    size,
    width,
    workers,
    peak_rss_mb: peakRssMb(),
  };
}
