/**
 * Candidate evaluation on worker threads: each worker holds a tfjs backend and evaluates
 * whole candidates (generate, recalibrate BN, validate) reading the PruningNet's parameters
 * and the recalibration / validation images in place from shared memory. Candidates are
 * handed to whichever worker is free; results come back in request order.
 */
import type { Worker } from 'node:worker_threads';
import type { Encoding } from '@metaprune/core';
import { validateEncoding } from '@metaprune/core';
import { type SharedStateHandle, shareState } from '../pruningnet/params.js';
import type { PruningNet } from '../pruningnet/pruningnet.js';
import { releaseSlot } from '../pruningnet/wasm-gen.js';
import { spawnWorker } from '../workers/spawn.js';
import { shareImageSet } from './data.js';
import type { EvaluationResult, ImageSet } from './evaluate.js';

export interface EvaluationWorkersOptions {
  /** Worker threads (default 2). */
  workers?: number;
  backend?: string;
  recalBatches?: number;
  batchSize?: number;
  valBatches?: number;
}

export interface SharedImageSet {
  images: SharedArrayBuffer;
  labels: SharedArrayBuffer;
  count: number;
  imageShape: [number, number, number];
}

export interface EvalWorkerInit {
  spec: unknown;
  seed: number;
  /** The PruningNet's `weightPrediction` (false: the ablation without it). */
  weightPrediction: boolean;
  backend?: string;
  state: SharedStateHandle;
  recal: SharedImageSet;
  val: SharedImageSet;
  recalBatches: number;
  batchSize: number;
  valBatches?: number;
}

/**
 * A smaller proxy than the pool's own (racing, issue 16): the first `recalBatches`
 * recalibration batches and the first `valBatches` validation batches of the pool's sets,
 * so the result equals that of a pool made with exactly those sets.
 */
export interface EvaluationSlice {
  recalBatches?: number;
  valBatches?: number;
}

export type EvalWorkerRequest = {
  type: 'eval';
  id: number;
  enc: number[];
} & EvaluationSlice;
export type EvalWorkerReply =
  | { type: 'ready'; slot: number }
  | { type: 'result'; id: number; result: EvaluationResult }
  | { type: 'error'; id: number; message: string; stack?: string };

function sharedSet(set: ImageSet): SharedImageSet {
  const s =
    set.images.buffer instanceof SharedArrayBuffer &&
    set.labels.buffer instanceof SharedArrayBuffer &&
    set.images.byteOffset === 0 &&
    set.labels.byteOffset === 0 &&
    set.images.byteLength === set.images.buffer.byteLength &&
    set.labels.byteLength === set.labels.buffer.byteLength
      ? set
      : shareImageSet(set);
  return {
    images: s.images.buffer as SharedArrayBuffer,
    labels: s.labels.buffer as SharedArrayBuffer,
    count: s.count,
    imageShape: [...s.imageShape] as [number, number, number],
  };
}

interface Job {
  id: number;
  enc: number[];
  slice?: EvaluationSlice;
  resolve: (r: EvaluationResult) => void;
  reject: (e: Error) => void;
}

export class EvaluationWorkers {
  private readonly workers: Worker[] = [];
  private readonly busy: (Job | null)[] = [];
  private readonly queue: Job[] = [];
  private nextId = 0;
  private closed = false;
  private failed: Error | null = null;
  private readonly slots: number[] = [];

  private constructor(private readonly pnet: PruningNet) {}

  /**
   * Starts the workers. The PruningNet must be current (trained steps flushed) and stay
   * unchanged while the pool evaluates.
   */
  static async create(
    pnet: PruningNet,
    sets: { recal: ImageSet; val: ImageSet },
    options: EvaluationWorkersOptions = {},
  ): Promise<EvaluationWorkers> {
    if (!pnet.current) pnet.flush();
    const pool = new EvaluationWorkers(pnet);
    const init: EvalWorkerInit = {
      spec: pnet.net.spec,
      seed: pnet.seed,
      weightPrediction: pnet.weightPrediction,
      backend: options.backend,
      state: shareState(pnet.state, 'EvaluationWorkers'),
      recal: sharedSet(sets.recal),
      val: sharedSet(sets.val),
      recalBatches: options.recalBatches ?? 100,
      batchSize: options.batchSize ?? 64,
      valBatches: options.valBatches,
    };
    const n = Math.max(1, options.workers ?? 2);
    const readies: Promise<void>[] = [];
    for (let k = 0; k < n; k++) {
      const w = spawnWorker(import.meta.url, 'worker', init);
      pool.workers.push(w);
      pool.busy.push(null);
      readies.push(
        new Promise<void>((resolve, reject) => {
          const onMsg = (m: EvalWorkerReply) => {
            if (m.type === 'ready') {
              pool.slots.push(m.slot);
              w.off('message', onMsg);
              w.on('message', (r: EvalWorkerReply) => pool.onMessage(k, r));
              resolve();
            } else if (m.type === 'error') reject(new Error(`evaluator worker ${k}: ${m.message}`));
          };
          w.on('message', onMsg);
          w.once('error', reject);
        }),
      );
      w.on('error', (e) => pool.fail(e instanceof Error ? e : new Error(String(e))));
      w.on('exit', (code) => {
        if (code !== 0 && !pool.closed)
          pool.fail(new Error(`evaluator worker ${k} exited with code ${code}`));
      });
    }
    try {
      await Promise.all(readies);
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (let k = 0; k < this.busy.length; k++) {
      this.busy[k]?.reject(e);
      this.busy[k] = null;
    }
    for (const j of this.queue.splice(0)) j.reject(e);
  }

  private onMessage(k: number, m: EvalWorkerReply): void {
    const job = this.busy[k];
    this.busy[k] = null;
    if (job && m.type === 'result' && m.id === job.id) job.resolve(m.result);
    else if (job && m.type === 'error') {
      const e = new Error(`evaluator worker ${k}: ${m.message}`);
      if (m.stack) e.stack = m.stack;
      job.reject(e);
    }
    this.dispatch();
  }

  private dispatch(): void {
    for (let k = 0; k < this.workers.length && this.queue.length > 0; k++) {
      if (this.busy[k]) continue;
      const job = this.queue.shift() as Job;
      this.busy[k] = job;
      (this.workers[k] as Worker).postMessage({
        type: 'eval',
        id: job.id,
        enc: job.enc,
        ...job.slice,
      } satisfies EvalWorkerRequest);
    }
  }

  /** Evaluates one candidate on the next free worker (on a smaller `slice`, if given). */
  evaluate(encoding: Encoding, slice?: EvaluationSlice): Promise<EvaluationResult> {
    if (this.closed) return Promise.reject(new Error('EvaluationWorkers is closed'));
    if (this.failed) return Promise.reject(this.failed);
    const enc = [...validateEncoding(this.pnet.net, encoding)];
    for (const [k, v] of Object.entries(slice ?? {})) {
      if (v !== undefined && !(Number.isInteger(v) && v >= 1)) {
        return Promise.reject(new RangeError(`slice.${k} must be an integer >= 1, got ${v}`));
      }
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, enc, ...(slice ? { slice } : {}), resolve, reject });
      this.dispatch();
    });
  }

  /** Evaluates candidates concurrently; results in input order. */
  evaluateMany(
    encodings: readonly Encoding[],
    slice?: EvaluationSlice,
  ): Promise<EvaluationResult[]> {
    return Promise.all(encodings.map((e) => this.evaluate(e, slice)));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
    const wasm = this.pnet.state.wasm;
    if (wasm) for (const s of this.slots.splice(0)) releaseSlot(wasm.memory, s);
  }
}
