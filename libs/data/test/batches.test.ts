import { BatchIterator, batches, countBatches, type Subset } from '@metaprune/data';
import { describe, expect, it } from 'vitest';

// 103 images of 2x2x1 whose every pixel encodes the image index (mod 256), labels = index % 10,
// and a subset that leaves out every 7th image.
const COUNT = 103;
const images = new Uint8Array(COUNT * 4);
for (let i = 0; i < COUNT; i++) images.fill(i % 256, i * 4, i * 4 + 4);
const labels = Uint8Array.from({ length: COUNT }, (_, i) => i % 10);
const kept = Array.from({ length: COUNT }, (_, i) => i).filter((i) => i % 7 !== 3);
const subset: Subset = {
  name: 'synthetic',
  source: { images, labels, count: COUNT },
  imageShape: [2, 2, 1],
  numClasses: 10,
  indices: Uint32Array.from(kept),
};

function collect(it: BatchIterator, epoch: number, fromStep = 0) {
  const out: { indices: number[]; labels: number[]; images: number[] }[] = [];
  for (const b of it.epoch(epoch, fromStep)) {
    out.push({ indices: [...b.indices], labels: [...b.labels], images: [...b.images] });
  }
  return out;
}

describe('BatchIterator', () => {
  it('counts batches per epoch', () => {
    expect(countBatches(88, 10)).toBe(9);
    expect(countBatches(88, 10, true)).toBe(8);
    expect(countBatches(80, 10, true)).toBe(8);
    expect(new BatchIterator(subset, { batchSize: 10 }).batchesPerEpoch).toBe(
      Math.ceil(kept.length / 10),
    );
  });

  it('visits every index of the subset exactly once per epoch, with its own label and pixels', () => {
    const it1 = new BatchIterator(subset, { batchSize: 10, seed: 4 });
    for (const epoch of [0, 1, 2]) {
      const got = collect(it1, epoch);
      expect(got.length).toBe(it1.batchesPerEpoch);
      expect(got.at(-1)!.indices.length).toBe(kept.length % 10 || 10);
      const all = got.flatMap((b) => b.indices);
      expect([...all].sort((a, b) => a - b)).toEqual(kept);
      for (const b of got) {
        b.indices.forEach((idx, k) => {
          expect(b.labels[k]).toBe(idx % 10);
          expect(b.images.slice(k * 4, k * 4 + 4)).toEqual(
            new Array(4).fill(Math.fround((idx % 256) / 255)),
          );
        });
      }
    }
  });

  it('shuffles differently per epoch and per seed, deterministically', () => {
    const order = (seed: number, epoch: number) =>
      collect(new BatchIterator(subset, { batchSize: 16, seed }), epoch).flatMap((b) => b.indices);
    expect(order(1, 0)).toEqual(order(1, 0));
    expect(order(1, 0)).not.toEqual(order(1, 1));
    expect(order(1, 0)).not.toEqual(order(2, 0));
    expect(order(1, 0)).not.toEqual(kept);
    // No shuffle: the subset's own order.
    const plain = collect(new BatchIterator(subset, { batchSize: 16, shuffle: false }), 3);
    expect(plain.flatMap((b) => b.indices)).toEqual(kept);
  });

  it('resumes identically from (epoch, step), whatever was asked before', () => {
    const opts = {
      batchSize: 8,
      seed: 11,
      augment: { crop: 1 },
      preprocess: { size: 4, mean: 0.3, std: 0.2 },
    };
    const full = collect(new BatchIterator(subset, opts), 2);
    // A fresh iterator (as after a restart), resumed at step 5 of epoch 2.
    const resumed = collect(new BatchIterator(subset, opts), 2, 5);
    expect(resumed).toEqual(full.slice(5));
    // The generator form, and random access after other epochs were visited.
    const viaFn: number[][] = [];
    for (const b of batches(subset, { ...opts, epoch: 2, step: 5 })) viaFn.push([...b.indices]);
    expect(viaFn).toEqual(full.slice(5).map((b) => b.indices));
    const it = new BatchIterator(subset, opts);
    collect(it, 0);
    const b = it.batch(2, 7);
    expect([...b.images]).toEqual(full[7]!.images);
    expect([...b.labels]).toEqual(full[7]!.labels);
  });

  it('drops the last partial batch when asked and reuses one buffer', () => {
    const it = new BatchIterator(subset, { batchSize: 10, dropLast: true });
    const got = [...it.epoch(0)];
    expect(got.length).toBe(Math.floor(kept.length / 10));
    expect(got.every((b) => b.size === 10 && b.shape[0] === 10)).toBe(true);
    // Views of one reused buffer: a caller must copy a batch before asking for the next.
    expect(got[0]!.images.buffer).toBe(got[1]!.images.buffer);
    const covered = new Set<number>();
    for (const b of it.epoch(0)) for (const i of b.indices) covered.add(i);
    expect(covered.size).toBe(Math.floor(kept.length / 10) * 10);
  });

  it('writes into caller buffers and validates its arguments', () => {
    const it = new BatchIterator(subset, { batchSize: 4, preprocess: { channels: 3 } });
    const images = new Float32Array(4 * 2 * 2 * 3);
    const lab = new Int32Array(4);
    const b = it.batch(0, 1, { images, labels: lab });
    expect(b.images.buffer).toBe(images.buffer);
    expect(b.shape).toEqual([4, 2, 2, 3]);
    expect([...lab]).toEqual([...b.indices].map((i) => i % 10));
    expect(() => it.batch(0, it.batchesPerEpoch)).toThrow(RangeError);
    expect(() => it.batch(-1, 0)).toThrow(RangeError);
    expect(() => new BatchIterator(subset, { batchSize: 0 })).toThrow(RangeError);
    expect(() => it.batch(0, 0, { images: new Float32Array(3), labels: lab })).toThrow(RangeError);
  });
});
