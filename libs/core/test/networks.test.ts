import { describe, expect, it } from 'vitest';
import {
  buildNetwork,
  channelsAt,
  geneChannels,
  parseEncoding,
  SCALES,
  uniformEncoding,
  ValidationError,
  validateEncoding,
  widthOf,
} from '../src/index.js';

describe('scales', () => {
  it('are 0.10, 0.13, ..., 1.00', () => {
    expect(SCALES).toHaveLength(31);
    expect(SCALES[0]).toBeCloseTo(0.1);
    expect(SCALES[30]).toBe(1);
    expect(SCALES[1]! - SCALES[0]!).toBeCloseTo(0.03);
  });
  it('channels follow int(max * scale) of the reference, never below 1', () => {
    expect(channelsAt(64, 30)).toBe(64);
    expect(channelsAt(100, 0)).toBe(10);
    expect(channelsAt(22, 0)).toBe(2);
    expect(channelsAt(3, 0)).toBe(1);
  });
});

describe('gene layout (DESIGN 1.1)', () => {
  it('MobileNetV2: 8 stage genes shared by repeats 1,1,2,3,4,3,3,1 and 16 mid genes', () => {
    const net = buildNetwork({ family: 'mobilenetv2', preset: 'small', width: 0.5 });
    expect(net.genes.filter((g) => g.kind !== 'mid')).toHaveLength(8);
    expect(net.genes.filter((g) => g.kind === 'mid')).toHaveLength(16);
    const blocks = net.blocks.filter((b) => b.kind === 'inverted-residual');
    expect(blocks).toHaveLength(17);
    // output widths of the benchmark network
    const outs = [
      net.blocks[0]!.layers[0]!.out.max,
      ...blocks.map((b) => b.layers.at(-1)!.out.max),
    ];
    expect(outs).toEqual([
      22, 11, 16, 16, 22, 22, 22, 44, 44, 44, 44, 66, 66, 66, 112, 112, 112, 224,
    ]);
    // every identity residual adds widths driven by the same gene
    for (const b of blocks.filter((x) => x.shortcut === 'identity')) {
      expect(b.layers[0]!.in.gene).toBe(b.layers.at(-1)!.out.gene);
    }
    expect(blocks.filter((b) => b.shortcut === 'identity')).toHaveLength(10);
  });

  it('ResNet-50: stem + 3 stage genes + 16 mids, last stage fixed by default; optional gene', () => {
    const ref = buildNetwork({ family: 'resnet50' });
    expect(ref.genes).toHaveLength(20);
    const free = buildNetwork({ family: 'resnet50', lastStageFull: false });
    expect(free.genes).toHaveLength(21);
  });

  it('MobileNet V1: one gene per width slot (no residual ties)', () => {
    expect(buildNetwork({ family: 'mobilenetv1' }).genes).toHaveLength(14);
  });

  it('small presets downsample 32x32 to 4x4 before pooling', () => {
    for (const family of ['mobilenetv1', 'mobilenetv2', 'resnet50']) {
      const net = buildNetwork({ family, preset: 'small' });
      const lastConv = net.layers.filter((l) => l.kind !== 'fc').at(-1)!;
      expect(lastConv.outSize, family).toBe(4);
    }
  });
});

describe('encodings', () => {
  const net = buildNetwork({ family: 'mobilenetv2', preset: 'small', width: 0.5 });
  it('uniform encodings pick the largest scale not above the target', () => {
    expect(uniformEncoding(net, 0.5)).toEqual(net.genes.map(() => 13)); // 0.49
    expect(uniformEncoding(net, 1)).toEqual(net.genes.map(() => 30));
    expect(() => uniformEncoding(net, 0.05)).toThrow(
      /uniform: 0.05 is out of range; allowed 0.1..1/,
    );
  });
  it('validation names the gene and the allowed range', () => {
    const bad = net.genes.map(() => 3);
    bad[8] = 31;
    expect(() => validateEncoding(net, bad)).toThrowError(ValidationError);
    expect(() => validateEncoding(net, bad)).toThrow(
      /encoding\[8\]: gene "block2.mid" = 31 is out of range; allowed integers 0..30/,
    );
    expect(() => validateEncoding(net, [1, 2])).toThrow(/expected 24 genes/);
    expect(() => parseEncoding(net, net.genes.map(() => 'x').join(','))).toThrow(/encoding\[0\]/);
  });
  it('decodes to channels per gene and per layer', () => {
    const enc = parseEncoding(net, net.genes.map((_, i) => String(i % 31)).join(','));
    expect(geneChannels(net, enc)[0]).toBe(channelsAt(22, 0));
    const stem = net.layers[0]!;
    expect(widthOf(stem.out, enc)).toBe(2);
    expect(widthOf(stem.in, enc)).toBe(3);
  });
  it('rejects unknown networks, presets and widths naming the field', () => {
    expect(() => buildNetwork({ family: 'vgg' })).toThrow(
      /network: unknown network "vgg"; allowed mobilenetv1, mobilenetv2, resnet50/,
    );
    expect(() => buildNetwork({ family: 'resnet50', preset: 'x' })).toThrow(/preset:/);
    expect(() => buildNetwork({ family: 'resnet50', width: 3 })).toThrow(
      /width: 3 is out of range; allowed 0.1..2/,
    );
  });
});
