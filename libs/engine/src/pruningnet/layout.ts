/**
 * Where every parameter of a PruningNet lives, for any core Network (DESIGN 1.2).
 *
 * Per conv / depthwise layer a weight generator MLP `k -> hidden -> rows` with ReLU between,
 * where `k` is the number of scales in `layer.code` (at least 1) and `rows` is the number of
 * elements of the FULL weight tensor. The second FC is stored row-major: one row of `hidden`
 * weights (`w2`) plus one bias (`b2`) per generated weight element, so that the rows a
 * candidate's crop touches are contiguous blocks:
 *
 *   conv:      row(ci, co, kk) = (ci * coutMax + co) * KK + kk   (KK = kernel * kernel)
 *   depthwise: row(c, kk)      = c * KK + kk
 *
 * The generated crop is written in the filter layout tfjs expects:
 *   conv [kh, kw, cin, cout]: (kk * cin + ci) * cout + co;  depthwise [kh, kw, c, 1]: kk * c + c.
 *
 * The small parameters (every first FC `w1 [k, hidden]`, `b1 [hidden]`, and the classifier
 * `W [cinMax, classes]`, `b [classes]`) live in one flat array, `small`.
 */
import type { Layer, Network } from '@metaprune/core';

export interface GenLayout {
  /** Index in `net.layers`. */
  readonly index: number;
  readonly layer: Layer;
  readonly kind: 'conv' | 'depthwise';
  /**
   * No weight prediction (the RQ5 ablation): the generator's input is the constant 1, not
   * the layer's scales, so it produces one shared max-width tensor cropped per candidate.
   */
  readonly codeFree: boolean;
  readonly codeLen: number;
  readonly hidden: number;
  readonly cinMax: number;
  readonly coutMax: number;
  /** kernel * kernel. */
  readonly kk: number;
  /** Generated elements of the full weight (rows of the second FC). */
  readonly rows: number;
  /** First row of this layer in the per-row arrays (`b2`, `lastStep`). */
  readonly rowOff: number;
  /** Offset in `w2` (= rowOff * hidden of the layers before, summed). */
  readonly w2Off: number;
  /** Offsets in `small`. */
  readonly w1Off: number;
  readonly b1Off: number;
}

export interface FcLayout {
  readonly index: number;
  readonly layer: Layer;
  readonly cinMax: number;
  readonly cout: number;
  /** Offsets in `small`: weight [cinMax, cout], then bias [cout]. */
  readonly wOff: number;
  readonly bOff: number;
  /** Offset of its weight gradient [cin, cout] (then bias [cout]) in a gradient arena. */
  readonly gradOff: number;
}

export interface PruningNetLayout {
  readonly net: Network;
  /** False for the ablation without weight prediction (every generator `codeFree`). */
  readonly weightPrediction: boolean;
  /** One entry per net.layers index: a generator or the fc. */
  readonly gens: readonly (GenLayout | null)[];
  readonly fcs: readonly FcLayout[];
  readonly totalRows: number;
  readonly w2Size: number;
  readonly smallSize: number;
  /** Largest generated crop of any layer (elements), for scratch buffers. */
  readonly maxRows: number;
  /**
   * Size of a gradient arena: every generator's crop at its row offset (the crop occupies
   * a prefix of its `rows`), then every classifier's weight and bias.
   */
  readonly gradArenaSize: number;
}

export interface LayoutOptions {
  /**
   * Default true: each generator maps the layer's encoding to its weights (MetaPruning).
   * False: the ablation without weight prediction — generators get a constant input.
   */
  weightPrediction?: boolean;
}

export function buildLayout(net: Network, options: LayoutOptions = {}): PruningNetLayout {
  const weightPrediction = options.weightPrediction ?? true;
  const gens: (GenLayout | null)[] = [];
  const fcs: FcLayout[] = [];
  let rowOff = 0;
  let w2Off = 0;
  let small = 0;
  let maxRows = 0;
  net.layers.forEach((layer, index) => {
    if (layer.kind === 'fc') {
      const cinMax = layer.in.max;
      const cout = layer.out.max;
      fcs.push({
        index,
        layer,
        cinMax,
        cout,
        wOff: small,
        bOff: small + cinMax * cout,
        gradOff: 0,
      });
      small += cinMax * cout + cout;
      gens.push(null);
      return;
    }
    const kk = layer.kernel * layer.kernel;
    const cinMax = layer.in.max;
    const coutMax = layer.kind === 'depthwise' ? 1 : layer.out.max;
    const rows = cinMax * coutMax * kk;
    const codeLen = weightPrediction ? Math.max(1, layer.code.length) : 1;
    const hidden = layer.hidden;
    gens.push({
      index,
      layer,
      kind: layer.kind,
      codeFree: !weightPrediction,
      codeLen,
      hidden,
      cinMax,
      coutMax,
      kk,
      rows,
      rowOff,
      w2Off,
      w1Off: small,
      b1Off: small + codeLen * hidden,
    });
    small += codeLen * hidden + hidden;
    rowOff += rows;
    w2Off += rows * hidden;
    maxRows = Math.max(maxRows, rows);
  });
  let gradOff = rowOff;
  const placed = fcs.map((f) => {
    const out = { ...f, gradOff };
    gradOff += f.cinMax * f.cout + f.cout;
    return out;
  });
  return {
    net,
    weightPrediction,
    gens,
    fcs: placed,
    totalRows: rowOff,
    w2Size: w2Off,
    smallSize: small,
    maxRows,
    gradArenaSize: gradOff,
  };
}

/** Number of trainable parameters of the PruningNet (generators + classifier). */
export function pruningNetParamCount(layout: PruningNetLayout): number {
  return layout.w2Size + layout.totalRows + layout.smallSize;
}
