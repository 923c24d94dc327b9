/**
 * Latency measurement on the active tfjs backend: per-layer lookup tables over the (Cin,
 * Cout) grid of the search space, whole-network timings of encodings, the fitted constant
 * and the prediction error. The backends used here (wasm, cpu, tfjs-node) execute kernels
 * synchronously, so wall-clock time around the op calls is the kernel time plus tfjs's own
 * dispatch — exactly what an inference pays.
 */
import {
  costModel,
  type Encoding,
  fitLatencyConstant,
  fullEncoding,
  iqr,
  type LatencyErrorStats,
  type LatencyGrid,
  type LatencyPlan,
  LatencyPredictor,
  type LatencyRow,
  type LatencyTable,
  latencyErrorStats,
  median,
  type Network,
  networkFingerprint,
  type PlannedUnit,
  planLatencyTable,
  Rng,
  randomEncoding,
  tiedChannels,
} from '@metaprune/core';
import * as tf from '@tensorflow/tfjs';
import { DeliveredRunner } from '../deploy/runner.js';
import {
  type ContextSample,
  contextDesign,
  DEFAULT_CONTEXT_TIMING,
  measureInContext,
  rowsFromContext,
} from './context.js';
import {
  disposeWeights,
  NetworkRunner,
  runUnit,
  unitInputShape,
  unitOutputShape,
  unitWeights,
} from './ops.js';

import type { Timing, TimingOptions } from './timing.js';

export type { Timing, TimingOptions };

export const DEFAULT_LAYER_TIMING = Object.freeze({ warmup: 2, repeats: 5 });
/**
 * Whole-network timing: 3 passes over the encodings being compared, 5 timed runs each
 * (after 3 warm-up runs on the first pass) — 15 samples per encoding spread over the whole
 * measurement, so a slow swing of the machine's load hits every encoding alike instead of
 * whichever was being measured at the time.
 */
export const DEFAULT_NETWORK_TIMING = Object.freeze({ warmup: 3, repeats: 5, passes: 3 });

/**
 * Which execution path whole networks are timed on: `delivered` (default) — the folded
 * graph model a user loads with plain tfjs (deploy/runner.ts), the path exported models
 * run; `engine` — the engine's own sequence of fused ops (ops.ts), which the layer rows
 * time. Both run the same kernels; the graph executor adds a fixed cost per op, and the
 * network's op count does not depend on the encoding, so fitting the constant on the
 * delivered path calibrates the table to it.
 */
export type ExecutionPath = 'delivered' | 'engine';
export const EXECUTION_PATHS = ['delivered', 'engine'] as const;

interface Runner {
  input(): tf.Tensor;
  run(x: tf.Tensor): void;
  dispose(): void;
}

async function makeRunner(
  net: Network,
  enc: Encoding,
  batchSize: number,
  path: ExecutionPath,
): Promise<Runner> {
  if (path === 'engine') return new NetworkRunner(net, enc, batchSize);
  return DeliveredRunner.create(net, enc, batchSize);
}

export interface NetworkTimingOptions extends TimingOptions {
  /** Images per forward (default 1). */
  batchSize?: number;
  /** Execution path (default `delivered`). */
  path?: ExecutionPath;
  /** Interleaved passes over the encodings (default 3); `repeats` are per pass. */
  passes?: number;
}

/** Keeps at most this many weights (floats) of interleaved networks alive at once. */
const INTERLEAVE_FLOATS = 64 * 1024 * 1024;

/** Process CPU time (user + system) in milliseconds. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * A timed run counts when this process had the CPU for (nearly) all of it: on a shared
 * machine the scheduler otherwise slices other processes into the sample (milliseconds
 * each), which says nothing about the device. Disturbed runs are dropped and redone, up
 * to 4x the requested repeats; if still too few remain, all samples are used.
 */
function undisturbed(wallMs: number, cpuDeltaMs: number): boolean {
  return cpuDeltaMs >= 0.9 * wallMs - 0.02;
}

/**
 * Runs `run` warm-up + repeats times and times each repeat with the monotonic clock,
 * dropping runs disturbed by other processes (see `undisturbed`); median and IQR.
 */
export function timeRuns(run: () => void, opts: TimingOptions = {}): Timing {
  const warmup = opts.warmup ?? DEFAULT_LAYER_TIMING.warmup;
  const repeats = Math.max(1, opts.repeats ?? DEFAULT_LAYER_TIMING.repeats);
  for (let i = 0; i < warmup; i++) run();
  const clean: number[] = [];
  const all: number[] = [];
  for (let i = 0; i < repeats * 4 && clean.length < repeats; i++) {
    const c0 = cpuMs();
    const t0 = performance.now();
    run();
    const wall = performance.now() - t0;
    const cpu = cpuMs() - c0;
    all.push(wall);
    if (undisturbed(wall, cpu)) clean.push(wall);
  }
  const samples = clean.length >= Math.ceil(repeats / 2) ? clean : all;
  return { medianMs: median(samples), spreadMs: iqr(samples), repeats: samples.length, samples };
}

/** One unit of work: a distinct layer signature at one Cin, over all its Couts. */
export interface MeasurementJob {
  readonly index: number;
  readonly unit: PlannedUnit;
  readonly cin: number;
  readonly couts: readonly number[];
}

/** One measured grid point of a signature. */
export interface MeasuredEntry {
  readonly signature: string;
  readonly cin: number;
  readonly cout: number;
  readonly medianMs: number;
  readonly spreadMs: number;
  readonly repeats: number;
}

/** The jobs of a plan, in a fixed order (shards and workers split this list). */
export function measurementJobs(plan: LatencyPlan): MeasurementJob[] {
  const jobs: MeasurementJob[] = [];
  const seen = new Set<string>();
  for (const u of plan.units) {
    if (seen.has(u.signature)) continue;
    seen.add(u.signature);
    for (const cin of u.cins) {
      jobs.push({
        index: jobs.length,
        unit: u,
        cin,
        couts: tiedChannels(u.layer) ? [cin] : u.couts,
      });
    }
  }
  return jobs;
}

/** Measures one job: a fresh input at `cin`, then per Cout fresh weights, warm-up, repeats. */
export function measureJob(
  job: MeasurementJob,
  batchSize: number,
  timing: TimingOptions = {},
): MeasuredEntry[] {
  const u = job.unit;
  const x = tf.randomUniform(unitInputShape(u, batchSize, job.cin), 0, 1, 'float32');
  const out: MeasuredEntry[] = [];
  try {
    for (const cout of job.couts) {
      const w = unitWeights(u, job.cin, cout);
      const addend = u.addAfter
        ? tf.randomUniform(unitOutputShape(u, batchSize, cout), 0, 1, 'float32')
        : undefined;
      try {
        const t = timeRuns(() => runUnit(u, x, w, addend).dispose(), timing);
        out.push({
          signature: u.signature,
          cin: job.cin,
          cout,
          medianMs: t.medianMs,
          spreadMs: t.spreadMs,
          repeats: t.repeats,
        });
      } finally {
        disposeWeights(w);
        addend?.dispose();
      }
    }
  } finally {
    x.dispose();
  }
  return out;
}

/** Expands measured signatures to one row per layer and grid point, in layer order. */
export function assembleRows(plan: LatencyPlan, entries: Iterable<MeasuredEntry>): LatencyRow[] {
  const bySig = new Map<string, MeasuredEntry>();
  for (const e of entries) bySig.set(`${e.signature}#${e.cin}#${e.cout}`, e);
  const rows: LatencyRow[] = [];
  for (const u of plan.units) {
    const l = u.layer;
    for (const cin of u.cins) {
      for (const cout of tiedChannels(l) ? [cin] : u.couts) {
        const e = bySig.get(`${u.signature}#${cin}#${cout}`);
        if (!e) throw new Error(`no measurement for layer ${l.name} at cin ${cin} cout ${cout}`);
        rows.push({
          layer: l.name,
          kind: l.kind,
          kernel: l.kernel,
          stride: l.stride,
          inSize: l.inSize,
          cin,
          cout,
          medianMs: e.medianMs,
          spreadMs: e.spreadMs,
          repeats: e.repeats,
        });
      }
    }
  }
  return rows;
}

export interface MeasureProgress {
  /** Grid points measured so far (of distinct signatures). */
  readonly done: number;
  readonly total: number;
  /** Layer being measured. */
  readonly layer: string;
}

export interface MeasureEntriesOptions extends TimingOptions {
  /** Images per forward (default 1). */
  batchSize?: number;
  /** Only jobs with `index % count === index` (for sharding over workers). */
  shard?: { readonly index: number; readonly count: number };
  onProgress?: (p: MeasureProgress) => void;
  signal?: AbortSignal;
}

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * Measures every job of the plan (or of one shard) on the active backend. Yields to the
 * event loop between jobs so progress, signals and RPCs keep flowing.
 */
export async function measureEntries(
  plan: LatencyPlan,
  opts: MeasureEntriesOptions = {},
): Promise<MeasuredEntry[]> {
  const all = measurementJobs(plan);
  const shard = opts.shard ?? { index: 0, count: 1 };
  const jobs = all.filter((j) => j.index % shard.count === shard.index);
  const total = jobs.reduce((s, j) => s + j.couts.length, 0);
  const batch = opts.batchSize ?? 1;
  const out: MeasuredEntry[] = [];
  // One untimed pass over the first job warms the JIT and the allocator.
  if (jobs[0]) measureJob(jobs[0], batch, { warmup: 1, repeats: 1 });
  let done = 0;
  for (const job of jobs) {
    opts.signal?.throwIfAborted();
    out.push(...measureJob(job, batch, opts));
    done += job.couts.length;
    opts.onProgress?.({ done, total, layer: job.unit.layer.name });
    await yieldToLoop();
  }
  return out;
}

/**
 * Whole-network inference latency (forward + reading the logits) of several encodings,
 * measured interleaved (see DEFAULT_NETWORK_TIMING): in groups whose weights fit in
 * memory, `passes` rounds over the group, `repeats` timed runs per encoding per round; the
 * median and IQR over all of an encoding's undisturbed samples.
 */
export async function measureNetworksLatency(
  net: Network,
  encodings: readonly Encoding[],
  opts: NetworkTimingOptions & {
    onProgress?: (p: { done: number; total: number }) => void;
    signal?: AbortSignal;
  } = {},
): Promise<Timing[]> {
  const passes = Math.max(1, opts.passes ?? DEFAULT_NETWORK_TIMING.passes);
  const repeats = opts.repeats ?? DEFAULT_NETWORK_TIMING.repeats;
  const warmup = opts.warmup ?? DEFAULT_NETWORK_TIMING.warmup;
  const costs = costModel(net);
  const samples: number[][] = encodings.map(() => []);
  const total = encodings.length * passes;
  let done = 0;
  for (let start = 0; start < encodings.length; ) {
    let end = start;
    let floats = 0;
    while (end < encodings.length && (end === start || floats < INTERLEAVE_FLOATS)) {
      // the weights plus the backend's packed copy of them
      floats += 2 * costs.params(encodings[end] as Encoding);
      end++;
    }
    const runners: Runner[] = [];
    for (const e of encodings.slice(start, end)) {
      runners.push(await makeRunner(net, e, opts.batchSize ?? 1, opts.path ?? 'delivered'));
    }
    const x = runners[0]?.input();
    try {
      for (let pass = 0; pass < passes; pass++) {
        for (const [k, runner] of runners.entries()) {
          opts.signal?.throwIfAborted();
          const t = timeRuns(() => runner.run(x as tf.Tensor), {
            warmup: pass === 0 ? warmup : 1,
            repeats,
          });
          samples[start + k]?.push(...t.samples);
          opts.onProgress?.({ done: ++done, total });
          await yieldToLoop();
        }
      }
    } finally {
      x?.dispose();
      for (const r of runners) r.dispose();
    }
    start = end;
  }
  return samples.map((s) => ({
    medianMs: median(s),
    spreadMs: iqr(s),
    repeats: s.length,
    samples: s,
  }));
}

/** Whole-network inference latency of one encoding (forward + reading the logits). */
export function measureNetworkLatency(
  net: Network,
  enc: Encoding,
  opts: TimingOptions & { batchSize?: number } = {},
): Timing {
  const runner = new NetworkRunner(net, enc, opts.batchSize ?? 1);
  const x = runner.input();
  try {
    return timeRuns(() => runner.run(x), {
      warmup: opts.warmup ?? DEFAULT_NETWORK_TIMING.warmup,
      repeats: opts.repeats ?? DEFAULT_NETWORK_TIMING.repeats * DEFAULT_NETWORK_TIMING.passes,
    });
  } finally {
    x.dispose();
    runner.dispose();
  }
}

/**
 * Default minimum process warm-up. Measured here (wasm, small MobileNetV2 0.5): after 300 ms
 * of forwards, whole-network timings were still 10-25% above their settled value and
 * drifted down over the next seconds; after 2 s they were settled to about 1% on a quiet
 * machine. On a shared one a fixed time is not enough: warm-up goes on (up to 5x this)
 * until two successive windows agree (see `warmUpUntilStable`).
 */
export const DEFAULT_WARMUP_MS = 2000;

/** Warm-up windows: median forward of each; done when two successive ones agree within 3%. */
export const WARMUP_WINDOW = Object.freeze({ ms: 400, tolerance: 0.03, maxFactor: 5 });

export interface WarmUpResult {
  readonly ms: number;
  /** Did two successive windows agree before the cap? */
  readonly settled: boolean;
  /** Median forward of the last window. */
  readonly lastWindowMs: number;
}

/**
 * Runs `run` untimed for at least `minMs`, then until the medians of two successive
 * windows (WARMUP_WINDOW.ms each) differ by at most WARMUP_WINDOW.tolerance, at most
 * `minMs * maxFactor` (then `settled` is false).
 */
export function warmUpUntilStable(run: () => void, minMs: number): WarmUpResult {
  const t0 = performance.now();
  const cap = t0 + Math.max(minMs, WARMUP_WINDOW.ms) * WARMUP_WINDOW.maxFactor;
  let prev = Number.NaN;
  let last = Number.NaN;
  for (;;) {
    const times: number[] = [];
    const end = performance.now() + WARMUP_WINDOW.ms;
    do {
      const t = performance.now();
      run();
      times.push(performance.now() - t);
    } while (performance.now() < end);
    last = median(times);
    const now = performance.now();
    const agree = Math.abs(last - prev) <= WARMUP_WINDOW.tolerance * prev;
    if (now - t0 >= minMs && agree) return { ms: now - t0, settled: true, lastWindowMs: last };
    if (now >= cap) return { ms: now - t0, settled: false, lastWindowMs: last };
    prev = last;
  }
}

/**
 * Runs whole-network inference of the full network, untimed, until it is settled (see
 * `warmUpUntilStable`; at least `ms`, default DEFAULT_WARMUP_MS): the first forwards of a
 * process are much slower (JIT tiers, heap growth, operator creation) and would skew
 * whatever is measured first.
 */
export function warmUpBackend(
  net: Network,
  opts: { batchSize?: number; ms?: number } = {},
): WarmUpResult {
  const runner = new NetworkRunner(net, fullEncoding(net), opts.batchSize ?? 1);
  const x = runner.input();
  try {
    const ms = opts.ms ?? DEFAULT_WARMUP_MS;
    if (ms <= 0) return { ms: 0, settled: false, lastWindowMs: Number.NaN };
    return warmUpUntilStable(() => runner.run(x), ms);
  } finally {
    x.dispose();
    runner.dispose();
  }
}

/** Seeded uniformly random encodings (what a search explores). */
export function sampleEncodings(net: Network, count: number, seed: number): Encoding[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => randomEncoding(net.genes.length, rng));
}

export interface FitSample {
  readonly encoding: Encoding;
  readonly measuredMs: number;
  readonly layerSumMs: number;
}

export interface ProfileOptions extends MeasureEntriesOptions {
  /** tfjs backend that runs (recorded in the table). */
  backend: string;
  grid?: LatencyGrid;
  /** Random encodings whose whole-network latency fits the constant (default 10). */
  fitEncodings?: number;
  /** Seed of those encodings (default 1). */
  seed?: number;
  /** Timing of the whole-network runs (default DEFAULT_NETWORK_TIMING). */
  networkTiming?: Omit<NetworkTimingOptions, 'batchSize'>;
  /** The path the constant is fitted on (default `delivered`: calibrated to exports). */
  calibrate?: ExecutionPath;
  /** Process warm-up before the grid and before the fit, ms (default 2000). */
  warmupMs?: number;
  /**
   * How layers are timed: `in-context` (default) inside whole-network forwards of an
   * orthogonal-array design (see context.ts); `isolated`: each layer alone in a loop.
   */
  method?: LatencyMethod;
  /** Already measured isolated entries (e.g. from workers): skip measuring. */
  entries?: readonly MeasuredEntry[];
  /** Already measured in-context samples (e.g. from workers): skip measuring. */
  contextSamples?: readonly ContextSample[];
  device?: string;
}

export const LATENCY_METHODS = ['in-context', 'isolated'] as const;
export type LatencyMethod = (typeof LATENCY_METHODS)[number];

/** Units of work of a method, for progress: forwards (in-context) or grid points (isolated). */
export function measurementCount(net: Network, grid: LatencyGrid, method: LatencyMethod): number {
  return method === 'in-context'
    ? contextDesign(net, grid).configs
    : planLatencyTable(net, grid).measurements;
}

/** Fits of the constant tried before a negative median residual is clipped to 0. */
export const FIT_ATTEMPTS = 3;

export interface ProfileResult {
  readonly table: LatencyTable;
  readonly fit: readonly FitSample[];
  /** Median of measured - sum of layers over the fit networks (the last attempt). */
  readonly fitResidualMs: number;
  /** Fits measured (more than 1 when the residual came out negative). */
  readonly constantAttempts: number;
  /** The path the constant was fitted on. */
  readonly calibratedOn: ExecutionPath;
  readonly plan: LatencyPlan;
  readonly method: LatencyMethod;
  /** Forwards (in-context) or grid points (isolated) measured. */
  readonly measurements: number;
  /** Seconds spent on the per-layer grid and on the fit. */
  readonly layerSeconds: number;
  readonly fitSeconds: number;
}

/**
 * Measures a whole latency table on the active backend: every layer over the grid, then
 * the constant = median over `fitEncodings` random encodings of (measured - sum of layers).
 */
export async function profileLatencyTable(
  net: Network,
  opts: ProfileOptions,
): Promise<ProfileResult> {
  const grid = opts.grid ?? 'full';
  const plan = planLatencyTable(net, grid);
  const method = opts.method ?? 'in-context';
  const t0 = performance.now();
  const given = method === 'in-context' ? opts.contextSamples : opts.entries;
  if (!given) {
    warmUpBackend(net, { batchSize: opts.batchSize ?? 1, ms: opts.warmupMs ?? DEFAULT_WARMUP_MS });
  }
  let rows: LatencyRow[];
  if (method === 'in-context') {
    const samples = opts.contextSamples ?? (await measureInContext(net, grid, opts));
    rows = rowsFromContext(plan, samples);
  } else {
    rows = assembleRows(plan, opts.entries ?? (await measureEntries(plan, opts)));
  }
  const t1 = performance.now();
  // The grid leaves the JIT tuned to single layers: settle whole-network runs again.
  warmUpBackend(net, { batchSize: opts.batchSize ?? 1, ms: opts.warmupMs ?? DEFAULT_WARMUP_MS });
  const draft: LatencyTable = {
    network: net.spec,
    fingerprint: networkFingerprint(net),
    backend: opts.backend,
    batchSize: opts.batchSize ?? 1,
    constantMs: 0,
    warmupRuns:
      opts.warmup ??
      (method === 'in-context' ? DEFAULT_CONTEXT_TIMING.warmup : DEFAULT_LAYER_TIMING.warmup),
    interpolated: plan.interpolated,
    rows,
    ...(opts.device !== undefined ? { device: opts.device } : {}),
  };
  const predictor = new LatencyPredictor(net, draft);
  const fitEncodings = sampleEncodings(net, opts.fitEncodings ?? 10, opts.seed ?? 1);
  // The constant is what a whole forward costs beyond its layers: never negative. A
  // negative median residual means the fit forwards ran faster than their layers did (the
  // machine got quieter, or the process was not yet warm): a measurement problem, so the
  // fit is warmed up again and re-measured (up to FIT_ATTEMPTS times) rather than clipped;
  // only if it stays negative is it clipped, and `constantAttempts` says so.
  let fit: FitSample[] = [];
  let residual = Number.NaN;
  let attempts = 0;
  for (; attempts < FIT_ATTEMPTS; attempts++) {
    if (attempts > 0) {
      warmUpBackend(net, {
        batchSize: opts.batchSize ?? 1,
        ms: opts.warmupMs ?? DEFAULT_WARMUP_MS,
      });
    }
    const timings = await measureNetworksLatency(net, fitEncodings, {
      batchSize: draft.batchSize,
      path: opts.calibrate ?? 'delivered',
      ...opts.networkTiming,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    fit = fitEncodings.map((encoding, i) => ({
      encoding,
      measuredMs: (timings[i] as Timing).medianMs,
      layerSumMs: predictor.layerSumMs(encoding),
    }));
    residual = median(fit.map((f) => f.measuredMs - f.layerSumMs));
    if (residual >= 0) break;
  }
  const table: LatencyTable = {
    ...draft,
    constantMs: fitLatencyConstant(fit),
    measuredAt: new Date().toISOString(),
  };
  return {
    table,
    fit,
    fitResidualMs: residual,
    constantAttempts: Math.min(attempts + 1, FIT_ATTEMPTS),
    calibratedOn: opts.calibrate ?? 'delivered',
    plan,
    method,
    measurements: measurementCount(net, grid, method),
    layerSeconds: (t1 - t0) / 1000,
    fitSeconds: (performance.now() - t1) / 1000,
  };
}

export interface ValidationSample {
  readonly encoding: Encoding;
  readonly predictedMs: number;
  readonly measuredMs: number;
}

export interface LatencyValidation extends LatencyErrorStats {
  readonly samples: readonly ValidationSample[];
}

export interface ValidateOptions extends Omit<NetworkTimingOptions, 'batchSize'> {
  /** Random encodings to measure (default 30). */
  encodings?: number;
  /** Process warm-up before measuring, ms (default 2000). */
  warmupMs?: number;
  /** Seed (default 1000: different from the fit's). */
  seed?: number;
  onProgress?: (p: { done: number; total: number }) => void;
  signal?: AbortSignal;
}

/** Predicted vs measured whole-network latency over random encodings, on the active backend. */
export async function measurePredictionError(
  net: Network,
  table: LatencyTable,
  opts: ValidateOptions = {},
): Promise<LatencyValidation> {
  const predictor = new LatencyPredictor(net, table);
  const encodings = sampleEncodings(net, opts.encodings ?? 30, opts.seed ?? 1000);
  warmUpBackend(net, { batchSize: table.batchSize, ms: opts.warmupMs ?? DEFAULT_WARMUP_MS });
  const { encodings: _n, seed: _s, warmupMs: _w, ...timing } = opts;
  const timings = await measureNetworksLatency(net, encodings, {
    ...timing,
    batchSize: table.batchSize,
  });
  const samples: ValidationSample[] = encodings.map((encoding, i) => ({
    encoding,
    predictedMs: predictor.predict(encoding),
    measuredMs: (timings[i] as Timing).medianMs,
  }));
  return { ...latencyErrorStats(samples), samples };
}
