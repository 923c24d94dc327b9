/**
 * A PruningNet (DESIGN 1.2) for any core Network: weight generators for every conv and
 * depthwise layer, the classifier as an ordinary layer, and the optimiser state.
 * Parameters live in plain float arrays (see params.ts); tensors only exist during a step.
 */
import {
  type Encoding,
  type Layer,
  MAX_SCALE_ID,
  type Network,
  SCALE_COUNT,
} from '@metaprune/core';
import { hashSeed, Rng } from '@metaprune/data';
import { layerIndex } from './forward.js';
import { CatchUp, flushRows, type OptimConfig } from './generator.js';
import { buildLayout, type PruningNetLayout } from './layout.js';
import { allocState, initParams, type PruningNetState } from './params.js';
import { allLayers, GenScratch, generateLayers, type LayerPlan, planCrops } from './step.js';
import { GenKernels } from './wasm-gen.js';

export interface PruningNetOptions {
  /** Seed of the parameter initialisation (default 0). */
  seed?: number;
  /** Allocate parameters in SharedArrayBuffers (for worker threads). Default false. */
  shared?: boolean;
  /**
   * Default true (MetaPruning). False: the ablation without weight prediction — every
   * generator sees a constant input, so each layer has one shared max-width weight tensor
   * (its generator's output) that candidates crop; trained and evaluated the same way.
   */
  weightPrediction?: boolean;
}

export class PruningNet {
  readonly layout: PruningNetLayout;
  readonly index: Map<Layer, number>;
  /**
   * Global training steps applied so far. Rows may lag behind (lazy momentum); they are
   * all current when `flushedAt === step` (see `flush`).
   */
  step = 0;
  flushedAt = 0;
  /** Optimiser of the current training run (needed to flush lagging rows). */
  optim: OptimConfig | null = null;

  constructor(
    readonly net: Network,
    readonly state: PruningNetState,
    readonly seed: number,
    readonly weightPrediction = true,
  ) {
    this.layout = buildLayout(net, { weightPrediction });
    this.index = layerIndex(net);
  }

  /** True when every generator row reflects every step applied (weights can be generated). */
  get current(): boolean {
    return this.flushedAt === this.step;
  }

  /** Brings every lagging row up to date (exact momentum catch-up). */
  flush(): void {
    if (this.current) return;
    if (!this.optim) throw new Error('PruningNet.flush: rows lag behind but no optimiser is set');
    flushRows(
      this.layout,
      this.state,
      this.step,
      new CatchUp(this.optim),
      undefined,
      GenKernels.for(this.state, this.layout),
    );
    this.flushedAt = this.step;
  }
}

export function createPruningNet(net: Network, options: PruningNetOptions = {}): PruningNet {
  const seed = options.seed ?? 0;
  const weightPrediction = options.weightPrediction ?? true;
  const pnet = new PruningNet(
    net,
    allocState(buildLayout(net, { weightPrediction }), options.shared ?? false),
    seed,
    weightPrediction,
  );
  initParams(pnet.layout, pnet.state.params, hashSeed(seed, 0x9e7));
  return pnet;
}

export interface GeneratedCandidate {
  enc: Encoding;
  plan: LayerPlan[];
  /** Every generator's crop at its row offset. */
  arena: Float32Array;
}

/** Generates (and crops) the weights of a candidate once. The PruningNet must be current. */
export function generateCandidate(
  pnet: PruningNet,
  enc: Encoding,
  arena?: Float32Array,
): GeneratedCandidate {
  if (!pnet.current) pnet.flush();
  const plan = planCrops(pnet.layout, enc);
  const out = arena ?? new Float32Array(pnet.layout.totalRows);
  generateLayers(
    pnet.layout,
    pnet.state,
    enc,
    plan,
    new GenScratch(pnet.layout),
    out,
    allLayers(pnet.layout),
  );
  return { enc, plan, arena: out };
}

/** Stream tag of the structure sampler. */
const STRUCTURE_STREAM = 0x57ec;

/**
 * The random encoding of global step `t`: uniform over scale ids `minId..30` per gene
 * (shared genes are one gene, so they move together; default minId 0, the whole space).
 * A pure function of (seed, t), so a resumed run draws exactly the same structures.
 */
export function sampleEncoding(net: Network, seed: number, t: number, minId = 0): Encoding {
  if (!Number.isInteger(minId) || minId < 0 || minId > MAX_SCALE_ID) {
    throw new RangeError(`minId must be an integer in 0..${MAX_SCALE_ID}, got ${minId}`);
  }
  const rng = new Rng(hashSeed(STRUCTURE_STREAM, seed, t));
  return net.genes.map(() => minId + rng.int(SCALE_COUNT - minId));
}
