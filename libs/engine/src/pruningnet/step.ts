/**
 * The parts of a PruningNet step that do not involve tensors, per layer: planning a
 * candidate's crops, generating them into an arena, and the generators' backward + update.
 * Used identically in-process and by worker threads (each worker takes a subset of layers).
 */
import type { Encoding } from '@metaprune/core';
import { widthOf } from '@metaprune/core';
import {
  backwardUpdate,
  type CatchUp,
  cropOf,
  fcUpdate,
  generateCrop,
  hiddenForward,
  layerCode,
  type UpdateArgs,
} from './generator.js';
import type { PruningNetLayout } from './layout.js';
import type { PruningNetState } from './params.js';
import { GenKernels } from './wasm-gen.js';

export interface LayerPlan {
  cin: number;
  /** Output channels of the layer (depthwise: its channels). */
  cout: number;
  /** Filter shape in tfjs layout. */
  shape: number[];
  /** Elements of the crop. */
  size: number;
}

/** Crop sizes and filter shapes of every layer under an encoding. */
export function planCrops(layout: PruningNetLayout, enc: Encoding): LayerPlan[] {
  return layout.net.layers.map((layer, i) => {
    const g = layout.gens[i];
    const cin = widthOf(layer.in, enc);
    if (g == null) {
      const cout = layer.out.max;
      return { cin, cout, shape: [cin, cout], size: cin * cout };
    }
    const { cout } = cropOf(g, enc);
    const k = layer.kernel;
    if (g.kind === 'depthwise') return { cin, cout: cin, shape: [k, k, cin, 1], size: cin * g.kk };
    return { cin, cout, shape: [k, k, cin, cout], size: cin * cout * g.kk };
  });
}

/** Per-layer generator scratch (code, pre-activation, hidden) kept between generate and update. */
export class GenScratch {
  readonly code: Float64Array[];
  readonly pre: Float32Array[];
  readonly h: Float32Array[];
  readonly gh: Float64Array;

  constructor(layout: PruningNetLayout) {
    let maxH = 1;
    this.code = layout.gens.map((g) => new Float64Array(g ? g.codeLen : 1));
    this.pre = layout.gens.map((g) => new Float32Array(g ? g.hidden : 1));
    this.h = layout.gens.map((g) => {
      if (g) maxH = Math.max(maxH, g.hidden);
      return new Float32Array(g ? g.hidden : 1);
    });
    this.gh = new Float64Array(maxH);
  }
}

/** Layer indices of every generator and classifier. */
export function allLayers(layout: PruningNetLayout): number[] {
  return layout.net.layers.map((_, i) => i);
}

/**
 * Generates the crops of `layers` into `arena` (layer i's crop at `gens[i].rowOff`). The
 * classifier needs no generation (its crop is a prefix of `small`). With `catchUp`
 * (training step t) rows are brought up to date first.
 */
export function generateLayers(
  layout: PruningNetLayout,
  st: PruningNetState,
  enc: Encoding,
  plan: readonly LayerPlan[],
  scratch: GenScratch,
  arena: Float32Array,
  layers: readonly number[],
  catchUp?: { t: number; cu: CatchUp },
): void {
  if (catchUp) catchUp.cu.prepare(catchUp.t);
  const kernels = GenKernels.for(st, layout);
  for (const i of layers) {
    const g = layout.gens[i];
    if (g == null) continue;
    const p = plan[i] as LayerPlan;
    const code = layerCode(g, enc, scratch.code[i] as Float64Array);
    const pre = scratch.pre[i] as Float32Array;
    const h = scratch.h[i] as Float32Array;
    hiddenForward(g, st.params.small, code, pre, h);
    const out = arena.subarray(g.rowOff, g.rowOff + p.size);
    generateCrop(g, st, h, p.cin, g.kind === 'depthwise' ? 1 : p.cout, out, catchUp, kernels);
  }
}

/**
 * Backward through the generators of `layers` and momentum-SGD update, for the weighted
 * sum of gradient arenas (one per data shard; weights = shard size / batch size).
 * Needs the scratch of the generateLayers call of the same step.
 */
export function updateLayers(
  layout: PruningNetLayout,
  st: PruningNetState,
  plan: readonly LayerPlan[],
  scratch: GenScratch,
  grads: readonly Float32Array[],
  weights: readonly number[],
  u: UpdateArgs,
  layers: readonly number[],
): void {
  const kernels = GenKernels.for(st, layout);
  for (const i of layers) {
    const g = layout.gens[i];
    const p = plan[i] as LayerPlan;
    if (g == null) {
      const f = layout.fcs.find((x) => x.index === i);
      if (!f) continue;
      const gw = grads.map((a) => a.subarray(f.gradOff, f.gradOff + p.cin * f.cout));
      const gb = grads.map((a) =>
        a.subarray(f.gradOff + f.cinMax * f.cout, f.gradOff + f.cinMax * f.cout + f.cout),
      );
      fcUpdate(f, st, p.cin, gw, gb, weights, u);
      continue;
    }
    const views = grads.map((a) => a.subarray(g.rowOff, g.rowOff + p.size));
    backwardUpdate(
      g,
      st,
      scratch.code[i] as Float64Array,
      scratch.pre[i] as Float32Array,
      scratch.h[i] as Float32Array,
      p.cin,
      g.kind === 'depthwise' ? 1 : p.cout,
      views,
      weights,
      u,
      scratch.gh,
      kernels,
    );
  }
}

/**
 * Splits layers into `parts` groups of about equal work (crop elements times hidden),
 * greedily, largest first; deterministic for a given plan.
 */
export function partitionLayers(
  layout: PruningNetLayout,
  plan: readonly LayerPlan[],
  parts: number,
): number[][] {
  const cost = plan.map((p, i) => {
    const g = layout.gens[i];
    return g ? p.size * g.hidden : p.size;
  });
  const order = cost
    .map((_, i) => i)
    .sort((a, b) => (cost[b] as number) - (cost[a] as number) || a - b);
  const groups: number[][] = Array.from({ length: parts }, () => []);
  const load = new Array<number>(parts).fill(0);
  for (const i of order) {
    let best = 0;
    for (let k = 1; k < parts; k++) if ((load[k] as number) < (load[best] as number)) best = k;
    (groups[best] as number[]).push(i);
    load[best] = (load[best] as number) + (cost[i] as number);
  }
  for (const g of groups) g.sort((a, b) => a - b);
  return groups;
}
