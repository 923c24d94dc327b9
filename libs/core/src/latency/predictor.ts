import { type Encoding, validateEncoding } from '../encoding.js';
import type { Network } from '../networks/types.js';
import { channelsAt, SCALE_COUNT } from '../scales.js';
import { type LatencyTable, tiedChannels, validateLatencyTable } from './table.js';

/** One term of a prediction. */
export interface LayerLatency {
  readonly layer: string;
  readonly cin: number;
  readonly cout: number;
  /** Looked up (or interpolated) latency, milliseconds. */
  readonly ms: number;
}

export interface LatencyPrediction {
  /** Sum of the layer terms plus the table's constant (read as 0 when negative), milliseconds. */
  readonly predictedMs: number;
  readonly constantMs: number;
  readonly layers: readonly LayerLatency[];
}

/** Index of `x` in ascending `grid`, or the bracketing pair and weight for interpolation. */
function bracket(grid: readonly number[], x: number): [number, number, number] {
  let lo = 0;
  let hi = grid.length - 1;
  if (x <= (grid[0] as number)) return [0, 0, 0];
  if (x >= (grid[hi] as number)) return [hi, hi, 0];
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if ((grid[mid] as number) <= x) lo = mid;
    else hi = mid;
  }
  const g0 = grid[lo] as number;
  if (g0 === x) return [lo, lo, 0];
  return [lo, hi, (x - g0) / ((grid[hi] as number) - g0)];
}

/** A layer's rows as a (Cin, Cout) matrix; bilinear in between grid points. */
class LayerGrid {
  readonly cins: number[];
  readonly couts: number[];
  private readonly values: Float64Array;

  constructor(
    rows: readonly { cin: number; cout: number; medianMs: number }[],
    depthwise: boolean,
  ) {
    this.cins = [...new Set(rows.map((r) => r.cin))].sort((a, b) => a - b);
    this.couts = depthwise ? [0] : [...new Set(rows.map((r) => r.cout))].sort((a, b) => a - b);
    this.values = new Float64Array(this.cins.length * this.couts.length);
    const ci = new Map(this.cins.map((c, i) => [c, i]));
    const co = new Map(this.couts.map((c, i) => [c, i]));
    for (const r of rows) {
      const i = ci.get(r.cin) as number;
      const j = depthwise ? 0 : (co.get(r.cout) as number);
      this.values[i * this.couts.length + j] = r.medianMs;
    }
  }

  private at(i: number, j: number): number {
    return this.values[i * this.couts.length + j] as number;
  }

  /** Exact at grid points (the row's value itself), bilinear between them. */
  lookup(cin: number, cout: number): number {
    const [i0, i1, ti] = bracket(this.cins, cin);
    const [j0, j1, tj] = this.couts.length === 1 ? [0, 0, 0] : bracket(this.couts, cout);
    if (ti === 0 && tj === 0) return this.at(i0, j0);
    if (tj === 0) return this.at(i0, j0) * (1 - ti) + this.at(i1, j0) * ti;
    if (ti === 0) return this.at(i0, j0) * (1 - tj) + this.at(i0, j1) * tj;
    return (
      this.at(i0, j0) * (1 - ti) * (1 - tj) +
      this.at(i1, j0) * ti * (1 - tj) +
      this.at(i0, j1) * (1 - ti) * tj +
      this.at(i1, j1) * ti * tj
    );
  }
}

export interface LatencyPredictorOptions {
  /** Validate the table against the network first (default true). */
  validate?: boolean;
}

const S = SCALE_COUNT;

/**
 * A latency table compiled for one network: per layer a 31x31 matrix of milliseconds over
 * (input scale id, output scale id), looked up (or bilinearly interpolated on a coarse
 * grid) once at construction. Predicting an encoding is then one load per layer and no
 * allocation — millions of candidates per second, cheap enough to reject over-budget
 * candidates at generation time.
 *
 *   predicted = (sum over layers, in `net.layers` order, of the layer's term) + constantMs
 *
 * with constantMs = max(0, table.constantMs): every term is >= 0, so is every prediction.
 */
export class LatencyPredictor {
  readonly constantMs: number;
  private readonly n: number;
  private readonly inGene: Int32Array;
  private readonly outGene: Int32Array;
  /** lut[layer * S * S + inId * S + outId]; fixed widths use id 0. */
  private readonly lut: Float64Array;

  constructor(
    readonly net: Network,
    readonly table: LatencyTable,
    opts: LatencyPredictorOptions = {},
  ) {
    if (opts.validate ?? true) validateLatencyTable(net, table);
    // A forward's fixed overhead is >= 0 (fitLatencyConstant never fits less); tables
    // fitted before that was enforced may carry a negative constant: read it as 0, so no
    // prediction (nor lowerBoundMs) goes below the sum of its non-negative rows.
    this.constantMs = Math.max(0, table.constantMs);
    const layers = net.layers;
    this.n = layers.length;
    this.inGene = new Int32Array(this.n);
    this.outGene = new Int32Array(this.n);
    this.lut = new Float64Array(this.n * S * S);
    const byLayer = new Map<string, LatencyTable['rows'][number][]>();
    for (const r of table.rows) {
      let list = byLayer.get(r.layer);
      if (!list) {
        list = [];
        byLayer.set(r.layer, list);
      }
      list.push(r);
    }
    layers.forEach((l, k) => {
      const dw = tiedChannels(l);
      const grid = new LayerGrid(byLayer.get(l.name) ?? [], dw);
      this.inGene[k] = l.in.gene ?? -1;
      this.outGene[k] = dw ? -1 : (l.out.gene ?? -1);
      const inIds = l.in.gene === null ? 1 : S;
      const outIds = dw || l.out.gene === null ? 1 : S;
      for (let a = 0; a < inIds; a++) {
        const cin = l.in.gene === null ? l.in.max : channelsAt(l.in.max, a);
        for (let b = 0; b < outIds; b++) {
          const cout = dw ? cin : l.out.gene === null ? l.out.max : channelsAt(l.out.max, b);
          this.lut[k * S * S + a * S + b] = grid.lookup(cin, cout);
        }
      }
    });
  }

  /** Sum of the layer terms without the constant, milliseconds. */
  layerSumMs(enc: Encoding): number {
    let total = 0;
    const lut = this.lut;
    for (let k = 0; k < this.n; k++) {
      const gi = this.inGene[k] as number;
      const go = this.outGene[k] as number;
      const a = gi < 0 ? 0 : (enc[gi] as number);
      const b = go < 0 ? 0 : (enc[go] as number);
      total += lut[k * S * S + a * S + b] as number;
    }
    return total;
  }

  /** Predicted latency of one batch, milliseconds (no validation of `enc`: see `predictChecked`). */
  predict(enc: Encoding): number {
    return this.layerSumMs(enc) + this.constantMs;
  }

  /** Validates `enc` against the network first (throws a ValidationError naming the gene). */
  predictChecked(enc: readonly unknown[], field = 'encoding'): number {
    return this.predict(validateEncoding(this.net, enc, field));
  }

  /** The prediction with its per-layer terms, in `net.layers` order. */
  explain(enc: Encoding): LatencyPrediction {
    validateEncoding(this.net, enc);
    const layers = this.net.layers.map((l, k): LayerLatency => {
      const gi = this.inGene[k] as number;
      const go = this.outGene[k] as number;
      const a = gi < 0 ? 0 : (enc[gi] as number);
      const b = go < 0 ? 0 : (enc[go] as number);
      const cin = l.in.gene === null ? l.in.max : channelsAt(l.in.max, a);
      const cout = tiedChannels(l)
        ? cin
        : l.out.gene === null
          ? l.out.max
          : channelsAt(l.out.max, b);
      return { layer: l.name, cin, cout, ms: this.lut[k * S * S + a * S + b] as number };
    });
    return { predictedMs: this.predict(enc), constantMs: this.constantMs, layers };
  }

  /**
   * A bound no candidate goes below: the constant plus every layer's smallest term (layers
   * share genes, so the true minimum can only be higher). Use it to refuse latency budgets
   * nothing can meet (`checkBudgetFeasible`'s `lo.latencyMs`).
   */
  lowerBoundMs(): number {
    return this.bound(Math.min);
  }

  /** A bound no candidate goes above (the constant plus every layer's largest term). */
  upperBoundMs(): number {
    return this.bound(Math.max);
  }

  private bound(pick: (...v: number[]) => number): number {
    let total = 0;
    for (let k = 0; k < this.n; k++) {
      const ins = (this.inGene[k] as number) < 0 ? 1 : S;
      const outs = (this.outGene[k] as number) < 0 ? 1 : S;
      const vals: number[] = [];
      for (let a = 0; a < ins; a++)
        for (let b = 0; b < outs; b++) vals.push(this.lut[k * S * S + a * S + b] as number);
      total += pick(...vals);
    }
    return total + this.constantMs;
  }

  /** The same table with another constant (used when fitting it). */
  withConstant(constantMs: number): LatencyPredictor {
    return new LatencyPredictor(this.net, { ...this.table, constantMs }, { validate: false });
  }
}

const predictors = new WeakMap<LatencyTable, LatencyPredictor>();

/** The (cached per table object) compiled predictor of a validated table. */
export function latencyPredictor(net: Network, table: LatencyTable): LatencyPredictor {
  let p = predictors.get(table);
  if (!p || p.net !== net) {
    p = new LatencyPredictor(net, table);
    predictors.set(table, p);
  }
  return p;
}

/** One-off prediction with per-layer terms (validates table and encoding). */
export function predictLatency(
  net: Network,
  table: LatencyTable,
  enc: Encoding,
): LatencyPrediction {
  return latencyPredictor(net, table).explain(enc);
}
