import { makeDivisible, NetworkBuilder, roundHalfEven } from './builder.js';
import type { Network, NetworkSpec, Width } from './types.js';

// Stage output widths (stem, then the 7 inverted-residual stages) and block counts.
const METAPRUNING = [44, 22, 33, 44, 88, 132, 224, 448];
const STANDARD = [32, 16, 24, 32, 64, 96, 160, 320];
const REPEATS = [1, 1, 2, 3, 4, 3, 3, 1];
const HEAD = 1280;
// Per block (1..17) strides; small inputs keep the stem and the first downsampling at 1.
const STRIDES_IMAGENET = [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1];
const STRIDES_SMALL = [1, 1, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1];
const HIDDEN_SINGLE = 32;
const HIDDEN_BLOCK = 64;

function stageWidths(spec: NetworkSpec): { stages: number[]; head: number } {
  if (spec.layout === 'standard') {
    return {
      stages: STANDARD.map((c) => makeDivisible(c * spec.width)),
      head: spec.width > 1 ? makeDivisible(HEAD * spec.width) : HEAD,
    };
  }
  // The reference PruningNet: max(8, round(c * width)), head fixed at 1280.
  return { stages: METAPRUNING.map((c) => Math.max(8, roundHalfEven(c * spec.width))), head: HEAD };
}

/**
 * MobileNetV2 (Sandler et al. 2018). Genes: one per stage output (blocks of a stage are
 * tied by residual adds), one mid (expansion) width per block with expansion 6.
 */
export function mobilenetV2(spec: NetworkSpec): Network {
  const { stages, head } = stageWidths(spec);
  const small = spec.preset === 'small';
  const strides = small ? STRIDES_SMALL : STRIDES_IMAGENET;
  const b = new NetworkBuilder(spec.inputSize);
  const input = NetworkBuilder.fixed(spec.inputChannels);

  let cur = b.gene('stem.out', 'stem', stages[0] as number);
  b.push({
    name: 'stem',
    kind: 'stem',
    layers: b.chain([
      {
        name: 'stem.conv',
        kind: 'conv',
        kernel: 3,
        stride: small ? 1 : 2,
        in: input,
        out: cur,
        act: 'relu6',
        code: [cur],
        hidden: HIDDEN_SINGLE,
      },
    ]),
  });

  // Stage genes first, then the mids: the reference's order (stage ids, then mid ids).
  const outs = stages.slice(1).map((c, i) => b.gene(`stage${i + 1}.out`, 'stage', c));
  let block = 0;
  for (let s = 1; s < stages.length; s++) {
    const out = outs[s - 1] as Width;
    for (let r = 0; r < (REPEATS[s] as number); r++) {
      block++;
      const stride = strides[block - 1] as number;
      const name = `block${block}`;
      const expansion = block === 1 ? 1 : 6;
      // Expansion 1 has no expand conv: the depthwise width is the input width itself.
      const mid: Width = expansion === 1 ? cur : b.gene(`${name}.mid`, 'mid', cur.max * expansion);
      const code = [mid, cur, out];
      const layers = b.chain([
        ...(expansion === 1
          ? []
          : [
              {
                name: `${name}.expand`,
                kind: 'conv' as const,
                in: cur,
                out: mid,
                act: 'relu6' as const,
                code,
                hidden: HIDDEN_BLOCK,
              },
            ]),
        {
          name: `${name}.dw`,
          kind: 'depthwise',
          kernel: 3,
          stride,
          in: mid,
          out: mid,
          act: 'relu6',
          code,
          hidden: HIDDEN_BLOCK,
        },
        {
          name: `${name}.project`,
          kind: 'conv',
          in: mid,
          out,
          act: 'none',
          code,
          hidden: HIDDEN_BLOCK,
        },
      ]);
      const residual = stride === 1 && cur.gene === out.gene && cur.max === out.max;
      b.push({ name, kind: 'inverted-residual', layers, shortcut: residual ? 'identity' : 'none' });
      cur = out;
    }
  }

  const headWidth = NetworkBuilder.fixed(head);
  b.push({
    name: 'head',
    kind: 'head',
    layers: b.chain([
      {
        name: 'head.conv',
        kind: 'conv',
        in: cur,
        out: headWidth,
        act: 'relu6',
        code: [cur],
        hidden: HIDDEN_SINGLE,
      },
    ]),
  });
  b.push({
    name: 'classifier',
    kind: 'classifier',
    poolBefore: 'global-avg',
    layers: [
      b.layer({
        name: 'classifier.fc',
        kind: 'fc',
        in: headWidth,
        out: NetworkBuilder.fixed(spec.numClasses),
        code: [],
        hidden: HIDDEN_SINGLE,
      }),
    ],
  });
  return { spec, genes: b.genes, blocks: b.blocks, layers: b.layers() };
}
