import type { Activation, Block, Gene, GeneKind, Layer, LayerKind, Width } from './types.js';

interface LayerArgs {
  name: string;
  kind: LayerKind;
  kernel?: number;
  stride?: number;
  in: Width;
  out: Width;
  act?: Activation;
  code: readonly (Width | null)[];
  hidden: number;
}

/** Accumulates genes and blocks while a family walks its layout; tracks spatial size. */
export class NetworkBuilder {
  readonly genes: Gene[] = [];
  readonly blocks: Block[] = [];
  size: number;

  constructor(inputSize: number) {
    this.size = inputSize;
  }

  gene(name: string, kind: GeneKind, max: number): Width {
    const index = this.genes.length;
    this.genes.push({ index, name, kind, max });
    return { max, gene: index };
  }

  static fixed(max: number): Width {
    return { max, gene: null };
  }

  /** A layer reading the current feature map; does not advance the spatial size. */
  layer(a: LayerArgs, inSize = this.size): Layer {
    const stride = a.stride ?? 1;
    return {
      name: a.name,
      kind: a.kind,
      kernel: a.kernel ?? 1,
      stride,
      in: a.in,
      out: a.kind === 'depthwise' ? a.in : a.out,
      inSize: a.kind === 'fc' ? 1 : inSize,
      outSize: a.kind === 'fc' ? 1 : Math.ceil(inSize / stride),
      bn: a.kind !== 'fc',
      act: a.act ?? 'none',
      code: a.code.map((w) => (w === null ? null : w.gene)),
      hidden: a.hidden,
    };
  }

  /** A main-path chain: each layer reads the previous one's output size. */
  chain(args: LayerArgs[]): Layer[] {
    const out: Layer[] = [];
    let size = this.size;
    for (const a of args) {
      const l = this.layer(a, size);
      out.push(l);
      size = l.outSize;
    }
    return out;
  }

  push(
    block: Omit<Block, 'actAfterAdd' | 'poolBefore' | 'poolAfter' | 'shortcut'> & Partial<Block>,
  ) {
    const full: Block = {
      shortcut: 'none',
      actAfterAdd: 'none',
      poolBefore: 'none',
      poolAfter: 'none',
      ...block,
    };
    this.blocks.push(full);
    const last = full.layers[full.layers.length - 1];
    if (last && last.kind !== 'fc') this.size = last.outSize;
    if (full.poolAfter === 'max3x3s2') this.size = Math.ceil(this.size / 2);
  }

  layers(): Layer[] {
    const all: Layer[] = [];
    for (const b of this.blocks) {
      all.push(...b.layers);
      if (typeof b.shortcut === 'object') all.push(b.shortcut);
    }
    return all;
  }
}

/** Python's round(): halves go to the even neighbour (the reference rounds widths this way). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (Math.abs(d - 0.5) < 1e-9) return f % 2 === 0 ? f : f + 1;
  return Math.round(x);
}

/** MobileNet's rule: round to a multiple of `divisor`, never more than 10% below `v`. */
export function makeDivisible(v: number, divisor = 8): number {
  const n = Math.max(
    divisor,
    Math.floor(v + divisor / 2) - (Math.floor(v + divisor / 2) % divisor),
  );
  return n < 0.9 * v ? n + divisor : n;
}
