import {
  BatchIterator,
  computeChannelStats,
  ImagePreprocessor,
  preprocessConfig,
  Rng,
  resolveAugment,
  type Subset,
  sampleAugment,
} from '@metaprune/data';
import { describe, expect, it } from 'vitest';

/** A subset over `count` images of shape `shape` whose bytes are given. */
function subsetOf(
  images: Uint8Array,
  shape: [number, number, number],
  labels?: Uint8Array,
): Subset {
  const count = images.length / (shape[0] * shape[1] * shape[2]);
  return {
    name: 'synthetic',
    source: { images, labels: labels ?? new Uint8Array(count), count },
    imageShape: shape,
    numClasses: 10,
    indices: Uint32Array.from({ length: count }, (_, i) => i),
  };
}

const img3x3 = Uint8Array.from([0, 51, 102, 153, 204, 255, 10, 20, 30]); // 3x3x1
const v = (p: number) => p / 255;

describe('preprocessConfig', () => {
  it('resolves padding, replication and defaults', () => {
    const cfg = preprocessConfig([28, 28, 1], { size: 32, channels: 3, mean: 0.5, std: 0.25 });
    expect(cfg).toEqual({
      inputShape: [28, 28, 1],
      outputShape: [32, 32, 3],
      mean: [0.5],
      std: [0.25],
      resize: 'pad',
      pad: [2, 2, 2, 2],
    });
    expect(preprocessConfig([3, 3, 1], { size: [4, 6] }).pad).toEqual([0, 1, 1, 2]);
    expect(preprocessConfig([32, 32, 3]).resize).toBe('none');
    expect(preprocessConfig([32, 32, 3], { size: 16 }).resize).toBe('bilinear');
    expect(() => preprocessConfig([32, 32, 3], { size: 16, resize: 'pad' })).toThrow(/smaller/);
    expect(() => preprocessConfig([32, 32, 3], { channels: 1 })).toThrow(/3 channels into 1/);
    expect(() => preprocessConfig([32, 32, 3], { mean: [0.5] })).toThrow(/3 values/);
    expect(() => preprocessConfig([32, 32, 3], { std: 0 })).toThrow(/positive/);
    // JSON round trip (it travels in checkpoints and exported models).
    expect(JSON.parse(JSON.stringify(cfg))).toEqual(cfg);
  });
});

describe('ImagePreprocessor', () => {
  it('scales, normalises and zero-pads (padding is a black pixel, then normalised)', () => {
    const pre = new ImagePreprocessor(
      preprocessConfig([3, 3, 1], { size: 5, mean: 0.5, std: 0.5 }),
    );
    const out = new Float32Array(25);
    pre.fill(img3x3, 0, out, 0);
    const n = (p: number) => Math.fround((v(p) - 0.5) / 0.5);
    const pad = n(0);
    expect(pad).toBeCloseTo(-1, 6);
    const expected = [
      [pad, pad, pad, pad, pad],
      [pad, n(0), n(51), n(102), pad],
      [pad, n(153), n(204), n(255), pad],
      [pad, n(10), n(20), n(30), pad],
      [pad, pad, pad, pad, pad],
    ].flat();
    expect([...out]).toEqual(expected);
  });

  it('replicates one channel to three', () => {
    const pre = new ImagePreprocessor(preprocessConfig([3, 3, 1], { channels: 3 }));
    const out = new Float32Array(27);
    pre.fill(img3x3, 0, out, 0);
    for (let p = 0; p < 9; p++) {
      for (let c = 0; c < 3; c++) expect(out[p * 3 + c]).toBe(Math.fround(v(img3x3[p]!)));
    }
  });

  it('normalises each channel with its own statistics', () => {
    const rgb = Uint8Array.from([255, 0, 51, 0, 255, 102]); // 1x2x3
    const pre = new ImagePreprocessor(
      preprocessConfig([1, 2, 3], { mean: [0.5, 0.25, 0], std: [0.5, 0.25, 0.1] }),
    );
    const out = new Float32Array(6);
    pre.fill(rgb, 0, out, 0);
    const want = [1, -1, 2, -1, 3, 4];
    want.forEach((w, i) => {
      expect(out[i]).toBeCloseTo(w, 5);
    });
  });

  it('applies shift and flip as documented: out(y,x) = in(y+dy, W-1-x+dx)', () => {
    const pre = new ImagePreprocessor(preprocessConfig([3, 3, 1]));
    const out = new Float32Array(9);
    pre.fill(img3x3, 0, out, 0, { dy: 1, dx: 0, flip: true });
    // rows 1 and 2 of the image, mirrored, then a zero row.
    expect([...out].map((x) => Math.round(x * 255))).toEqual([255, 204, 153, 30, 20, 10, 0, 0, 0]);
    pre.fill(img3x3, 0, out, 0, { dy: 0, dx: -1, flip: false });
    expect([...out].map((x) => Math.round(x * 255))).toEqual([0, 0, 51, 0, 153, 204, 0, 10, 20]);
    pre.fill(img3x3, 0, out, 0, { dy: 0, dx: 1, flip: true });
    expect([...out].map((x) => Math.round(x * 255))).toEqual([0, 102, 51, 0, 255, 204, 0, 30, 20]);
    pre.fill(img3x3, 0, out, 0, { dy: -1, dx: -1, flip: true });
    expect([...out].map((x) => Math.round(x * 255))).toEqual([0, 0, 0, 51, 0, 0, 204, 153, 0]);
    // Several channels move together.
    const rgb = Uint8Array.from([1, 2, 3, 4, 5, 6]); // 1x2x3
    const pre3 = new ImagePreprocessor(preprocessConfig([1, 2, 3], { size: [1, 3] }));
    const out3 = new Float32Array(9);
    pre3.fill(rgb, 0, out3, 0, { dy: 0, dx: 0, flip: true });
    expect([...out3].map((x) => Math.round(x * 255))).toEqual([4, 5, 6, 1, 2, 3, 0, 0, 0]);
    // Augmentation happens before the padding to the output size.
    const padded = new ImagePreprocessor(preprocessConfig([3, 3, 1], { size: 5 }));
    const out5 = new Float32Array(25);
    padded.fill(img3x3, 0, out5, 0, { dy: 0, dx: 1, flip: false });
    expect([...out5.subarray(5, 10)].map((x) => Math.round(x * 255))).toEqual([0, 51, 102, 0, 0]);
  });

  it('resizes bilinearly like tf.image.resizeBilinear (alignCorners=false, halfPixelCenters=false)', () => {
    // 2x2 -> 4x4: source coordinate = 0.5 * output coordinate, clamped at the far edge.
    const src = Uint8Array.from([0, 100, 200, 40]);
    const pre = new ImagePreprocessor(preprocessConfig([2, 2, 1], { size: 4, resize: 'bilinear' }));
    const out = new Float32Array(16);
    pre.fill(src, 0, out, 0);
    const expected = [
      [0, 50, 100, 100],
      [100, 85, 70, 70],
      [200, 120, 40, 40],
      [200, 120, 40, 40],
    ].flat();
    expect([...out].map((x) => Math.round(x * 255 * 1000) / 1000)).toEqual(expected);
    // Down-sampling 4x4 -> 2x2 picks rows / columns 0 and 2.
    const big = Uint8Array.from({ length: 16 }, (_, i) => i * 10);
    const down = new ImagePreprocessor(preprocessConfig([4, 4, 1], { size: 2 }));
    const o2 = new Float32Array(4);
    down.fill(big, 0, o2, 0);
    expect([...o2].map((x) => Math.round(x * 255))).toEqual([0, 20, 80, 100]);
  });
});

describe('augmentation', () => {
  it('defaults the crop padding to min(h, w) / 8 and draws shifts within it', () => {
    expect(resolveAugment([28, 28, 1])).toEqual({ crop: 3, flip: true });
    expect(resolveAugment([32, 32, 3], { crop: 2, flip: false })).toEqual({ crop: 2, flip: false });
    const rng = new Rng(1);
    const opts = resolveAugment([32, 32, 3]);
    const seen = new Set<number>();
    let flips = 0;
    for (let i = 0; i < 2000; i++) {
      const a = sampleAugment(opts, rng);
      expect(Math.abs(a.dy) <= 4 && Math.abs(a.dx) <= 4).toBe(true);
      seen.add(a.dy);
      if (a.flip) flips++;
    }
    expect(seen.size).toBe(9);
    expect(flips).toBeGreaterThan(900);
    expect(flips).toBeLessThan(1100);
    const none = sampleAugment({ crop: 0, flip: false }, rng);
    expect(none).toEqual({ dy: 0, dx: 0, flip: false });
  });

  it('batches keep their shape, change with the seed and repeat for the same seed', () => {
    const images = Uint8Array.from({ length: 20 * 8 * 8 }, (_, i) => (i * 37) % 256);
    const subset = subsetOf(images, [8, 8, 1]);
    const make = (seed: number, augment: boolean) =>
      new BatchIterator(subset, {
        batchSize: 20,
        shuffle: false,
        seed,
        augment,
        preprocess: { size: 12 },
      });
    const plain = make(0, false).batch(0, 0).images.slice();
    const a = make(5, true).batch(0, 0);
    expect(a.shape).toEqual([20, 12, 12, 1]);
    expect(a.images.length).toBe(20 * 144);
    const a1 = a.images.slice();
    const a2 = make(5, true).batch(0, 0).images.slice();
    const b = make(6, true).batch(0, 0).images.slice();
    const nextEpoch = make(5, true).batch(1, 0).images.slice();
    expect(a2).toEqual(a1);
    expect(b).not.toEqual(a1);
    expect(nextEpoch).not.toEqual(a1);
    expect(a1).not.toEqual(plain);
  });
});

describe('computeChannelStats', () => {
  it('gives per-channel mean and population std in [0, 1] scale', () => {
    // Two 1x2x2 images: channel 0 takes 0, 255, 0, 255; channel 1 is constant 51.
    const images = Uint8Array.from([0, 51, 255, 51, 0, 51, 255, 51]);
    const stats = computeChannelStats(subsetOf(images, [1, 2, 2]));
    expect(stats.mean[0]).toBeCloseTo(0.5, 12);
    expect(stats.std[0]).toBeCloseTo(0.5, 12);
    expect(stats.mean[1]).toBeCloseTo(0.2, 12);
    expect(stats.std[1]).toBe(1); // zero spread -> 1, no division by zero
  });
});
