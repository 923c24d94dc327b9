import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  BatchIterator,
  classCounts,
  computeChannelStats,
  type Dataset,
  FASHION_MNIST_DIR,
  loadDataset,
  splitTrainVal,
} from '@metaprune/data';
import { beforeAll, describe, expect, it } from 'vitest';

// Real data: Debian's dataset-fashion-mnist, loaded once for the whole file.
let ds: Dataset;
let loadMs = 0;
beforeAll(async () => {
  const t = performance.now();
  ds = await loadDataset({ name: 'fashion-mnist' });
  loadMs = performance.now() - t;
  console.log(`fashion-mnist loaded in ${loadMs.toFixed(0)} ms`);
});

describe('Fashion-MNIST', () => {
  it('has 60000 train / 10000 test images of 28x28x1 in 10 balanced classes', () => {
    expect(ds.name).toBe('fashion-mnist');
    expect(ds.imageShape).toEqual([28, 28, 1]);
    expect(ds.classNames.length).toBe(10);
    expect(ds.classNames[9]).toBe('Ankle boot');
    expect(ds.train.count).toBe(60000);
    expect(ds.test.count).toBe(10000);
    expect(ds.train.images.length).toBe(60000 * 784);
    expect(ds.test.images.length).toBe(10000 * 784);
    const train = new Array<number>(10).fill(0);
    for (const l of ds.train.labels) train[l]!++;
    expect(train).toEqual(new Array(10).fill(6000));
    const test = new Array<number>(10).fill(0);
    for (const l of ds.test.labels) test[l]!++;
    expect(test).toEqual(new Array(10).fill(1000));
    expect(ds.source!.dir).toBe(FASHION_MNIST_DIR);
  });

  it('matches the raw files byte for byte (first test image, checked independently)', () => {
    const rawImages = gunzipSync(
      readFileSync(join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz')),
    );
    const rawLabels = gunzipSync(
      readFileSync(join(FASHION_MNIST_DIR, 't10k-labels-idx1-ubyte.gz')),
    );
    expect(rawImages.readUInt32BE(0)).toBe(2051);
    const first = rawImages.subarray(16, 16 + 784);
    expect(ds.test.labels[0]).toBe(rawLabels[8]); // label of the first test image
    expect(ds.test.labels[0]).toBe(9); // an ankle boot
    expect(Buffer.from(ds.test.images.subarray(0, 784)).equals(first)).toBe(true);
    // A hand-checked pixel: row 12, column 14 of that boot is part of the shoe.
    expect(ds.test.images[12 * 28 + 14]).toBe(first[12 * 28 + 14]);
    expect(ds.test.images[0]).toBe(0); // the background corner is black
    const last = rawImages.subarray(16 + 9999 * 784);
    expect(Buffer.from(ds.test.images.subarray(9999 * 784)).equals(last)).toBe(true);
  });

  it('splits train into disjoint, stratified, seeded sub-train / sub-val', () => {
    const a = splitTrainVal(ds, { seed: 1 });
    expect(a.valPerClass).toBe(500);
    expect(a.train.indices.length).toBe(55000);
    expect(a.val.indices.length).toBe(5000);
    expect([...classCounts(a.val)]).toEqual(new Array(10).fill(500));
    expect([...classCounts(a.train)]).toEqual(new Array(10).fill(5500));
    const seen = new Uint8Array(60000);
    for (const i of a.train.indices) seen[i]! += 1;
    for (const i of a.val.indices) seen[i]! += 1;
    expect(seen.every((x) => x === 1)).toBe(true); // disjoint and covering
    // Deterministic for a seed, different for another.
    const again = splitTrainVal(ds, { seed: 1 });
    expect(again.val.indices).toEqual(a.val.indices);
    const other = splitTrainVal(ds, { seed: 2 });
    const overlap = other.val.indices.filter((i) => a.val.indices.includes(i)).length;
    expect(overlap).toBeLessThan(1000); // ~5000 * 5000/60000 = 417 expected by chance
    // The test set is untouched.
    expect(a.test.source).toBe(ds.test);
    expect(a.test.indices.length).toBe(10000);
    // The paper's 50 images per class.
    const small = splitTrainVal(ds, { valPerClass: 50, seed: 1 });
    expect([...classCounts(small.val)]).toEqual(new Array(10).fill(50));
    expect(() => splitTrainVal(ds, { valPerClass: 6000 })).toThrow(
      /more than 6000 images of class 0/,
    );
  });

  it('normalises sub-train to mean ~0 and std ~1', () => {
    const { train, val } = splitTrainVal(ds);
    const stats = computeChannelStats(train);
    expect(stats.mean[0]).toBeGreaterThan(0.25);
    expect(stats.mean[0]).toBeLessThan(0.32);
    expect(stats.std[0]).toBeGreaterThan(0.33);
    expect(stats.std[0]).toBeLessThan(0.37);
    const moments = (it: BatchIterator) => {
      let s = 0;
      let q = 0;
      let n = 0;
      for (const b of it.epoch(0)) {
        const xs = b.images;
        for (let i = 0; i < xs.length; i++) {
          const x = xs[i]!;
          s += x;
          q += x * x;
        }
        n += xs.length;
      }
      const m = s / n;
      return { mean: m, std: Math.sqrt(q / n - m * m) };
    };
    const trainM = moments(
      new BatchIterator(train, { batchSize: 1000, shuffle: false, preprocess: { stats } }),
    );
    expect(trainM.mean).toBeCloseTo(0, 4);
    expect(trainM.std).toBeCloseTo(1, 4);
    // Sub-val, same statistics: close to but not exactly 0 / 1.
    const valM = moments(
      new BatchIterator(val, { batchSize: 1000, shuffle: false, preprocess: { stats } }),
    );
    expect(Math.abs(valM.mean)).toBeLessThan(0.05);
    expect(Math.abs(valM.std - 1)).toBeLessThan(0.05);
  });

  it('feeds padded, replicated, augmented batches covering sub-train once per epoch', () => {
    const { train } = splitTrainVal(ds);
    const stats = computeChannelStats(train);
    const opts = {
      batchSize: 256,
      seed: 7,
      augment: true,
      preprocess: { stats, size: 32, channels: 3 },
    } as const;
    const it = new BatchIterator(train, opts);
    expect(it.batchesPerEpoch).toBe(Math.ceil(55000 / 256));
    expect(it.imageShape).toEqual([32, 32, 3]);
    const seen = new Uint8Array(60000);
    const t = performance.now();
    let third = new Float32Array(0);
    let badShapes = 0;
    let badLabels = 0;
    for (const b of it.epoch(1)) {
      if (b.shape.join() !== `${b.size},32,32,3` || b.images.length !== b.size * 3072) badShapes++;
      for (let k = 0; k < b.size; k++) {
        const i = b.indices[k]!;
        seen[i]! += 1;
        if (b.labels[k] !== ds.train.labels[i]) badLabels++;
      }
      if (b.step === 3) third = b.images.slice();
    }
    console.log(
      `one augmented 32x32x3 epoch of sub-train: ${(performance.now() - t).toFixed(0)} ms`,
    );
    expect(badShapes).toBe(0);
    expect(badLabels).toBe(0);
    const inTrain = new Uint8Array(60000);
    for (const i of train.indices) inTrain[i] = 1;
    // Every sub-train image exactly once, nothing else (no sub-val image leaks in).
    let mismatches = 0;
    for (let i = 0; i < 60000; i++) if (seen[i] !== inTrain[i]) mismatches++;
    expect(mismatches).toBe(0);
    expect(seen.reduce((a, b) => a + b, 0)).toBe(55000);
    // Resume after a "restart" at (epoch 1, step 3).
    const resumed = new BatchIterator(train, opts).batch(1, 3);
    expect(
      Buffer.from(resumed.images.buffer, 0, third.byteLength).equals(Buffer.from(third.buffer)),
    ).toBe(true);
    expect(third.some((x, i) => x !== third[(i + 3072) % third.length])).toBe(true); // not constant
    // Padding is the normalised black pixel in every channel.
    const padValue = Math.fround((0 - stats.mean[0]!) / stats.std[0]!);
    expect(resumed.images[0]).toBe(padValue);
    expect(resumed.images[2]).toBe(padValue);
  });
});
