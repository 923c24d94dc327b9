import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  DatasetError,
  encodeIdx,
  FASHION_MNIST_DIR,
  IDX_FILES,
  loadDataset,
  parseIdx,
  splitTrainVal,
} from '@metaprune/data';
import { afterAll, describe, expect, it } from 'vitest';

const tmp = mkdtempSync(join(tmpdir(), 'metaprune-data-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let dirCount = 0;
function newDir(): string {
  const dir = join(tmp, `d${dirCount++}`);
  mkdirSync(dir);
  return dir;
}

/**
 * Writes a small IDX dataset into a new directory: train 30 images of 4x5, test 10;
 * every pixel of image i is (3i + offset) % 256 (offset 0 train, 100 test), label i % 3.
 */
function writeIdxDir(gzip: boolean): string {
  const dir = newDir();
  const write = (base: string, bytes: Uint8Array) =>
    writeFileSync(join(dir, gzip ? `${base}.gz` : base), gzip ? gzipSync(bytes) : bytes);
  const split = (count: number, offset: number) => ({
    images: encodeIdx(
      [count, 4, 5],
      Uint8Array.from({ length: count * 20 }, (_, p) => (Math.floor(p / 20) * 3 + offset) % 256),
    ),
    labels: encodeIdx(
      [count],
      Uint8Array.from({ length: count }, (_, i) => i % 3),
    ),
  });
  const train = split(30, 0);
  const test = split(10, 100);
  write(IDX_FILES.trainImages, train.images);
  write(IDX_FILES.trainLabels, train.labels);
  write(IDX_FILES.testImages, test.images);
  write(IDX_FILES.testLabels, test.labels);
  return dir;
}

/** The DatasetError a promise rejects with. */
async function failure(p: Promise<unknown>): Promise<DatasetError> {
  const err = await p.then(
    () => new Error('expected a DatasetError, the load succeeded'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DatasetError);
  return err as DatasetError;
}

/** A copy of the real Fashion-MNIST directory with one file replaced by `bytes`. */
function fashionWith(file: string, bytes: Uint8Array | undefined): string {
  const dir = newDir();
  for (const base of Object.values(IDX_FILES)) {
    const name = `${base}.gz`;
    if (name !== file) copyFileSync(join(FASHION_MNIST_DIR, name), join(dir, name));
  }
  if (bytes) writeFileSync(join(dir, file), bytes);
  return dir;
}

describe('user IDX directories', () => {
  it.each([true, false])('load through loadDataset (gzip: %s)', async (gzip) => {
    const dir = writeIdxDir(gzip);
    const ds = await loadDataset({ name: 'fashion-mnist', dir });
    expect(ds.imageShape).toEqual([4, 5, 1]);
    expect(ds.train.count).toBe(30);
    expect(ds.test.count).toBe(10);
    expect(ds.source!.dir).toBe(dir);
    expect(ds.train.images[7 * 20 + 13]).toBe(21);
    expect(ds.test.images[2 * 20]).toBe(106);
    expect([...ds.train.labels.subarray(0, 5)]).toEqual([0, 1, 2, 0, 1]);
    // The sub-val split works on it (labels 3..9 have no images: a class list mismatch
    // makes splitting fail loudly instead of producing empty classes).
    expect(() => splitTrainVal(ds, { valPerClass: 2 })).toThrow(/class 3/);
  });

  it('shares memory with worker threads when asked', async () => {
    const ds = await loadDataset({ name: 'fashion-mnist', dir: writeIdxDir(true), shared: true });
    expect(ds.train.images.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(ds.test.labels.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(ds.train.images[7 * 20]).toBe(21);
  });
});

describe('errors name the file and what was expected', () => {
  it('missing directory', async () => {
    const dir = join(tmp, 'nope');
    const err = await failure(loadDataset({ name: 'fashion-mnist', dir }));
    expect(err.kind).toBe('missing');
    expect(err.file).toBe(dir);
    expect(err.message).toContain(`${dir}: expected a directory with train-images-idx3-ubyte.gz`);
  });

  it('missing file', async () => {
    const dir = writeIdxDir(true);
    rmSync(join(dir, 't10k-labels-idx1-ubyte.gz'));
    const err = await failure(loadDataset({ name: 'fashion-mnist', dir }));
    expect(err.kind).toBe('missing');
    expect(err.file).toBe(join(dir, 't10k-labels-idx1-ubyte.gz'));
    expect(err.message).toBe(
      `${join(dir, 't10k-labels-idx1-ubyte.gz')}: expected a readable file (or t10k-labels-idx1-ubyte uncompressed), got no such file (ENOENT)`,
    );
  });

  it('wrong IDX magic', async () => {
    const bad = encodeIdx([2, 4, 5], new Uint8Array(40));
    bad[2] = 0x04; // magic 0x00000403 = 1027
    bad[3] = 0xd2; // ... made 0x04d2 = 1234
    const dir = fashionWith('train-images-idx3-ubyte.gz', gzipSync(bad));
    const err = await failure(loadDataset({ name: 'fashion-mnist', dir }));
    expect(err.kind).toBe('corrupt');
    expect(err.expected).toBe('IDX magic 2051');
    expect(err.message).toBe(
      `${join(dir, 'train-images-idx3-ubyte.gz')}: expected IDX magic 2051, got 1234`,
    );
  });

  it('truncated file (real Fashion-MNIST images cut short)', async () => {
    const whole = readFileSync(join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'));
    // A gzip stream cut in the middle: the decompressed prefix is shorter than the header says.
    const dir = fashionWith('train-images-idx3-ubyte.gz', whole.subarray(0, 100_000));
    const err = await failure(loadDataset({ name: 'fashion-mnist', dir }));
    expect(err.kind).toBe('truncated');
    expect(err.expected).toBe('47040016 bytes');
    expect(err.message).toMatch(/train-images-idx3-ubyte\.gz: expected 47040016 bytes, got \d+$/);
    expect(Number(err.actual)).toBeLessThan(47040016);
    expect(Number(err.actual)).toBeGreaterThan(16);
  });

  it('truncated plain (uncompressed) labels file', async () => {
    const dir = writeIdxDir(false);
    const file = join(dir, IDX_FILES.trainLabels);
    writeFileSync(file, readFileSync(file).subarray(0, 20));
    const err = await failure(loadDataset({ name: 'fashion-mnist', dir }));
    expect(err.message).toBe(`${file}: expected 38 bytes, got 20`);
  });

  it('corrupt gzip stream', async () => {
    const gz = gzipSync(encodeIdx([1], Uint8Array.from([1])));
    gz.fill(0xff, 10, 20); // damage the deflate data
    const dir = writeIdxDir(true);
    const file = join(dir, `${IDX_FILES.testLabels}.gz`);
    writeFileSync(file, gz);
    const err = await failure(loadDataset({ name: 'fashion-mnist', dir }));
    expect(err.kind).toBe('corrupt');
    expect(err.message.startsWith(`${file}: expected a valid gzip stream, got `)).toBe(true);
    expect(err.cause).toBeInstanceOf(Error);
  });

  it('labels that do not match the images or the classes', async () => {
    const dir = writeIdxDir(true);
    const file = join(dir, `${IDX_FILES.trainLabels}.gz`);
    writeFileSync(file, gzipSync(encodeIdx([29], new Uint8Array(29))));
    let err = await failure(loadDataset({ name: 'fashion-mnist', dir }));
    expect(err.message).toBe(`${file}: expected IDX dimension 0 of size 30, got 29`);
    const labels = new Uint8Array(30);
    labels[17] = 12;
    writeFileSync(file, gzipSync(encodeIdx([30], labels)));
    err = await failure(loadDataset({ name: 'fashion-mnist', dir }));
    expect(err.message).toBe(`${file}: expected labels in 0..9, got 12 at index 17`);
  });

  it('test images of another size than train images', async () => {
    const dir = writeIdxDir(false);
    const file = join(dir, IDX_FILES.testImages);
    writeFileSync(file, encodeIdx([10, 5, 5], new Uint8Array(250)));
    const err = await failure(loadDataset({ name: 'fashion-mnist', dir }));
    expect(err.message).toBe(`${file}: expected IDX dimension 1 of size 4, got 5`);
  });

  it('parseIdx rejects short headers and trailing bytes', () => {
    expect(() => parseIdx(Uint8Array.from([0, 0]), 'f', { magic: 2049 })).toThrow(
      'f: expected an IDX header (at least 4 bytes), got 2 bytes',
    );
    expect(() => parseIdx(Uint8Array.from([0, 0, 8, 1, 0, 0]), 'f', { magic: 2049 })).toThrow(
      'f: expected an IDX header of 8 bytes, got 6 bytes',
    );
    const ok = encodeIdx([3], Uint8Array.from([1, 2, 3]));
    expect([...parseIdx(ok, 'f', { magic: 2049 }).data]).toEqual([1, 2, 3]);
    const long = new Uint8Array(ok.length + 1);
    long.set(ok);
    const err = (() => {
      try {
        parseIdx(long, 'f', { magic: 2049 });
      } catch (e) {
        return e as DatasetError;
      }
    })();
    expect(err?.message).toBe('f: expected 11 bytes, got 12');
    expect(err?.kind).toBe('corrupt');
  });

  it('unknown dataset name', async () => {
    const err = await failure(loadDataset({ name: 'imagenet' as 'cifar10' }));
    expect(err.kind).toBe('invalid');
    expect(err.message).toBe(
      'imagenet: expected a dataset name, one of fashion-mnist, cifar10 or imagefolder:<dir>',
    );
  });
});
