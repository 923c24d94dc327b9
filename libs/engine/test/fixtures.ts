/** Small in-memory datasets and networks for the engine's tests. */
import { buildNetwork, type Network } from '@metaprune/core';
import { BatchIterator, type Dataset, splitTrainVal, validateDataset } from '@metaprune/data';

/**
 * A learnable toy dataset: `count` 8x8x1 images of 4 texture classes (horizontal stripes,
 * vertical stripes, checkerboard, flat), each at a random phase and contrast plus noise, so
 * a translation-invariant CNN can tell them apart. Deterministic.
 */
export function toyDataset(count: number, classes = 4, size = 8): Dataset {
  let s = 12345;
  const rand = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 4294967296;
  };
  const make = (n: number) => {
    const images = new Uint8Array(n * size * size);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const c = i % classes;
      labels[i] = c;
      const phase = rand() < 0.5 ? 0 : 1;
      const amp = 50 + 60 * rand();
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const on = [(y + phase) % 2, (x + phase) % 2, (x + y + phase) % 2, 0][c % 4] === 1;
          const v = 128 + (on ? amp : c % 4 === 3 ? 0 : -amp) + 40 * (rand() - 0.5);
          images[i * size * size + y * size + x] = Math.max(0, Math.min(255, Math.round(v)));
        }
      }
    }
    return { images, labels, count: n };
  };
  const ds: Dataset = {
    name: 'toy',
    classNames: Array.from({ length: classes }, (_, i) => `c${i}`),
    imageShape: [size, size, 1],
    train: make(count),
    test: make(Math.max(classes, count >> 2)),
  };
  validateDataset(ds);
  return ds;
}

export function tinyNet(width = 0.1): Network {
  return buildNetwork({
    family: 'mobilenetv2',
    preset: 'small',
    width,
    inputSize: 8,
    inputChannels: 1,
    numClasses: 4,
  });
}

/** Train / val iterators over a toy dataset (val: `valPerClass` per class). */
export function toyData(count: number, batchSize: number, valPerClass = 8) {
  const ds = toyDataset(count);
  const split = splitTrainVal(ds, { valPerClass, seed: 0 });
  return {
    ds,
    split,
    train: new BatchIterator(split.train, { batchSize, seed: 3, augment: true }),
    recal: new BatchIterator(split.train, { batchSize, seed: 4 }),
    val: new BatchIterator(split.val, { batchSize, shuffle: false }),
  };
}

/** The bytes of a typed array's own range (its buffer may be a whole wasm memory). */
export function bytes(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer as ArrayBuffer, a.byteOffset, a.byteLength);
}
