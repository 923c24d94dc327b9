/**
 * One PruningNet training step in the calling thread: generate + crop (with lazy momentum
 * catch-up), forward + backward of the whole batch, generators' backward + update.
 */
import type { Encoding } from '@metaprune/core';
import { CatchUp, type OptimConfig } from '../pruningnet/generator.js';
import type { PruningNet } from '../pruningnet/pruningnet.js';
import {
  allLayers,
  GenScratch,
  generateLayers,
  planCrops,
  updateLayers,
} from '../pruningnet/step.js';
import { type ShardBatch, type ShardResult, trainShard } from '../pruningnet/tfstep.js';
import type { LinearSchedule } from './schedule.js';

export interface StepResult extends ShardResult {
  /** Images in the batch. */
  n: number;
}

/** A training-step executor; `LocalStepper` runs in-thread, `ParallelStepper` in workers. */
export interface Stepper {
  /** Data-parallel shards of a batch (part of the training configuration). */
  readonly shards: number;
  /** The optimiser of the run about to start (the trainer calls this first). */
  setOptim?(optim: OptimConfig & { schedule?: LinearSchedule }): void;
  step(t: number, enc: Encoding, batch: ShardBatch): Promise<StepResult>;
  close(): Promise<void>;
}

export class LocalStepper implements Stepper {
  readonly shards = 1;
  private readonly arena: Float32Array;
  private readonly grads: Float32Array;
  private readonly scratch: GenScratch;
  private cu: CatchUp;
  private readonly layers: number[];

  constructor(
    readonly pnet: PruningNet,
    private optim: OptimConfig,
  ) {
    this.arena = new Float32Array(pnet.layout.totalRows);
    this.grads = new Float32Array(pnet.layout.gradArenaSize);
    this.scratch = new GenScratch(pnet.layout);
    this.cu = new CatchUp(optim);
    this.layers = allLayers(pnet.layout);
  }

  setOptim(optim: OptimConfig): void {
    this.optim = optim;
    this.cu = new CatchUp(optim);
  }

  stepSync(t: number, enc: Encoding, batch: ShardBatch): StepResult {
    const { layout, state } = this.pnet;
    const plan = planCrops(layout, enc);
    generateLayers(layout, state, enc, plan, this.scratch, this.arena, this.layers, {
      t,
      cu: this.cu,
    });
    const r = trainShard(
      layout,
      this.pnet.index,
      plan,
      this.arena,
      state.params.small,
      batch,
      this.grads,
    );
    updateLayers(
      layout,
      state,
      plan,
      this.scratch,
      [this.grads],
      [1],
      {
        t,
        lr: this.optim.lrAt(t),
        momentum: this.optim.momentum,
        classifierLrScale: this.optim.classifierLrScale,
      },
      this.layers,
    );
    return { ...r, n: batch.n };
  }

  async step(t: number, enc: Encoding, batch: ShardBatch): Promise<StepResult> {
    return this.stepSync(t, enc, batch);
  }

  async close(): Promise<void> {}
}
