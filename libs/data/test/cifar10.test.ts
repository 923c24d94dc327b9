import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  BatchIterator,
  CIFAR10_CLASSES,
  classCounts,
  computeChannelStats,
  DatasetError,
  loadDataset,
  parseCifarBatch,
  splitTrainVal,
} from '@metaprune/data';
import { afterAll, describe, expect, it } from 'vitest';

const tmp = mkdtempSync(join(tmpdir(), 'metaprune-cifar-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Pixel value of global image g, channel c, pixel p (row-major 32x32). */
const pixel = (g: number, c: number, p: number) => (g * 7 + c * 50 + p) % 256;
const label = (g: number) => g % 10;

/** CIFAR-10 binary records (label byte, then R, G, B planes of 1024 bytes) for images first..first+n-1. */
function records(first: number, n: number): Uint8Array {
  const out = new Uint8Array(n * 3073);
  for (let r = 0; r < n; r++) {
    const g = first + r;
    out[r * 3073] = label(g);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < 1024; p++) out[r * 3073 + 1 + c * 1024 + p] = pixel(g, c, p);
    }
  }
  return out;
}

let dirs = 0;
/** 5 train batches of 4 images (global 0..19) and a test batch of 3 (global 100..102). */
function writeCifarDir(
  options: { subdir?: boolean; meta?: string; gzipTest?: boolean } = {},
): string {
  const top = join(tmp, `c${dirs++}`);
  const dir = options.subdir ? join(top, 'cifar-10-batches-bin') : top;
  mkdirSync(dir, { recursive: true });
  for (let b = 0; b < 5; b++)
    writeFileSync(join(dir, `data_batch_${b + 1}.bin`), records(b * 4, 4));
  const test = records(100, 3);
  writeFileSync(join(dir, 'test_batch.bin'), options.gzipTest ? gzipSync(test) : test);
  if (options.meta !== undefined) writeFileSync(join(dir, 'batches.meta.txt'), options.meta);
  return top;
}

async function failure(p: Promise<unknown>): Promise<DatasetError> {
  const err = await p.then(
    () => new Error('expected a DatasetError'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DatasetError);
  return err as DatasetError;
}

describe('CIFAR-10 binary batches', () => {
  it('decodes records into HWC images and labels, batches in order', async () => {
    const ds = await loadDataset({ name: 'cifar10', dir: writeCifarDir() });
    expect(ds.name).toBe('cifar10');
    expect(ds.imageShape).toEqual([32, 32, 3]);
    expect(ds.classNames).toEqual(CIFAR10_CLASSES);
    expect(ds.train.count).toBe(20);
    expect(ds.test.count).toBe(3);
    expect([...ds.train.labels]).toEqual(Array.from({ length: 20 }, (_, g) => label(g)));
    expect([...ds.test.labels]).toEqual([0, 1, 2]);
    let wrong = 0;
    for (let g = 0; g < 20; g++) {
      for (let p = 0; p < 1024; p++) {
        for (let c = 0; c < 3; c++) {
          if (ds.train.images[g * 3072 + p * 3 + c] !== pixel(g, c, p)) wrong++;
        }
      }
    }
    expect(wrong).toBe(0);
    // Hand-checked: test image 1 (global 101), row 2 col 5 (p = 69), green: (707 + 50 + 69) % 256.
    expect(ds.test.images[1 * 3072 + 69 * 3 + 1]).toBe(826 % 256);
  });

  it('finds the archive folder, reads class names from batches.meta.txt, accepts gzip', async () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
    const top = writeCifarDir({ subdir: true, meta: `${names.join('\n')}\n\n`, gzipTest: true });
    const ds = await loadDataset({ name: 'cifar10', dir: top });
    expect(ds.source!.dir).toBe(join(top, 'cifar-10-batches-bin'));
    expect(ds.classNames).toEqual(names);
    expect(ds.test.images[2 * 3072]).toBe(pixel(102, 0, 0));
  });

  it('feeds the same split / normalisation / batch pipeline as Fashion-MNIST', async () => {
    const ds = await loadDataset({ name: 'cifar10', dir: writeCifarDir() });
    const split = splitTrainVal(ds, { valPerClass: 1, seed: 3 });
    expect([...classCounts(split.val)]).toEqual(new Array(10).fill(1));
    expect(split.train.indices.length).toBe(10);
    const stats = computeChannelStats(split.train);
    expect(stats.mean.length).toBe(3);
    const it = new BatchIterator(split.train, {
      batchSize: 4,
      augment: true,
      preprocess: { stats },
    });
    expect(it.batchesPerEpoch).toBe(3);
    const b = it.batch(0, 2);
    expect(b.shape).toEqual([2, 32, 32, 3]);
  });

  it('rejects malformed files, naming them', async () => {
    const dir = writeCifarDir();
    const bad = join(dir, 'data_batch_3.bin');
    writeFileSync(bad, records(0, 2).subarray(0, 5000));
    let err = await failure(loadDataset({ name: 'cifar10', dir }));
    expect(err.message).toBe(
      `${bad}: expected a multiple of 3073 bytes (1 label byte + 3072 pixel bytes per image), got 5000`,
    );
    const rec = records(0, 2);
    rec[3073] = 10;
    writeFileSync(bad, rec);
    err = await failure(loadDataset({ name: 'cifar10', dir }));
    expect(err.message).toBe(`${bad}: expected labels in 0..9, got 10 at index 1`);
    rmSync(join(dir, 'test_batch.bin'));
    err = await failure(loadDataset({ name: 'cifar10', dir }));
    expect(err.kind).toBe('missing');
    expect(err.file).toBe(join(dir, 'test_batch.bin'));
    expect(() => parseCifarBatch(new Uint8Array(0), 'empty.bin')).toThrow(
      /^empty\.bin: expected a multiple/,
    );
    err = await failure(loadDataset({ name: 'cifar10' }));
    expect(err.message).toBe(
      'cifar10: expected a data directory (dir) with CIFAR-10 binary batches, got none given',
    );
  });
});
