import { NetworkBuilder } from './builder.js';
import type { Network, NetworkSpec, Width } from './types.js';

const STEM = 64;
const STAGES = [
  { blocks: 3, out: 256 },
  { blocks: 4, out: 512 },
  { blocks: 6, out: 1024 },
  { blocks: 3, out: 2048 },
];
const HIDDEN_SINGLE = 32;
const HIDDEN_BLOCK = 32;

/**
 * ResNet-50 v1.5 (stride on the 3x3 conv). Genes: the stem, one per stage output (tied by
 * the residual adds; the last stage fixed at full width when `lastStageFull`), and one
 * bottleneck (mid) width per block — the reference's layout.
 */
export function resnet50(spec: NetworkSpec): Network {
  const w = (c: number) => Math.max(1, Math.floor(c * spec.width + 1e-9));
  const small = spec.preset === 'small';
  const b = new NetworkBuilder(spec.inputSize);
  const input = NetworkBuilder.fixed(spec.inputChannels);

  const stem = b.gene('stem.out', 'stem', w(STEM));
  b.push({
    name: 'stem',
    kind: 'stem',
    layers: b.chain([
      small
        ? {
            name: 'stem.conv',
            kind: 'conv',
            kernel: 3,
            stride: 1,
            in: input,
            out: stem,
            act: 'relu',
            code: [stem],
            hidden: HIDDEN_SINGLE,
          }
        : {
            name: 'stem.conv',
            kind: 'conv',
            kernel: 7,
            stride: 2,
            in: input,
            out: stem,
            act: 'relu',
            code: [stem],
            hidden: HIDDEN_SINGLE,
          },
    ]),
    poolAfter: small ? 'none' : 'max3x3s2',
  });

  const outs: Width[] = STAGES.map((s, i) =>
    i === STAGES.length - 1 && spec.lastStageFull
      ? NetworkBuilder.fixed(w(s.out))
      : b.gene(`stage${i + 1}.out`, 'stage', w(s.out)),
  );
  let cur: Width = stem;
  let block = 0;
  STAGES.forEach((stage, si) => {
    const out = outs[si] as Width;
    for (let r = 0; r < stage.blocks; r++) {
      block++;
      const name = `block${block}`;
      const stride = r === 0 && si > 0 ? 2 : 1;
      const mid = b.gene(`${name}.mid`, 'mid', w(stage.out / 4));
      const code = [mid, cur, out];
      const layers = b.chain([
        {
          name: `${name}.conv1`,
          kind: 'conv',
          in: cur,
          out: mid,
          act: 'relu',
          code,
          hidden: HIDDEN_BLOCK,
        },
        {
          name: `${name}.conv2`,
          kind: 'conv',
          kernel: 3,
          stride,
          in: mid,
          out: mid,
          act: 'relu',
          code,
          hidden: HIDDEN_BLOCK,
        },
        {
          name: `${name}.conv3`,
          kind: 'conv',
          in: mid,
          out,
          act: 'none',
          code,
          hidden: HIDDEN_BLOCK,
        },
      ]);
      const shortcut =
        r === 0
          ? b.layer({
              name: `${name}.downsample`,
              kind: 'conv',
              stride,
              in: cur,
              out,
              act: 'none',
              code,
              hidden: HIDDEN_BLOCK,
            })
          : ('identity' as const);
      b.push({ name, kind: 'bottleneck', layers, shortcut, actAfterAdd: 'relu' });
      cur = out;
    }
  });

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
        hidden: HIDDEN_SINGLE,
      }),
    ],
  });
  return { spec, genes: b.genes, blocks: b.blocks, layers: b.layers() };
}
