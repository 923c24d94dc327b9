import { type Encoding, widthOf } from './encoding.js';
import type { Layer, Network } from './networks/types.js';
import { channelsAt, SCALE_COUNT } from './scales.js';

export interface LayerCost {
  readonly name: string;
  readonly kind: Layer['kind'];
  readonly kernel: number;
  readonly stride: number;
  readonly cin: number;
  readonly cout: number;
  readonly inSize: number;
  readonly outSize: number;
  /** Multiply-accumulates for one image. */
  readonly macs: number;
  /** Weights, plus batch-norm scale and shift (2 per channel) or the classifier bias. */
  readonly params: number;
}

export interface Cost {
  readonly macs: number;
  readonly params: number;
}

function costOf(layer: Layer, cin: number, cout: number): Cost {
  const area = layer.outSize * layer.outSize;
  const k2 = layer.kernel * layer.kernel;
  switch (layer.kind) {
    case 'depthwise':
      return { macs: cin * k2 * area, params: cin * k2 + 2 * cin };
    case 'fc':
      return { macs: cin * cout, params: cin * cout + cout };
    default:
      return { macs: cin * cout * k2 * area, params: cin * cout * k2 + 2 * cout };
  }
}

/** Per-layer channels, MACs and parameters of an encoding (for reports and tables). */
export function layerCosts(net: Network, enc: Encoding): LayerCost[] {
  return net.layers.map((l) => {
    const cin = widthOf(l.in, enc);
    const cout = widthOf(l.out, enc);
    const c = costOf(l, cin, cout);
    return {
      name: l.name,
      kind: l.kind,
      kernel: l.kernel,
      stride: l.stride,
      cin,
      cout,
      inSize: l.inSize,
      outSize: l.outSize,
      ...c,
    };
  });
}

/**
 * Analytic MACs/params of encodings, precompiled: per layer a coefficient and the two
 * genes it depends on, per gene a table of channels for every scale choice. Evaluating an
 * encoding is then a few multiply-adds per layer, no allocation.
 */
export class CostModel {
  private readonly n: number;
  private readonly kind: Uint8Array; // 0 conv, 1 depthwise, 2 fc
  private readonly macCoef: Float64Array;
  private readonly paramCoef: Float64Array;
  private readonly inGene: Int32Array;
  private readonly outGene: Int32Array;
  private readonly inFixed: Float64Array;
  private readonly outFixed: Float64Array;
  /** channels[gene * SCALE_COUNT + id] */
  private readonly channels: Float64Array;

  constructor(readonly net: Network) {
    const layers = net.layers;
    this.n = layers.length;
    this.kind = new Uint8Array(this.n);
    this.macCoef = new Float64Array(this.n);
    this.paramCoef = new Float64Array(this.n);
    this.inGene = new Int32Array(this.n);
    this.outGene = new Int32Array(this.n);
    this.inFixed = new Float64Array(this.n);
    this.outFixed = new Float64Array(this.n);
    layers.forEach((l, i) => {
      this.kind[i] = l.kind === 'conv' ? 0 : l.kind === 'depthwise' ? 1 : 2;
      this.macCoef[i] = l.kind === 'fc' ? 1 : l.kernel * l.kernel * l.outSize * l.outSize;
      this.paramCoef[i] = l.kind === 'fc' ? 1 : l.kernel * l.kernel;
      this.inGene[i] = l.in.gene ?? -1;
      this.outGene[i] = l.out.gene ?? -1;
      this.inFixed[i] = l.in.max;
      this.outFixed[i] = l.out.max;
    });
    this.channels = new Float64Array(net.genes.length * SCALE_COUNT);
    for (const g of net.genes) {
      for (let s = 0; s < SCALE_COUNT; s++)
        this.channels[g.index * SCALE_COUNT + s] = channelsAt(g.max, s);
    }
  }

  macs(enc: Encoding): number {
    let total = 0;
    for (let i = 0; i < this.n; i++) {
      const gi = this.inGene[i] as number;
      const cin =
        gi < 0
          ? (this.inFixed[i] as number)
          : (this.channels[gi * SCALE_COUNT + (enc[gi] as number)] as number);
      if (this.kind[i] === 1) {
        total += (this.macCoef[i] as number) * cin;
      } else {
        const go = this.outGene[i] as number;
        const cout =
          go < 0
            ? (this.outFixed[i] as number)
            : (this.channels[go * SCALE_COUNT + (enc[go] as number)] as number);
        total += (this.macCoef[i] as number) * cin * cout;
      }
    }
    return total;
  }

  params(enc: Encoding): number {
    let total = 0;
    for (let i = 0; i < this.n; i++) {
      const gi = this.inGene[i] as number;
      const cin =
        gi < 0
          ? (this.inFixed[i] as number)
          : (this.channels[gi * SCALE_COUNT + (enc[gi] as number)] as number);
      const k = this.kind[i];
      if (k === 1) {
        total += (this.paramCoef[i] as number) * cin + 2 * cin;
      } else {
        const go = this.outGene[i] as number;
        const cout =
          go < 0
            ? (this.outFixed[i] as number)
            : (this.channels[go * SCALE_COUNT + (enc[go] as number)] as number);
        total += (this.paramCoef[i] as number) * cin * cout + (k === 2 ? cout : 2 * cout);
      }
    }
    return total;
  }

  cost(enc: Encoding): Cost {
    return { macs: this.macs(enc), params: this.params(enc) };
  }
}

const models = new WeakMap<Network, CostModel>();

/** The (cached) compiled cost model of a network. */
export function costModel(net: Network): CostModel {
  let m = models.get(net);
  if (!m) {
    m = new CostModel(net);
    models.set(net, m);
  }
  return m;
}

export function countCost(net: Network, enc: Encoding): Cost {
  return costModel(net).cost(enc);
}
