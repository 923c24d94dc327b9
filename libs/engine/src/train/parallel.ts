/**
 * Data-parallel PruningNet training over worker threads that share the parameters.
 *
 * Per step, with K workers: each generates the crops of its share of the layers (balanced
 * by work) into one shared arena; barrier; each runs forward + backward of its 1/K of the
 * batch (own BN batch statistics, as data-parallel training without SyncBN) and writes its
 * crop gradients to its own shared gradient arena; barrier; each runs the generators'
 * backward + momentum update for its layers on the size-weighted sum of all workers'
 * gradients. What crosses threads is the crop gradients (at most ~1.2M floats per worker
 * for the benchmark network), never the 66M generator parameters, and every parameter row
 * is written by exactly one worker, so the step is deterministic.
 */

import type { Worker } from 'node:worker_threads';
import type { Encoding } from '@metaprune/core';
import type { OptimConfig } from '../pruningnet/generator.js';
import { type SharedStateHandle, shareState } from '../pruningnet/params.js';
import type { PruningNet } from '../pruningnet/pruningnet.js';
import type { ShardBatch } from '../pruningnet/tfstep.js';
import { releaseSlot } from '../pruningnet/wasm-gen.js';
import { BARRIER_SLOTS } from '../workers/barrier.js';
import { spawnWorker } from '../workers/spawn.js';
import type { Stepper, StepResult } from './local.js';
import type { LinearSchedule } from './schedule.js';

export interface StepPhases {
  generate: number;
  waitGenerated: number;
  forwardBackward: number;
  waitGradients: number;
  update: number;
}

export interface ParallelStepperOptions {
  /** Worker threads (default 2). */
  workers?: number;
  /** tfjs backend for the workers (default: wasm, as initBackend picks). */
  backend?: string;
}

export interface TrainWorkerInit {
  spec: unknown;
  /** The PruningNet's `weightPrediction` (false: the ablation without it). */
  weightPrediction: boolean;
  shard: number;
  shards: number;
  backend?: string;
  state: SharedStateHandle;
  arena: SharedArrayBuffer;
  grads: SharedArrayBuffer[];
  ctl: SharedArrayBuffer;
}

export type TrainWorkerRequest =
  | { type: 'optim'; schedule: LinearSchedule }
  | { type: 'inputs'; images: SharedArrayBuffer; labels: SharedArrayBuffer }
  | {
      type: 'step';
      t: number;
      enc: number[];
      n: number;
      imageShape: [number, number, number];
    };

export type TrainWorkerReply =
  | { type: 'ready'; slot: number }
  | {
      type: 'done';
      loss: number;
      correct: number;
      n: number;
      seconds: number;
      /** Seconds per phase of the step in this worker. */
      phases: StepPhases;
    }
  | { type: 'error'; message: string; stack?: string };

interface Pending {
  resolve: (r: TrainWorkerReply) => void;
  reject: (e: Error) => void;
}

export class ParallelStepper implements Stepper {
  readonly shards: number;
  private readonly workers: Worker[] = [];
  private readonly pending: (Pending | null)[] = [];
  private images: Float32Array | null = null;
  private labels: Int32Array | null = null;
  private failed: Error | null = null;
  private readonly ready: Promise<void>;
  private readonly slots: number[] = [];
  /** Per-worker phase timings of the last step (for profiling). */
  lastPhases: StepPhases[] = [];

  private constructor(
    readonly pnet: PruningNet,
    options: ParallelStepperOptions,
  ) {
    this.shards = Math.max(1, options.workers ?? 2);
    const { state, layout } = pnet;
    const grads = Array.from(
      { length: this.shards },
      () => new SharedArrayBuffer(layout.gradArenaSize * 4),
    );
    const base = {
      spec: pnet.net.spec,
      weightPrediction: pnet.weightPrediction,
      shards: this.shards,
      backend: options.backend,
      state: shareState(state, 'ParallelStepper'),
      arena: new SharedArrayBuffer(layout.totalRows * 4),
      grads,
      ctl: new SharedArrayBuffer(BARRIER_SLOTS * 4),
    };
    const readies: Promise<TrainWorkerReply>[] = [];
    for (let k = 0; k < this.shards; k++) {
      const init: TrainWorkerInit = { ...base, shard: k };
      const w = spawnWorker(import.meta.url, 'worker', init);
      this.workers.push(w);
      this.pending.push(null);
      readies.push(this.expect(k));
      w.on('message', (m: TrainWorkerReply) => this.onMessage(k, m));
      w.on('error', (e) => this.fail(e instanceof Error ? e : new Error(String(e))));
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`training worker ${k} exited with code ${code}`));
      });
    }
    this.ready = Promise.all(readies).then((rs) => {
      for (const r of rs) if (r.type === 'ready') this.slots.push(r.slot);
    });
  }

  /** Starts the workers (they load the tfjs backend) and waits until they are ready. */
  static async create(
    pnet: PruningNet,
    options: ParallelStepperOptions = {},
  ): Promise<ParallelStepper> {
    const s = new ParallelStepper(pnet, options);
    try {
      await s.ready;
    } catch (e) {
      await s.close();
      throw e;
    }
    return s;
  }

  private onMessage(k: number, m: TrainWorkerReply): void {
    const p = this.pending[k];
    this.pending[k] = null;
    if (!p) return;
    if (m.type === 'error') {
      const e = new Error(`training worker ${k}: ${m.message}`);
      if (m.stack) e.stack = m.stack;
      p.reject(e);
    } else p.resolve(m);
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (let k = 0; k < this.pending.length; k++) {
      const p = this.pending[k];
      this.pending[k] = null;
      p?.reject(e);
    }
  }

  private expect(k: number): Promise<TrainWorkerReply> {
    return new Promise((resolve, reject) => {
      if (this.failed) reject(this.failed);
      else this.pending[k] = { resolve, reject };
    });
  }

  private post(k: number, m: TrainWorkerRequest): void {
    (this.workers[k] as Worker).postMessage(m);
  }

  setOptim(optim: OptimConfig & { schedule?: LinearSchedule }): void {
    if (!optim.schedule)
      throw new Error('ParallelStepper needs a serialisable schedule (linearOptim)');
    for (let k = 0; k < this.shards; k++) this.post(k, { type: 'optim', schedule: optim.schedule });
  }

  private ensureInputs(size: number, labels: number): void {
    if (this.images && this.images.length >= size && this.labels && this.labels.length >= labels)
      return;
    const images = new SharedArrayBuffer(size * 4);
    const lab = new SharedArrayBuffer(labels * 4);
    this.images = new Float32Array(images);
    this.labels = new Int32Array(lab);
    for (let k = 0; k < this.shards; k++) this.post(k, { type: 'inputs', images, labels: lab });
  }

  async step(t: number, enc: Encoding, batch: ShardBatch): Promise<StepResult> {
    if (this.failed) throw this.failed;
    const [h, w, c] = batch.imageShape;
    const size = batch.n * h * w * c;
    this.ensureInputs(size, batch.n);
    (this.images as Float32Array).set(batch.images.subarray(0, size));
    (this.labels as Int32Array).set(batch.labels.subarray(0, batch.n));
    const replies: Promise<TrainWorkerReply>[] = [];
    for (let k = 0; k < this.shards; k++) {
      replies.push(this.expect(k));
      this.post(k, { type: 'step', t, enc: [...enc], n: batch.n, imageShape: [h, w, c] });
    }
    const done = await Promise.all(replies);
    this.lastPhases = done.flatMap((r) => (r.type === 'done' ? [r.phases] : []));
    let loss = 0;
    let correct = 0;
    let n = 0;
    for (const r of done) {
      if (r.type !== 'done') throw new Error(`unexpected worker reply ${r.type}`);
      loss += r.loss * r.n;
      correct += r.correct;
      n += r.n;
    }
    return { loss: loss / Math.max(1, n), correct, n };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
    const wasm = this.pnet.state.wasm;
    if (wasm) for (const s of this.slots.splice(0)) releaseSlot(wasm.memory, s);
  }
}
