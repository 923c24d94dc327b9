import { describe, expect, it } from 'vitest';
import {
  buildNetwork,
  costModel,
  countCost,
  fullEncoding,
  layerCosts,
  type NetworkSpecInput,
  uniformEncoding,
} from '../src/index.js';

const within = (actual: number, published: number, tol = 0.02) =>
  expect(Math.abs(actual - published) / published).toBeLessThanOrEqual(tol);

function macsOf(spec: NetworkSpecInput, uniform?: number): number {
  const net = buildNetwork(spec);
  return countCost(net, uniform === undefined ? fullEncoding(net) : uniformEncoding(net, uniform))
    .macs;
}

// Published multiply-accumulates (conv + FC, 224x224 input) from DESIGN.md.
describe('MACs match published figures within 2%', () => {
  it('ResNet-50 4.1G', () => within(macsOf({ family: 'resnet50' }), 4.1e9));
  it('ResNet-50 width multiplier 0.75: 2.3G', () =>
    within(macsOf({ family: 'resnet50', width: 0.75 }), 2.3e9));
  it('ResNet-50 uniform 0.5 in the reference search space (last stage full): 1.1G', () =>
    within(macsOf({ family: 'resnet50' }, 0.5), 1.1e9));
  it('MobileNet V1 569M / 0.75x 325M / 0.5x 149M / 0.25x 41M', () => {
    within(macsOf({ family: 'mobilenetv1' }), 569e6);
    within(macsOf({ family: 'mobilenetv1', width: 0.75 }), 325e6);
    within(macsOf({ family: 'mobilenetv1', width: 0.5 }), 149e6);
    within(macsOf({ family: 'mobilenetv1', width: 0.25 }), 41e6);
  });
  it('MobileNet V2 1.0x 300M and 1.4x 585M', () => {
    within(macsOf({ family: 'mobilenetv2', layout: 'standard' }), 300e6);
    within(macsOf({ family: 'mobilenetv2', layout: 'standard', width: 1.4 }), 585e6);
  });
  it('benchmark network (small MobileNetV2, width 0.5) is about 45M MACs', () => {
    within(macsOf({ family: 'mobilenetv2', preset: 'small', width: 0.5 }), 45e6, 0.05);
  });
});

describe('parameter counts match published figures', () => {
  it('ResNet-50 25.6M, MobileNet V1 4.2M, MobileNet V2 3.5M', () => {
    const p = (s: NetworkSpecInput) => {
      const n = buildNetwork(s);
      return countCost(n, fullEncoding(n)).params;
    };
    within(p({ family: 'resnet50' }), 25.56e6);
    within(p({ family: 'mobilenetv1' }), 4.23e6);
    within(p({ family: 'mobilenetv2', layout: 'standard' }), 3.5e6);
  });
});

describe('analytic counter', () => {
  it('agrees with a hand-worked layer: ResNet-50 stem 7x7/2 3->64 at 224 is 118.0M MACs', () => {
    const net = buildNetwork({ family: 'resnet50' });
    const stem = layerCosts(net, fullEncoding(net))[0]!;
    expect(stem).toMatchObject({ name: 'stem.conv', cin: 3, cout: 64, outSize: 112 });
    expect(stem.macs).toBe(3 * 64 * 49 * 112 * 112);
  });

  it('the compiled model equals the per-layer sum for random encodings of every family', () => {
    for (const family of ['mobilenetv1', 'mobilenetv2', 'resnet50']) {
      for (const preset of ['imagenet', 'small']) {
        const net = buildNetwork({ family, preset });
        for (let t = 0; t < 20; t++) {
          const enc = net.genes.map((_, i) => (i * 7 + t * 13) % 31);
          const layers = layerCosts(net, enc);
          const c = costModel(net).cost(enc);
          expect(c.macs).toBe(layers.reduce((s, l) => s + l.macs, 0));
          expect(c.params).toBe(layers.reduce((s, l) => s + l.params, 0));
        }
      }
    }
  });

  it('pruning a gene never increases MACs', () => {
    const net = buildNetwork({ family: 'mobilenetv2', preset: 'small', width: 0.5 });
    const full = fullEncoding(net);
    const base = countCost(net, full).macs;
    for (let g = 0; g < net.genes.length; g++) {
      const enc = [...full];
      enc[g] = 0;
      expect(countCost(net, enc).macs).toBeLessThan(base);
    }
  });
});
