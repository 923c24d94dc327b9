/**
 * Measuring a table's grid on several worker threads, each with its own tfjs backend and
 * one shard of the jobs. On a machine with free cores this divides the wall time; the
 * shards share memory bandwidth and caches, so per-layer timings can come out a little
 * higher than on one thread (docs/latency.md has measured figures).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { LatencyGrid, NetworkSpec } from '@metaprune/core';
import type { ContextSample } from './context.js';
import type { LatencyMethod, MeasuredEntry, MeasureProgress, TimingOptions } from './measure.js';

export interface ShardWorkerData {
  spec: NetworkSpec;
  grid: LatencyGrid;
  backend: string;
  batchSize: number;
  warmup?: number;
  repeats?: number;
  warmupMs: number;
  method: LatencyMethod;
  shard: { index: number; count: number };
}

export type WorkerMessage =
  | { type: 'progress'; done: number; layer: string }
  | { type: 'done'; entries: MeasuredEntry[]; samples: ContextSample[] }
  | { type: 'error'; message: string };

/** The compiled worker entry (from src during tests: the package's dist). */
function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const sibling = here.replace(/workers\.(ts|js)$/, 'worker.js');
  if (existsSync(sibling)) return sibling;
  const dist = here.replace(/\/src\/latency\/workers\.ts$/, '/dist/latency/worker.js');
  if (existsSync(dist)) return dist;
  throw new Error(`latency worker entry not found next to ${here}; build @metaprune/engine`);
}

export interface WorkerMeasureOptions extends TimingOptions {
  workers: number;
  /** Default `in-context`. */
  method?: LatencyMethod;
  backend: string;
  batchSize?: number;
  /** Warm-up of each worker before it measures, ms (default 2000). */
  warmupMs?: number;
  onProgress?: (p: MeasureProgress) => void;
  signal?: AbortSignal;
}

/**
 * Measures a table's layers over `workers` threads (each a shard of the forwards, or of
 * the isolated jobs); resolves with what `profileLatencyTable` takes as `contextSamples`
 * (in-context) or `entries` (isolated). `total` in progress reports is the whole count.
 */
export async function measureInWorkers(
  spec: NetworkSpec,
  grid: LatencyGrid,
  total: number,
  opts: WorkerMeasureOptions,
): Promise<{ entries: MeasuredEntry[]; samples: ContextSample[] }> {
  const file = workerFile();
  const count = Math.max(1, Math.floor(opts.workers));
  const done = new Array<number>(count).fill(0);
  const workers: Worker[] = [];
  const stopAll = () => {
    for (const w of workers) void w.terminate();
  };
  opts.signal?.addEventListener('abort', stopAll, { once: true });
  try {
    const parts = await Promise.all(
      Array.from({ length: count }, (_, index) => {
        const data: ShardWorkerData = {
          spec,
          grid,
          backend: opts.backend,
          batchSize: opts.batchSize ?? 1,
          ...(opts.warmup !== undefined ? { warmup: opts.warmup } : {}),
          ...(opts.repeats !== undefined ? { repeats: opts.repeats } : {}),
          warmupMs: opts.warmupMs ?? 2000,
          method: opts.method ?? 'in-context',
          shard: { index, count },
        };
        const w = new Worker(file, { workerData: data });
        workers.push(w);
        return new Promise<{ entries: MeasuredEntry[]; samples: ContextSample[] }>(
          (resolve, reject) => {
            w.on('message', (m: WorkerMessage) => {
              if (m.type === 'progress') {
                done[index] = m.done;
                opts.onProgress?.({
                  done: done.reduce((a, b) => a + b, 0),
                  total,
                  layer: m.layer,
                });
              } else if (m.type === 'done') resolve({ entries: m.entries, samples: m.samples });
              else reject(new Error(`latency worker ${index}: ${m.message}`));
            });
            w.on('error', reject);
            w.on('exit', (code) => {
              if (code !== 0) reject(new Error(`latency worker ${index} exited with ${code}`));
            });
          },
        );
      }),
    );
    opts.signal?.throwIfAborted();
    return {
      entries: parts.flatMap((p) => p.entries),
      samples: parts.flatMap((p) => p.samples),
    };
  } finally {
    opts.signal?.removeEventListener('abort', stopAll);
    stopAll();
  }
}
