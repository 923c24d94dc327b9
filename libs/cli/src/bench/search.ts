/**
 * W4 `search` (../shared/benchmarks.md): a whole search — 5 generations x population 20 of
 * W2 evaluations (20 recalibration batches of 64, 40 validation batches of 64) of the W2
 * network — through the services (controller + N evaluator processes + NATS + weight
 * generator), for N = 1 and N = 2. Each N gets a fresh stack (own nats-server, own memo),
 * so nothing is answered from an earlier run.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { common, controller } from '@metaprune/proto';
import { followSearch, searchClient, trainOnStack } from '../remote.js';
import { startStack } from '../stack.js';
import { type BenchLine, peakRssMb } from './record.js';

export interface BenchSearchOptions {
  evaluators: 1 | 2;
  generations?: number;
  population?: number;
  recalibrationBatches?: number;
  validationBatches?: number;
  batchSize?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface BenchSearchResult {
  evaluators: number;
  candidates: number;
  seconds: number;
  candidates_per_min: number;
  backend: string;
  /** CPU seconds the evaluator processes used during the search. */
  evaluatorCpuSeconds: number;
  /** evaluatorCpuSeconds / (seconds x evaluators): below ~0.9, something else held the cores. */
  evaluatorUtilization: number;
  /** 1-minute load average at the end (the machine is shared). */
  loadAverage: number;
}

/** utime + stime of a process in seconds (Linux /proc; 0 elsewhere). */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return 0;
  }
}

/** The W2 network: mobilenetv2 small-input PruningNet, width 0.5, 32x32x3, 10 classes. */
export const W2_NETWORK = common.NetworkSpec.fromPartial({
  family: common.NetworkFamily.MOBILENET_V2,
  preset: common.NetworkPreset.SMALL,
  widthMultiplier: 0.5,
  inputSize: 32,
  inputChannels: 3,
  numClasses: 10,
});

/** One W4 run with `evaluators` evaluator processes: candidates evaluated per minute. */
export async function benchSearch(o: BenchSearchOptions): Promise<BenchSearchResult> {
  const log = o.log ?? (() => {});
  const home = mkdtempSync(join(tmpdir(), 'metaprune-bench-w4-'));
  const batch = o.batchSize ?? 64;
  const stack = await startStack({ evaluators: o.evaluators, home, logLevel: 'warn' });
  try {
    log(`W4: stack up with ${o.evaluators} evaluator(s); training a 1-step PruningNet`);
    // The candidates' scores do not matter here, only the work: a PruningNet after one
    // training step generates weights exactly like a trained one.
    const pn = await trainOnStack(stack.weightGenerator.address, {
      network: W2_NETWORK,
      dataset: 'fashion-mnist',
      epochs: 1,
      batchSize: batch,
      learningRate: 0.05,
      momentum: 0.9,
      seed: o.seed ?? 1,
      maxStepsPerEpoch: 1,
    });
    const client = searchClient(stack.controller.address);
    try {
      const request = controller.StartSearchRequest.fromPartial({
        pruningnetId: pn.pruningnetId,
        pruningnetVersion: pn.version,
        // the full network's MACs: every random candidate fits, none is rejected
        budgets: [{ name: 'w4', maxMacs: 45_000_000 }],
        evolution: { populationSize: o.population ?? 20, generations: o.generations ?? 5 },
        evaluation: {
          recalibrationBatches: o.recalibrationBatches ?? 20,
          batchSize: batch,
          validationImages: (o.validationBatches ?? 40) * batch,
          seed: 0,
        },
        seed: o.seed ?? 1,
      });
      const cpu0 = stack.evaluators.map((e) => cpuSeconds(e.pid));
      const t0 = performance.now();
      const started = await new Promise<controller.StartSearchResponse>((resolve, reject) =>
        client.startSearch(request, (err, res) => (err ? reject(err) : resolve(res))),
      );
      let lastGen = -1;
      const search = await followSearch(client, started.searchId, {
        onProgress: (p) => {
          if (p.generation !== lastGen) {
            lastGen = p.generation;
            log(
              `W4 N=${o.evaluators}: generation ${p.generation}/${p.generations}, ${p.evaluated} evaluated`,
            );
          }
        },
      });
      const seconds = (performance.now() - t0) / 1000;
      const cpu = stack.evaluators.reduce((a, e, i) => a + cpuSeconds(e.pid) - (cpu0[i] ?? 0), 0);
      const p = search.progress!;
      if (p.state !== controller.SearchState.SUCCEEDED) {
        throw new Error(
          `W4 search ended ${controller.searchStateToJSON(p.state)}: ${search.error}`,
        );
      }
      const candidates = p.evaluated + p.failed;
      return {
        evaluators: o.evaluators,
        candidates,
        seconds,
        candidates_per_min: (candidates / seconds) * 60,
        backend: String(stack.evaluators[0]?.info['backend'] ?? 'unknown'),
        evaluatorCpuSeconds: cpu,
        evaluatorUtilization: cpu / (seconds * o.evaluators),
        loadAverage: loadavg()[0] ?? 0,
      };
    } finally {
      client.close();
    }
  } finally {
    await stack.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

/** The W4 bench line: N = 1 and N = 2, and their ratio. */
export async function benchSearchWorkload(
  opts: Omit<BenchSearchOptions, 'evaluators'> = {},
): Promise<BenchLine> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const one = await benchSearch({ ...opts, evaluators: 1, log });
  const two = await benchSearch({ ...opts, evaluators: 2, log });
  const batch = opts.batchSize ?? 64;
  return {
    workload: 'search',
    backend: one.backend,
    batch,
    size: 32,
    width: 0.5,
    network: 'mobilenetv2',
    generations: opts.generations ?? 5,
    population: opts.population ?? 20,
    candidates: one.candidates,
    candidates_per_min: Math.round(one.candidates_per_min * 10) / 10,
    candidates_per_min_1: Math.round(one.candidates_per_min * 10) / 10,
    candidates_per_min_2: Math.round(two.candidates_per_min * 10) / 10,
    seconds_1: Math.round(one.seconds * 10) / 10,
    seconds_2: Math.round(two.seconds * 10) / 10,
    scaling_2_over_1: Math.round((two.candidates_per_min / one.candidates_per_min) * 100) / 100,
    // Evaluations per CPU-second the evaluators actually got, N = 2 over N = 1, times 2:
    // the scaling with both cores free for the evaluators (the machine is shared).
    scaling_2_over_1_per_cpu:
      Math.round(
        ((2 * (two.candidates / Math.max(1e-9, two.evaluatorCpuSeconds))) /
          (one.candidates / Math.max(1e-9, one.evaluatorCpuSeconds))) *
          100,
      ) / 100,
    // how much of their cores the evaluators got (1 = all): the machine is shared
    evaluator_utilization_1: Math.round(one.evaluatorUtilization * 100) / 100,
    evaluator_utilization_2: Math.round(two.evaluatorUtilization * 100) / 100,
    load_average_1: Math.round(one.loadAverage * 10) / 10,
    load_average_2: Math.round(two.loadAverage * 10) / 10,
    peak_rss_mb: peakRssMb(),
  };
}
