import { NetworkBuilder } from './builder.js';
import type { Network, NetworkSpec } from './types.js';

// MobileNet V1 (Howard et al. 2017): stem conv, then 13 depthwise-separable blocks.
const BASE = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024];
const STRIDES_IMAGENET = [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1];
// Small inputs (28/32 px): stem stride 1 and the first downsampling kept at stride 1.
const STRIDES_SMALL = [1, 1, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1];
const HIDDEN = 32;

/** No residual adds tie widths here, so every pointwise output width is its own gene. */
export function mobilenetV1(spec: NetworkSpec): Network {
  const b = new NetworkBuilder(spec.inputSize);
  const widths = BASE.map((c) => Math.max(1, Math.floor(c * spec.width + 1e-9)));
  const small = spec.preset === 'small';
  const input = NetworkBuilder.fixed(spec.inputChannels);

  let cur = b.gene('stem.out', 'stem', widths[0] as number);
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
        act: 'relu',
        code: [cur],
        hidden: HIDDEN,
      },
    ]),
  });
  const strides = small ? STRIDES_SMALL : STRIDES_IMAGENET;
  for (let i = 1; i < widths.length; i++) {
    const out = b.gene(`block${i}.out`, 'stage', widths[i] as number);
    b.push({
      name: `block${i}`,
      kind: 'separable',
      layers: b.chain([
        {
          name: `block${i}.dw`,
          kind: 'depthwise',
          kernel: 3,
          stride: strides[i - 1] as number,
          in: cur,
          out: cur,
          act: 'relu',
          code: [cur],
          hidden: HIDDEN,
        },
        {
          name: `block${i}.pw`,
          kind: 'conv',
          in: cur,
          out,
          act: 'relu',
          code: [cur, out],
          hidden: HIDDEN,
        },
      ]),
    });
    cur = out;
  }
  b.push({
    name: 'classifier',
    kind: 'classifier',
    poolBefore: 'global-avg',
    layers: [
      b.layer({
        name: 'classifier.fc',
        kind: 'fc',
        in: cur,
        out: NetworkBuilder.fixed(spec.numClasses),
        code: [cur],
        hidden: HIDDEN,
      }),
    ],
  });
  return { spec, genes: b.genes, blocks: b.blocks, layers: b.layers() };
}
