/**
 * BN recalibration and folding of a candidate given as per-layer weight tensors, shared by
 * the engine's evaluation (weights generated in-process) and the evaluator service
 * (weights streamed from the weight generator), so both score a candidate identically.
 *
 * Recalibration (DESIGN 1.5) resets the statistics and recomputes them by training-mode
 * forward passes: per BN site the mean of the batch means and the mean of the unbiased
 * batch variances (PyTorch's BN with momentum=None). Folding puts them into the conv:
 * W' = W / sqrt(var + eps) per output channel, bias = -mean / sqrt(var + eps).
 */
import type { Layer, Network } from '@metaprune/core';
import * as tf from '@tensorflow/tfjs';
import { BN_EPS, forwardTrain } from '../pruningnet/forward.js';

/** Per-layer BN statistics of a candidate (by net.layers index; absent for the classifier). */
export interface BnStats {
  mean: (Float32Array | undefined)[];
  variance: (Float32Array | undefined)[];
}

/** Accumulates batch statistics over recalibration batches. */
export class BnStatsAccumulator {
  private readonly sumMean: (Float64Array | undefined)[];
  private readonly sumVar: (Float64Array | undefined)[];
  private batches = 0;

  constructor(
    private readonly net: Network,
    private readonly index: Map<Layer, number>,
  ) {
    this.sumMean = new Array(net.layers.length).fill(undefined);
    this.sumVar = new Array(net.layers.length).fill(undefined);
  }

  /** One training-mode forward pass of `x` through the candidate's weights. */
  addBatch(
    x: tf.Tensor4D,
    ws: readonly tf.Tensor[],
    biases: readonly (tf.Tensor | undefined)[],
  ): void {
    const n = x.shape[0];
    tf.tidy(() => {
      const stats: [number, tf.Tensor, tf.Tensor][] = [];
      forwardTrain(this.net, this.index, x, ws, biases, {
        statsOnly: true,
        onStats: (i, m, v) => {
          stats.push([i, m, v]);
        },
      });
      for (const [i, m, v] of stats) {
        this.add(i, m.dataSync() as Float32Array, v.dataSync() as Float32Array, n);
        m.dispose();
        v.dispose();
      }
    });
    this.batches++;
  }

  private add(i: number, md: Float32Array, vd: Float32Array, n: number): void {
    const layer = this.net.layers[i];
    const rows = layer ? n * layer.outSize * layer.outSize : n;
    const unbias = rows > 1 ? rows / (rows - 1) : 1;
    let sm = this.sumMean[i];
    let sv = this.sumVar[i];
    if (!sm || !sv) {
      sm = new Float64Array(md.length);
      sv = new Float64Array(md.length);
      this.sumMean[i] = sm;
      this.sumVar[i] = sv;
    }
    for (let q = 0; q < md.length; q++) {
      sm[q] = (sm[q] as number) + (md[q] as number);
      sv[q] = (sv[q] as number) + (vd[q] as number) * unbias;
    }
  }

  /** The recalibrated statistics (means over the batches added). */
  result(): BnStats {
    const b = Math.max(1, this.batches);
    return {
      mean: this.sumMean.map((s) => (s ? Float32Array.from(s, (v) => v / b) : undefined)),
      variance: this.sumVar.map((s) => (s ? Float32Array.from(s, (v) => v / b) : undefined)),
    };
  }
}

/**
 * Folds one layer's BN statistics into its weight `w` (tfjs layout: the output channel is
 * the innermost index of conv and depthwise filters alike).
 */
export function foldBatchNorm(
  w: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
): { w: Float32Array; bias: Float32Array } {
  const C = mean.length;
  const rstd = new Float32Array(C);
  const bias = new Float32Array(C);
  for (let q = 0; q < C; q++) {
    rstd[q] = 1 / Math.sqrt((variance[q] as number) + BN_EPS);
    bias[q] = -(mean[q] as number) * (rstd[q] as number);
  }
  const wf = new Float32Array(w.length);
  for (let k = 0; k < wf.length; k++) wf[k] = (w[k] as number) * (rstd[k % C] as number);
  return { w: wf, bias };
}
