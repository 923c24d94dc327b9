import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BatchIterator,
  type Dataset,
  DatasetError,
  DecodePool,
  ImageFolderStream,
  loadDataset,
  loadImageFolder,
  scanImageFolder,
  wholeSubset,
  writeImageFolder,
  writeSyntheticImageFolder,
} from '@metaprune/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Fixtures written at test time from the real Fashion-MNIST test set: the first 40 images
// of every class as PNG (lossless) and as JPEG (quality 90), in train/ and test/ splits.
const PER_CLASS = 40;
let fm: Dataset;
let root: string;
let pool: DecodePool;

function subsetOf(ds: Dataset, perClass: number) {
  const per = 28 * 28;
  const seen = new Uint32Array(10);
  const idx: number[] = [];
  for (let i = 0; i < ds.test.count; i++) {
    const l = ds.test.labels[i]!;
    if (seen[l]! < perClass) {
      seen[l]!++;
      idx.push(i);
    }
  }
  const images = new Uint8Array(idx.length * per);
  const labels = new Uint8Array(idx.length);
  idx.forEach((i, k) => {
    images.set(ds.test.images.subarray(i * per, (i + 1) * per), k * per);
    labels[k] = ds.test.labels[i]!;
  });
  return { images, labels, count: idx.length };
}

/** Nearest class mean (an independent, tensor-free classifier) fitted on `fit`, scored on `set`. */
function centroidAccuracy(
  fit: { images: Uint8Array; labels: Uint8Array; count: number },
  set: { images: Uint8Array; labels: Uint8Array; count: number },
  per: number,
): number {
  const means = Array.from({ length: 10 }, () => new Float64Array(per));
  const n = new Uint32Array(10);
  for (let i = 0; i < fit.count; i++) {
    const m = means[fit.labels[i]!]!;
    n[fit.labels[i]!]!++;
    for (let p = 0; p < per; p++) m[p]! += fit.images[i * per + p]!;
  }
  means.forEach((m, k) => {
    for (let p = 0; p < per; p++) m[p]! /= n[k]!;
  });
  let right = 0;
  for (let i = 0; i < set.count; i++) {
    let best = -1;
    let bestD = Number.POSITIVE_INFINITY;
    means.forEach((m, k) => {
      let d = 0;
      for (let p = 0; p < per; p++) d += (set.images[i * per + p]! - m[p]!) ** 2;
      if (d < bestD) {
        bestD = d;
        best = k;
      }
    });
    if (best === set.labels[i]) right++;
  }
  return right / set.count;
}

async function failure(p: Promise<unknown>): Promise<DatasetError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DatasetError);
    return err as DatasetError;
  }
  throw new Error('expected a DatasetError');
}

beforeAll(async () => {
  fm = await loadDataset({ name: 'fashion-mnist' });
  root = mkdtempSync(join(tmpdir(), 'imagefolder-'));
  const sub = subsetOf(fm, PER_CLASS);
  for (const format of ['png', 'jpeg'] as const) {
    await writeImageFolder(join(root, format, 'train'), sub, [28, 28, 1], fm.classNames, {
      format,
    });
    await writeImageFolder(join(root, format, 'test'), sub, [28, 28, 1], fm.classNames, {
      format,
      perClass: 4,
    });
  }
  pool = new DecodePool({ workers: 2 });
});

afterAll(async () => {
  await pool?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('image folders from Fashion-MNIST', () => {
  it('PNG: class names from the folders, pixels byte for byte the IDX ones', async () => {
    const ds = await loadImageFolder(join(root, 'png'), { size: 28, pool });
    expect(ds.classNames).toEqual([...fm.classNames.map((n) => n.replace('/', '-'))].sort());
    expect(ds.imageShape).toEqual([28, 28, 1]);
    expect(ds.train.count).toBe(10 * PER_CLASS);
    expect(ds.test.count).toBe(40);
    expect(ds.testFrom).toBe('test');
    // Files are named by their index in the source set, so every decoded image can be
    // matched with its IDX original.
    const sub = subsetOf(fm, PER_CLASS);
    const order = ds.classNames.flatMap((cls) =>
      readdirSync(join(root, 'png', 'train', cls)).sort(),
    );
    let differing = 0;
    order.forEach((file, k) => {
      const i = Number(file.slice(0, 6));
      const a = ds.train.images.subarray(k * 784, (k + 1) * 784);
      const b = sub.images.subarray(i * 784, (i + 1) * 784);
      if (Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0) differing++;
      expect(ds.classNames[ds.train.labels[k]!]).toBe(
        fm.classNames[sub.labels[i]!]!.replace('/', '-'),
      );
    });
    expect(differing).toBe(0);
    // Same pixels, so any classifier scores the same: one fitted on the IDX images, scored
    // on the folder's images with their labels mapped back to Fashion-MNIST's ids.
    const toIdx = ds.classNames.map((n) =>
      fm.classNames.map((m) => m.replace('/', '-')).indexOf(n),
    );
    const mapped = { ...ds.train, labels: ds.train.labels.map((l) => toIdx[l]!) };
    const acc = centroidAccuracy(sub, sub, 784);
    expect(acc).toBeGreaterThan(0.5);
    expect(centroidAccuracy(sub, mapped, 784)).toBe(acc);
  });

  it('JPEG: pixels within JPEG error, accuracy of a fixed classifier within 2 points', async () => {
    const png = await loadImageFolder(join(root, 'png'), { size: 28, pool });
    const jpg = await loadImageFolder(join(root, 'jpeg'), { size: 28, pool });
    let absSum = 0;
    for (let p = 0; p < png.train.images.length; p++) {
      absSum += Math.abs(png.train.images[p]! - jpg.train.images[p]!);
    }
    const meanAbs = absSum / png.train.images.length;
    // Quality 90 on 28x28 grey: a few grey levels on average, never zero.
    expect(meanAbs).toBeGreaterThan(0.1);
    expect(meanAbs).toBeLessThan(6);
    expect(Array.from(jpg.train.labels)).toEqual(Array.from(png.train.labels));
    const a = centroidAccuracy(png.train, png.train, 784);
    const b = centroidAccuracy(png.train, jpg.train, 784);
    expect(a).toBeGreaterThan(0.5);
    expect(Math.abs(a - b)).toBeLessThanOrEqual(0.02);
  });

  it('resizes to the requested size and converts grey to RGB on request', async () => {
    const ds = await loadImageFolder(join(root, 'png'), { size: 40, channels: 3, pool });
    expect(ds.imageShape).toEqual([40, 40, 3]);
    expect(ds.train.images.length).toBe(ds.train.count * 40 * 40 * 3);
    // Grey converted to sRGB: the three channels agree.
    const px = ds.train.images.subarray(20 * 40 * 3 + 20 * 3, 20 * 40 * 3 + 20 * 3 + 3);
    expect(px[0]).toBe(px[1]);
    expect(px[1]).toBe(px[2]);
  });

  it('loads through loadDataset as imagefolder:<dir> and batches like any dataset', async () => {
    const ds = await loadDataset({
      name: `imagefolder:${join(root, 'png')}`,
      image: { size: 28, pool },
    });
    expect(ds.name).toBe(`imagefolder:${join(root, 'png')}`);
    const it = new BatchIterator(wholeSubset(ds, 'train'), { batchSize: 32, seed: 1 });
    expect(it.batch(0, 0).shape).toEqual([32, 28, 28, 1]);
  });

  it('streams the same batches as the in-memory iterator (same order, same augmentation)', async () => {
    const ds = await loadImageFolder(join(root, 'png'), { size: 28, pool });
    const scan = await scanImageFolder(join(root, 'png'));
    const opts = { batchSize: 16, seed: 5, augment: true, shuffle: true };
    const mem = new BatchIterator(wholeSubset(ds, 'train'), opts);
    const stream = new ImageFolderStream({
      ...opts,
      entries: scan.train,
      pool,
      size: 28,
      channels: 1,
      cacheBytes: 50 * 784,
    });
    expect(stream.batchesPerEpoch).toBe(mem.batchesPerEpoch);
    for (const [epoch, step] of [
      [0, 0],
      [0, 1],
      [1, 7],
    ] as const) {
      const a = mem.batch(epoch, step);
      const aImages = a.images.slice();
      const aLabels = Array.from(a.labels);
      const b = await stream.batch(epoch, step);
      expect(Array.from(b.labels)).toEqual(aLabels);
      expect(b.images).toEqual(aImages);
    }
    // The cache never holds more than its cap (50 images here).
    expect(stream.cachedBytes).toBeLessThanOrEqual(50 * 784);
  });
});

describe('bad data gets one clear error', () => {
  let bad: string;
  beforeAll(() => {
    bad = mkdtempSync(join(tmpdir(), 'imagefolder-bad-'));
  });
  afterAll(() => rmSync(bad, { recursive: true, force: true }));

  const folder = async (name: string, classes: Record<string, number>) => {
    const dir = join(bad, name);
    for (const [cls, n] of Object.entries(classes)) {
      mkdirSync(join(dir, cls), { recursive: true });
      if (n > 0) {
        await writeSyntheticImageFolder(join(dir, '.tmp'), {
          classes: 1,
          perClass: n,
          size: 12,
          formats: ['png'],
        });
        for (const f of readdirSync(join(dir, '.tmp', 'class000'))) {
          const src = join(dir, '.tmp', 'class000', f);
          writeFileSync(
            join(dir, cls, f),
            await import('node:fs').then((m) => m.readFileSync(src)),
          );
        }
        rmSync(join(dir, '.tmp'), { recursive: true });
      }
    }
    return dir;
  };

  it('an empty folder, one class, an empty class', async () => {
    mkdirSync(join(bad, 'empty'));
    let err = await failure(loadImageFolder(join(bad, 'empty'), { size: 16, pool }));
    expect(err.message).toBe(
      `${join(bad, 'empty')}: expected one subfolder per class (with JPEG, PNG or WebP images), got an empty folder`,
    );
    err = await failure(loadImageFolder(await folder('one', { cats: 3 }), { size: 16, pool }));
    expect(err.message).toBe(
      `${join(bad, 'one')}: expected at least two class folders, got one (cats)`,
    );
    err = await failure(
      loadImageFolder(await folder('hollow', { cats: 3, dogs: 0 }), { size: 16, pool }),
    );
    expect(err.message).toBe(
      `${join(bad, 'hollow', 'dogs')}: expected at least one JPEG, PNG or WebP image in every class folder, got an empty class folder`,
    );
    err = await failure(loadImageFolder(join(bad, 'nowhere'), { size: 16, pool }));
    expect(err.kind).toBe('missing');
  });

  it('mixed grey and colour images (channels auto)', async () => {
    const dir = join(bad, 'mixed');
    await writeSyntheticImageFolder(join(dir, 'a'), {
      classes: 2,
      perClass: 20,
      size: 12,
      channels: 1,
      formats: ['png'],
    });
    await writeSyntheticImageFolder(join(dir, 'b'), {
      classes: 2,
      perClass: 20,
      size: 12,
      channels: 3,
      formats: ['png'],
    });
    // a/class000 (grey) and b/class000 (colour) as the two classes of one folder.
    const flat = join(bad, 'mixed-flat');
    mkdirSync(join(flat, 'grey'), { recursive: true });
    mkdirSync(join(flat, 'colour'), { recursive: true });
    const { cpSync } = await import('node:fs');
    cpSync(join(dir, 'a', 'class000'), join(flat, 'grey'), { recursive: true });
    cpSync(join(dir, 'b', 'class000'), join(flat, 'colour'), { recursive: true });
    const err = await failure(loadImageFolder(flat, { size: 16, pool }));
    expect(err.message).toMatch(/mixed grey and colour images: choose 1 or 3 input channels/);
    // Converting them is fine.
    const ds = await loadImageFolder(flat, { size: 16, channels: 3, pool });
    expect(ds.imageShape).toEqual([16, 16, 3]);
  });

  it('skips unreadable and unsupported files within the threshold, fails above it naming them', async () => {
    const dir = await folder('some-bad', { cats: 20, dogs: 20 });
    writeFileSync(join(dir, 'cats', 'broken.jpg'), 'not a jpeg');
    writeFileSync(join(dir, 'dogs', 'notes.txt'), 'hello');
    const skipped: string[] = [];
    // 2 bad of 42 files: allowed at 5 %, reported with their paths.
    const ds = await loadImageFolder(dir, {
      size: 16,
      pool,
      maxBadFraction: 0.05,
      onSkip: (b) => skipped.push(b.path),
    });
    expect(skipped.sort()).toEqual([
      join(dir, 'cats', 'broken.jpg'),
      join(dir, 'dogs', 'notes.txt'),
    ]);
    expect(ds.train.count + ds.test.count).toBe(40);
    // Above the threshold after decoding (3 %: 1 bad allowed, 2 found) it fails naming both.
    let err = await failure(loadImageFolder(dir, { size: 16, pool, maxBadFraction: 0.03 }));
    expect(err.kind).toBe('corrupt');
    expect(err.message).toBe(
      `${dir}: expected at most 3.0 % unreadable or unsupported files, got 2 of 42: ${join(dir, 'dogs', 'notes.txt')} (not a JPEG, PNG or WebP file name); ${join(dir, 'cats', 'broken.jpg')} (Input buffer contains unsupported image format)`,
    );
    // At the default 0.1 % the unsupported file alone fails it before anything is decoded.
    err = await failure(loadImageFolder(dir, { size: 16, pool }));
    expect(err.message).toBe(
      `${dir}: expected at most 0.10 % unreadable or unsupported files, got 1 of 42: ${join(dir, 'dogs', 'notes.txt')} (not a JPEG, PNG or WebP file name)`,
    );
  });
});
